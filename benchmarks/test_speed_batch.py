"""Speed of batch deblurring (issue 7): a folder of photos through :func:`blurkit.batch.deblur_files`, the
engine of ``blurkit deblur``, with file I/O overlapped with the model (``--io-workers 2``, the default) and
without (``--io-workers 0``: read, restore and write one file after the other).

Both modes run in the same session, alternating (sequential then overlapped, then the other way round), so
a change in the machine's load hits both alike. In the sequential runs the time spent reading and writing
files (decode; encode and atomic write with fsync) is clocked as well: that is what overlapping can hide,
so ``ideal_speedup`` = sequential time / (sequential time - that I/O time). A third run with an identity
"model" times the file I/O alone, without the model competing for the cores. Nothing is asserted about the
timings.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import threading
import time
from pathlib import Path

import pytest
from _util import QUICK, attach, default_subject, make_photo, record, subject, timed

#: 200 JPEG photos, each a random crop of a scikit-image photo resized to 256x192 (quality 90). One run
#: with the default preset took 25-33 s on the 2-core test machine under a load average of 6-8 (3.4 min
#: for this file: three pairs of runs and the I/O-only runs); less on an idle machine (not measured).
PHOTOS, SIZE, ROUNDS = (16, (96, 128), 1) if QUICK else (200, (192, 256), 3)
WORKERS, PREFETCH = 2, 4  # the CLI's defaults


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    import cv2

    folder = tmp_path_factory.mktemp("batch") / "photos"
    folder.mkdir()
    h, w = SIZE
    for i in range(PHOTOS):
        img = cv2.cvtColor(make_photo(h, w, index=i, seed=7), cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(folder / f"photo{i:03d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def _rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux; 0 elsewhere)."""
    import os

    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError):
        return 0.0


def _run(deblurrer, src: Path, out: Path, workers: int) -> tuple[float, float]:
    """One batch: (seconds, growth of resident memory above the start, MB, sampled every 5 ms)."""
    from blurkit.batch import deblur_files, folder_jobs

    start, peak, stop = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    summary = deblur_files(deblurrer, folder_jobs(src, out), workers=workers, prefetch=PREFETCH)
    seconds = time.perf_counter() - t
    stop.set()
    sampler.join()
    assert summary.done == PHOTOS and not summary.failed, summary.failed[:3]
    shutil.rmtree(out)
    return seconds, max(0.0, peak[0] - start)


class _Identity:
    def predict(self, image):
        return image


def _clocked(fn, clock: list[float]):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock[0] += time.perf_counter() - t

    return wrapper


def test_batch_deblur(benchmark, photo_dir, tmp_path, monkeypatch):
    """Images/s of the default preset over the folder, sequential and overlapped; the speedup; file I/O alone.

    pytest-benchmark's own timing is of one round: both modes and the I/O-only run.
    """
    sub = subject(default_subject())
    d = sub.deblurrer
    h, w = SIZE
    d.predict(make_photo(h, w))  # traced on this size before anything is timed
    modes = {"sequential": 0, "overlapped": WORKERS}
    times: dict[str, list[float]] = {m: [] for m in (*modes, "io_only")}
    growth: dict[str, list[float]] = {m: [] for m in modes}
    orders = itertools.cycle([list(modes), list(modes)[::-1]])

    io_in_run: list[float] = []  # seconds of file I/O inside each sequential run
    import blurkit.data.io as bio

    def one_round() -> None:
        for mode in next(orders):
            clock = [0.0]
            with monkeypatch.context() as m:
                if not modes[mode]:  # one thread: the I/O time is on the critical path
                    m.setattr(bio, "read_image", _clocked(bio.read_image, clock))
                    m.setattr(bio, "write_image", _clocked(bio.write_image, clock))
                s, g = _run(d, photo_dir, tmp_path / mode, modes[mode])
            if not modes[mode]:
                io_in_run.append(clock[0])
            times[mode].append(s)
            growth[mode].append(g)
        times["io_only"].append(_run(_Identity(), photo_dir, tmp_path / "io", 0)[0])

    timed(benchmark, one_round, rounds=ROUNDS)
    med = {m: statistics.median(v) for m, v in times.items()}
    mb = h * w * 3 / 1e6
    common = {"photos": PHOTOS, "size": f"{w}x{h}", "format": "jpg", "rounds": ROUNDS, "subject": sub.name,
              "prefetch": PREFETCH}
    seq = record("batch", "sequential", seconds=med["sequential"], images_per_s=PHOTOS / med["sequential"],
                 workers=0, runs_s=times["sequential"], rss_growth_mb=max(growth["sequential"]),
                 io_s=statistics.median(io_in_run), io_share=statistics.median(io_in_run) / med["sequential"],
                 ideal_speedup=med["sequential"] / (med["sequential"] - statistics.median(io_in_run)),
                 note="io_s: file I/O inside the run; ideal_speedup: if all of it were hidden", **common)
    ovl = record("batch", "overlapped", seconds=med["overlapped"], images_per_s=PHOTOS / med["overlapped"],
                 workers=WORKERS, runs_s=times["overlapped"], rss_growth_mb=max(growth["overlapped"]),
                 speedup=med["sequential"] / med["overlapped"],
                 memory_bound_images=2 * PREFETCH + 1, memory_bound_mb=(2 * PREFETCH + 1) * mb,
                 note="speedup: sequential time / overlapped time", **common)
    io = record("batch", "io_only", seconds=med["io_only"], images_per_s=PHOTOS / med["io_only"],
                note="file I/O alone: identity model, sequential", photos=PHOTOS, runs_s=times["io_only"])
    attach(benchmark, sequential=seq, overlapped=ovl, io_only=io)
    print(f"\nbatch of {PHOTOS} {w}x{h} JPEGs, {sub.name}, medians of {ROUNDS}: "
          f"sequential {seq['images_per_s']:.2f} img/s, overlapped {ovl['images_per_s']:.2f} img/s, "
          f"speedup {ovl['speedup']:.3f}x; file I/O in the sequential run {seq['io_s']:.2f} s "
          f"({100 * seq['io_share']:.1f} %, ideal speedup {seq['ideal_speedup']:.3f}x), alone {io['seconds']:.2f} s; "
          f"RSS growth {seq['rss_growth_mb']:.0f} / {ovl['rss_growth_mb']:.0f} MB")
