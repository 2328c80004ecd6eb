"""pytest configuration of the speed benchmarks: collection, shared fixtures and the end-of-run summary.

Run with ``pytest benchmarks/ --benchmark-only`` (see benchmarks/README.md). The repository's default
``pytest`` run never collects this folder (``testpaths`` is ``tests`` and ``src/blurkit``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _util  # noqa: E402
import pytest  # noqa: E402
from _util import RESULTS, record  # noqa: E402

_HERE = Path(__file__).resolve().parent
_DESELECTED: list[int] = [0]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect only ``test_*.py`` here: scripts (train_preset.py, quality.py) and helpers are not tests.

    The project's ``--doctest-modules`` would otherwise import every module of this folder.
    """
    path = Path(collection_path)
    if path.parent == _HERE and path.suffix == ".py" and not path.name.startswith("test_"):
        return True
    if path.parent == _HERE and path.is_dir() and path.name in ("results", "__pycache__"):
        return True
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "huge: the 8000x6000 photo (minutes); skip with -m 'not huge'")


def pytest_deselected(items: list[pytest.Item]) -> None:
    _DESELECTED[0] += len(items)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _util.SKIP_HUGE:
        return
    skip = pytest.mark.skip(reason="BLURKIT_BENCH_SKIP_HUGE is set")
    for item in items:
        if "huge" in item.keywords:
            item.add_marker(skip)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def peak() -> float:
    """This machine's practical float32 peak (GFLOP/s): best of a large NumPy and TensorFlow matmul.

    Measured once per session, before any model benchmark, so fractions of peak compare like with like.
    """
    if _util.peak_gflops() is None:
        n = _util.MATMUL_N
        record("roofline", "numpy", gflops=_util.matmul_gflops_numpy(n), n=n)
        record("roofline", "tensorflow", gflops=_util.matmul_gflops_tf(n), n=n)
    return float(_util.peak_gflops())


# ------------------------------------------------------------------------------------------ summary
def _fmt(v: object, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets() -> list[dict]:
    """The issue's targets, each with the measured value and met / missed / not measured."""
    rows: list[dict] = []

    def add(name: str, value: float | None, op: str, limit: float, unit: str, where: str) -> None:
        if value is None:
            status = "not measured"
        else:
            status = "met" if (value >= limit if op == ">=" else value <= limit if op == "<=" else value < limit) else "missed"
        rows.append({"target": name, "measured": value, "goal": f"{op} {limit:g}{unit}", "unit": unit,
                     "status": status, "where": where})

    default = _util.default_subject()
    inf = RESULTS.get("inference", {})
    big, small = list(_util.INFER_SIZES)[1], list(_util.INFER_SIZES)[0]
    row = inf.get(f"{default} {big} facade", {})
    frac = row.get("fraction_of_peak")
    add("default model inference, fraction of matmul peak", None if frac is None else 100 * frac, ">=", 35,
        " %", f"{default}, {big}, Deblurrer.predict")
    add("default model inference, seconds per megapixel", row.get("s_per_mp"), "<=", 3, " s", f"{default}, {big}")
    for size in (small, big):
        f, k = inf.get(f"{default} {size} facade", {}), inf.get(f"{default} {size} keras", {})
        r = k.get("facade_ratio")  # paired rounds (test_inference, keras case)
        where = f"{default}, paired rounds"
        if r is None:
            r, where = _ratio(f.get("seconds"), k.get("seconds")), default
        add(f"facade overhead over model.predict ({size})", None if r is None else 100 * (r - 1), "<=", 10, " %",
            where)
    paired = RESULTS.get("facade_overhead", {}).get(small, {}).get("ratio")
    if paired is not None:  # alternating calls in one case: robust to load changes
        r, where = paired, f"{default}, paired rounds (test_facade_overhead)"
    else:
        paths = RESULTS.get("paths", {})
        r = _ratio(paths.get("facade", {}).get("seconds"), paths.get("tf_function", {}).get("seconds"))
        where = f"{default}, separate cases (test_execution_path)"
    add(f"facade overhead over a bare tf.function ({small})", None if r is None else 100 * (r - 1), "<=", 10,
        " %", where)
    til = RESULTS.get("tiling", {})
    r = til.get("tiled-default", {}).get("ratio")  # paired rounds (test_tiling)
    if r is None:
        r = _ratio(til.get("tiled-default", {}).get("seconds"), til.get("untiled", {}).get("seconds"))
    add("tiled over untiled, same image", None if r is None else 100 * (r - 1), "<=", 15, " %",
        f"{default}, default tile size, paired rounds")
    huge = RESULTS.get("big_images", {}).get(list(_util.BIG_SIZES)[1], {})
    add(f"peak memory, {huge.get('size', list(_util.BIG_SIZES)[1])} photo", huge.get("peak_rss_gb"), "<=", 3,
        " GB", huge.get("subject", "default preset"))
    pipe = RESULTS.get("pipeline", {})
    pairs = pipe.get("make_dataset", {}).get("pairs_per_s")
    train = RESULTS.get("train_step", {}).get(f"model:{_util.default_model_name()}", {}).get("images_per_s")
    add("input pipeline / training consumption", _ratio(pairs, train), ">=", 5, "x",
        f"make_dataset vs the training step of model:{_util.default_model_name()}")
    add("input pipeline / tutorial loader", _ratio(pairs, pipe.get("tutorial_loader", {}).get("images_per_s")),
        ">=", 3, "x", "pairs/s vs images/s (load_img + img_to_array, 128x128)")
    ratios = [(v["speedup"], k) for k, v in RESULTS.get("blur", {}).items() if v.get("speedup") is not None]
    worst = min(ratios) if ratios else (None, "")
    add("blur generation / skimage-scipy (worst case)", worst[0], ">=", 3, "x", worst[1])
    st = RESULTS.get("startup", {})
    add("python -c 'import blurkit'", st.get("import blurkit", {}).get("seconds"), "<", 0.5, " s", "median")
    add("blurkit --help", st.get("blurkit --help", {}).get("seconds"), "<", 1, " s", "median")
    return rows


def _table(tr, title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    tr.write_line("")
    tr.write_line(title)
    tr.write_line("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    tr.write_line("  ".join("-" * w for w in widths))
    for r in rows:
        tr.write_line("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def _summary_rows() -> list[list[str]]:
    rows = []
    for section, cases in RESULTS.items():
        for name, v in cases.items():
            main = []
            for key in ("gflops", "mp_per_s", "s_per_mp", "pairs_per_s", "images_per_s", "seconds",
                        "peak_rss_gb", "speedup", "ratio"):
                if v.get(key) is not None:
                    main.append(f"{key}={_fmt(v[key])}")
            if v.get("fraction_of_peak") is not None:
                main.append(f"peak={100 * v['fraction_of_peak']:.1f}%")
            if v.get("flops_per_pixel") is not None:
                main.append(f"flops/px={v['flops_per_pixel'] / 1e3:.1f}k")
            if v.get("note"):
                main.append(str(v["note"]))
            rows.append([section, name, "  ".join(main)])
    return rows


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not RESULTS:
        return
    from blurkit.data.io import atomic_write_text

    tr = terminalreporter
    peak_now = _util.peak_gflops()
    if peak_now:  # fractions against the final peak of the session, whatever ran first
        for section, cases in RESULTS.items():
            for v in cases.values():
                if section != "roofline" and v.get("gflops") is not None:
                    v["fraction_of_peak"] = round(v["gflops"] / peak_now, 4)
    mode = "QUICK MODE (tiny sizes: the numbers only show that the benchmarks run)" if _util.QUICK else "full"
    tr.write_sep("=", f"blurkit speed summary, {mode}")
    mach = _util.machine()
    tr.write_line(f"{mach['cpu']}, {mach['usable_cores']} usable cores, {mach['memory_gib']} GiB, "
                  f"load {_fmt(mach['load_average_1min_at_end'])} at the end")
    _table(tr, "Measurements (medians)", ["section", "case", "values"], _summary_rows())
    tg = targets()
    _table(tr, "Targets of the issue", ["target", "measured", "goal", "status", "where"],
           [[t["target"], _fmt(t["measured"]), t["goal"], t["status"], str(t["where"])] for t in tg])
    # Only a full, unfiltered run replaces benchmarks/results/speed.json; quick or filtered runs (-k, -m,
    # single files) go to the git-ignored .benchmarks/ folder.
    whole = all(Path(a.split("::")[0]).resolve() == _HERE for a in config.args) and not _DESELECTED[0]
    if _util.QUICK or not whole:
        out = _HERE.parent / ".benchmarks" / f"blurkit-speed-{'quick' if _util.QUICK else 'partial'}.json"
    else:
        out = _HERE / "results" / "speed.json"
    doc = {"benchmark": "blurkit speed", "quick": _util.QUICK, "date": _util.now(), "machine": mach,
           "versions": _util.versions(), "exit_status": int(exitstatus),
           "selection": [str(a) for a in config.args], "deselected": _DESELECTED[0], "results": RESULTS,
           "targets": tg}
    atomic_write_text(out, _util.dumps(doc))
    tr.write_line(f"\nwritten {out.relative_to(_HERE.parent)}")
