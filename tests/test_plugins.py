"""Entry-point plugins, tested for real: a tiny distribution installed into a temporary directory.

``tests/plugin_dist`` is the source of the ``bk-demo-plugin`` distribution: a ``vertical`` blur and a
``mae`` metric, plus a ``gaussian`` blur (a built-in name: the built-in must win) and a ``broken`` metric
whose module raises ImportError. A session fixture installs it with pip into a temporary directory; the
tests run Python in subprocesses with ``PYTHONPATH`` set to that directory, so the real environment is
never modified and every registry starts fresh.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from blurkit.blurs import AverageBlur
from blurkit.registry import BLURS, DuplicateComponentError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_dist"
DIST = "bk-demo-plugin"
SOURCE = f"plugin {DIST} 0.1"
ENTRY_POINTS = {
    "blurkit.blurs": {"vertical": "bk_demo_plugin:VerticalBlur", "gaussian": "bk_demo_plugin:NotGaussian"},
    "blurkit.metrics": {"mae": "bk_demo_plugin:mae", "broken": "bk_broken_plugin:metric"},
}


# -- installing the plugin ------------------------------------------------------------------------
def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir",
           "--disable-pip-version-check", "--quiet", *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"


def _setuptools_builds_wheels() -> bool:
    """Whether ``pip install --no-build-isolation`` can build the plugin from source, offline.

    setuptools >= 61 reads ``[project]``; before 70.1 it also needs the ``wheel`` package, which a fresh
    ``python -m venv`` does not have (and from Python 3.12 on, a fresh venv has no setuptools at all).
    """
    try:
        version = tuple(int(x) for x in re.findall(r"\d+", metadata.version("setuptools"))[:2])
    except metadata.PackageNotFoundError:
        return False
    return version >= (70, 1) or (version >= (61, 0) and importlib.util.find_spec("wheel") is not None)


def _build_wheel(src: Path, out: Path) -> Path:
    """Build the plugin's wheel by hand (pure Python: modules plus ``*.dist-info``), as a backend would."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib

    config = tomllib.loads((src / "pyproject.toml").read_text())
    project = config["project"]
    name, version = project["name"], project["version"]
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}"
    info = f"{stem}.dist-info"
    files = {f"{m}.py": (src / f"{m}.py").read_bytes() for m in config["tool"]["setuptools"]["py-modules"]}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: blurkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in project["entry-points"].items()
    ).encode()
    record = [
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for path, data in files.items()
    ]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,", ""]).encode()
    wheel = out / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def _install(target: Path, work: Path, *, from_source: bool) -> None:
    # Build from a copy: setuptools writes build/ and *.egg-info next to the sources.
    src = work / "src"
    shutil.copytree(PLUGIN_SRC, src, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    if from_source:
        _pip("--no-build-isolation", "--target", str(target), str(src))
    else:
        _pip("--target", str(target), str(_build_wheel(src, work)))


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory) -> Path:
    """A directory holding the installed plugin (modules and ``bk_demo_plugin-0.1.dist-info``)."""
    target = tmp_path_factory.mktemp("site")
    _install(target, tmp_path_factory.mktemp("build"), from_source=_setuptools_builds_wheels())
    return target


def _run(plugin_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin_path), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _python(plugin_path: Path, code: str, timeout: float = 120) -> str:
    done = _run(plugin_path, "-c", textwrap.dedent(code), timeout=timeout)
    assert done.returncode == 0, f"subprocess failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


# -- the installed distribution -----------------------------------------------------------------------
def test_installed_distribution_has_entry_points(plugin_path):
    (dist,) = metadata.distributions(path=[str(plugin_path)])
    assert dist.metadata["Name"] == DIST and dist.version == "0.1"
    found = {g: {ep.name: ep.value for ep in dist.entry_points if ep.group == g} for g in ENTRY_POINTS}
    assert found == ENTRY_POINTS
    assert DIST not in {d.metadata["Name"] for d in metadata.distributions()}  # real env untouched


def test_hand_built_wheel_matches_the_source_build(plugin_path, tmp_path):
    """The fallback used where setuptools cannot build offline (a fresh venv) installs the same thing."""
    target = tmp_path / "site"
    _install(target, tmp_path, from_source=False)
    (dist,) = metadata.distributions(path=[str(target)])
    assert (dist.metadata["Name"], dist.version) == (DIST, "0.1")
    assert sorted(dist.entry_points) == sorted(
        next(iter(metadata.distributions(path=[str(plugin_path)]))).entry_points
    )
    assert {p.name for p in target.glob("*.py")} == {"bk_demo_plugin.py", "bk_broken_plugin.py"}


# -- discovery -----------------------------------------------------------------------------------------
def test_cli_list_shows_plugins_and_builtins_win(plugin_path):
    done = _run(plugin_path, "-m", "blurkit.cli.main", "list")
    assert done.returncode == 0, done.stderr
    rows: dict[str, dict[str, str]] = {}
    for line in done.stdout.splitlines():
        if not line.startswith(" "):
            kind = rows.setdefault(line.rstrip(":"), {})
        else:
            name, rest = line.split(None, 1)
            kind[name] = rest
    assert rows["blurs"]["vertical"].startswith(f"{SOURCE}  Vertical box blur")
    assert rows["metrics"]["mae"].startswith(f"{SOURCE}  Mean absolute error")
    for name in ("gaussian", "motion", "average", "defocus"):
        assert rows["blurs"][name].startswith("built-in "), (name, rows["blurs"][name])
    for name in ("mse", "psnr", "ssim"):
        assert rows["metrics"][name].startswith("built-in "), (name, rows["metrics"][name])
    assert rows["models"] and "broken" not in rows["metrics"]
    err = done.stderr
    assert (
        f"PluginWarning: plugin {DIST} 0.1 provides blur 'gaussian', which is built in; the built-in wins"
        in err
    )
    assert (
        f"PluginWarning: blurkit could not load plugin metric 'broken' (bk_broken_plugin:metric) from {DIST} 0.1: "
        "ImportError: bk_broken_plugin needs the package 'not_installed_dependency'"
    ) in err


def test_plugins_are_usable_and_broken_one_is_harmless(plugin_path):
    out = _python(
        plugin_path,
        f"""
        import json, sys, warnings
        import numpy as np
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            import blurkit
            from blurkit.registry import BLURS, METRICS, PluginWarning
            from blurkit.blurs import GaussianBlur, blur
            from blurkit.testing import check_blur, check_metric

            blur_cls = BLURS.get("vertical")
            assert blur_cls.__module__ == "bk_demo_plugin"
            assert sys.modules["bk_demo_plugin"].__file__.startswith({str(plugin_path)!r})
            img = np.zeros((9, 9), np.float32)
            img[4] = 1.0  # a horizontal line spreads vertically ...
            out = BLURS.create("vertical", length=3)(img, seed=0)
            np.testing.assert_allclose(out["image"][3:6], 1 / 3, rtol=1e-6)
            assert out["image"][:3].max() == 0 and out["image"][6:].max() == 0
            assert out["params"]["length"] == 3 and out["kernel"].shape == (3, 1)
            line = np.zeros((9, 9), np.uint8)
            line[:, 4] = 200  # ... a vertical one is left alone
            assert np.array_equal(blur(line, "vertical", seed=1, length=(3, 7)), line)
            check_blur("vertical")
            assert BLURS.get("gaussian") is GaussianBlur
            assert BLURS.find("vertical")["source"] == {SOURCE!r}

            mae = METRICS.get("mae")
            assert mae(np.zeros((4, 4), np.uint8), np.full((4, 4), 51, np.uint8)) == 0.2
            assert METRICS.get("psnr")(np.zeros((8, 8)), np.full((8, 8), 0.1)) == 20.0
            assert "broken" not in METRICS and "broken" not in METRICS.list()
            check_metric("mae")  # includes keras_metric in model.compile / evaluate
        print(json.dumps([str(w.message) for w in caught if issubclass(w.category, PluginWarning)]))
        """,
    )
    warned = json.loads(out.strip().splitlines()[-1])
    assert any("'gaussian'" in m and "built-in wins" in m for m in warned), warned
    assert any("'broken'" in m and DIST in m and "ImportError" in m for m in warned), warned


def test_plugins_load_lazily(plugin_path):
    _python(
        plugin_path,
        """
        import sys, warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import blurkit
            from blurkit.registry import BLURS, METRICS, PluginWarning
            assert "bk_demo_plugin" not in sys.modules
            BLURS.get("gaussian"), METRICS.get("psnr"), BLURS.create("average", size=3)
        # built-in lookups do not even scan the entry points (no 'built-in wins' warning yet)
        assert not [w for w in caught if issubclass(w.category, PluginWarning)], caught
        assert "bk_demo_plugin" not in sys.modules and not BLURS._plugins_loaded
        assert BLURS.get("vertical").__module__ == "bk_demo_plugin"  # first miss loads the plugins
        assert "bk_demo_plugin" in sys.modules
        assert "bk_broken_plugin" not in sys.modules and not METRICS._plugins_loaded  # per registry
        """,
    )


def test_explicit_override_beats_builtin_and_plugin(plugin_path):
    _python(
        plugin_path,
        """
        import warnings
        from blurkit.registry import BLURS, DuplicateComponentError, PluginWarning
        from bk_demo_plugin import NotGaussian
        try:
            BLURS.register("gaussian", NotGaussian)
        except DuplicateComponentError as exc:
            assert "override=True" in str(exc)
        else:
            raise AssertionError("replacing a built-in without override=True must fail")
        BLURS.register("gaussian", NotGaussian, override=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            BLURS.list()
        # no 'built-in wins' warning: the name is no longer a built-in, and explicit beats the plugin
        assert not [w for w in caught if issubclass(w.category, PluginWarning)], caught
        assert BLURS.get("gaussian") is NotGaussian
        assert BLURS.find("gaussian")["source"] == "user"
        assert BLURS.get("vertical").__module__ == "bk_demo_plugin"
        """,
    )


@pytest.mark.parametrize("plugins_first", [True, False], ids=["plugins-loaded-first", "plugins-loaded-after"])
def test_your_own_component_replaces_a_plugin_of_its_name(plugin_path, plugins_first):
    """Regression: ``METRICS.list()`` before ``@register_metric("mae")`` made it raise DuplicateComponentError
    naming the plugin; without the listing the same registration won (as docs/plugins.md says it does)."""
    _python(
        plugin_path,
        f"""
        import warnings
        from blurkit import register_metric
        from blurkit.registry import METRICS, DuplicateComponentError, PluginWarning
        if {plugins_first}:
            assert METRICS.find("mae")["source"] == {SOURCE!r}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")

            @register_metric("mae")
            def mine(y_true, y_pred):
                return 0.0

            assert "mae" in METRICS.list()
        assert not [w for w in caught if issubclass(w.category, PluginWarning) and "'mae'" in str(w.message)], caught
        assert METRICS.get("mae") is mine and METRICS.find("mae")["source"] == "user"
        try:
            register_metric("psnr", mine)
        except DuplicateComponentError as exc:
            assert "built-in" in str(exc)
        else:
            raise AssertionError("taking a built-in's name without override=True must fail")
        """,
    )


def test_override_in_process_is_restored():
    original = BLURS.entry("average")

    class Boxier(AverageBlur):
        """A user's replacement for the built-in ``average``."""

    with pytest.raises(DuplicateComponentError, match="override=True"):
        BLURS.register("average", Boxier)
    try:
        BLURS.register("average", Boxier, override=True)
        assert BLURS.get("average") is Boxier and BLURS.find("average")["source"] == "user"
    finally:
        BLURS.register("average", original.obj, override=True, source=original.source)
    assert BLURS.entry("average") == original


def test_plugins_get_the_contract_tests(plugin_path):
    """tests/test_blurs.py parametrizes over BLURS.list(): an installed plugin is contract-tested."""
    done = _run(
        plugin_path, "-m", "pytest", "tests/test_blurs.py", "-k", "test_contract and vertical",
        "-p", "no:cacheprovider", "-q", "-rA", "--no-header",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    passed = set(re.findall(r"^PASSED (\S+)", done.stdout, re.M))
    assert "tests/test_blurs.py::test_contract[vertical]" in passed, done.stdout
    assert any(t.startswith("tests/test_blurs.py::test_contract_with_noise_and_quantize[") for t in passed)
    assert all("vertical" in t for t in passed)


def test_the_plugin_guide_examples_run_as_written():
    """docs/plugins.md's metric and blur were skeletons with ``...`` bodies: pasted, the blur failed with
    "'NoneType' object is not iterable". They are complete now, and pass the contract harness."""
    from blurkit.registry import METRICS, register_blur
    from blurkit.testing import check_blur, check_metric

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "plugins.md").read_text(), re.S)
    assert "register_metric" in blocks[0] and "class VerticalBlur" in blocks[1]
    before = {name: reg.entry(name) if name in reg else None for reg, name in ((METRICS, "mae"), (BLURS, "vertical"))}
    try:
        exec(blocks[0], {})  # registers "mae"
        guide = {}
        exec(blocks[1], guide)
        register_blur(guide["VerticalBlur"])  # the bare decorator, as the guide says: under its name
        check_metric("mae")
        check_blur("vertical")
        assert BLURS.create("vertical", half=2).kernel({"half": 2}).shape == (5, 1)
    finally:  # an installed plugin of either name is put back as it was
        for reg, name in ((METRICS, "mae"), (BLURS, "vertical")):
            reg.unregister(name)
            if before[name] is not None:
                reg.register(name, before[name].obj, override=True, source=before[name].source)


def test_a_plugin_that_registers_its_own_name_is_a_warning(tmp_path, monkeypatch):
    """A plugin module that registered another object under its entry point's name while it was imported
    (``@register_metric("dupreg")``) raised DuplicateComponentError out of the registry: `blurkit list` ended
    in a traceback and the registry's other plugins were never loaded. It is a PluginWarning now, and the
    object its import registered stays."""
    from blurkit.registry import METRICS, PluginWarning

    (tmp_path / "bk_dupreg.py").write_text(textwrap.dedent("""
        from blurkit.registry import register_metric

        @register_metric("bk_dupreg")
        def first(y_true, y_pred):
            return 0.0

        def second(y_true, y_pred):
            return 1.0
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="bk_dupreg", value="bk_dupreg:second", group="blurkit.metrics")
    try:
        with pytest.warns(PluginWarning, match=r"could not load plugin metric 'bk_dupreg' \(bk_dupreg:second\).*"
                                               r"already registered"):
            METRICS._load_entry_point(ep)
        assert METRICS.get("bk_dupreg").__name__ == "first"
    finally:
        METRICS._entries.pop("bk_dupreg", None)
        sys.modules.pop("bk_dupreg", None)


def _hijacking_plugin(folder: Path, module: str, *, imports_blurkit_layers: bool) -> None:
    """Write plugin module ``module``: a metric, and a Keras class registered under blurkit's own
    ``blurkit>PadToMultiple``."""
    (folder / f"{module}.py").write_text(textwrap.dedent(f"""
        import keras
        {"import blurkit.models.layers" if imports_blurkit_layers else ""}

        @keras.saving.register_keras_serializable(package="blurkit", name="PadToMultiple")
        class Hijack(keras.layers.Layer):
            pass

        def metric(y_true, y_pred):
            return 0.0
    """))


def test_a_plugin_cannot_replace_blurkits_keras_layers(tmp_path, monkeypatch):
    """A plugin registering a Keras class under one of blurkit's names (``blurkit>PadToMultiple``) replaced
    blurkit's layer in every model file loaded after it, silently. blurkit's is put back, with a warning."""
    import keras

    from blurkit.models.layers import PadToMultiple
    from blurkit.registry import METRICS, PluginWarning

    _hijacking_plugin(tmp_path, "bk_hijack", imports_blurkit_layers=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="bk_hijack", value="bk_hijack:metric", group="blurkit.metrics")
    objects = keras.saving.get_custom_objects()
    try:
        with pytest.warns(PluginWarning, match=r"registered Keras objects under blurkit's own names "
                                               r"\(blurkit>PadToMultiple\); blurkit's are kept"):
            METRICS._load_entry_point(ep)
        assert objects["blurkit>PadToMultiple"] is PadToMultiple
        assert METRICS.get("bk_hijack").__name__ == "metric"  # the plugin itself still loads
    finally:
        objects["blurkit>PadToMultiple"] = PadToMultiple
        METRICS._entries.pop("bk_hijack", None)
        sys.modules.pop("bk_hijack", None)


def test_a_plugin_importing_blurkits_layers_first_cannot_replace_them(tmp_path):
    """The same, when blurkit's layers were not imported yet: the plugin imported them, then registered its
    own class under one of their names, and won, silently (the review of the fix above). blurkit's objects
    are now registered before a plugin is imported, whenever Keras is. A fresh process, so that they are not
    imported already."""
    _hijacking_plugin(tmp_path, "bk_hijack2", imports_blurkit_layers=True)
    code = textwrap.dedent("""
        import sys, warnings
        from importlib import metadata
        import keras
        assert "blurkit.models.layers" not in sys.modules
        from blurkit.registry import METRICS, PluginWarning
        ep = metadata.EntryPoint(name="bk_hijack2", value="bk_hijack2:metric", group="blurkit.metrics")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            METRICS._load_entry_point(ep)
        from blurkit.models.layers import PadToMultiple
        assert keras.saving.get_custom_objects()["blurkit>PadToMultiple"] is PadToMultiple
        assert any(issubclass(w.category, PluginWarning) and "blurkit>PadToMultiple" in str(w.message)
                   for w in caught), [str(w.message) for w in caught]
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")]),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
