"""Start-up time: ``python -c "import blurkit"`` and ``blurkit --help`` in fresh processes (wall time).

The bare interpreter (``python -c pass``) is measured too, so the library's own share is visible.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _util import STARTUP_ROUNDS, attach, record, timed


def _blurkit_command() -> list[str]:
    exe = Path(sys.executable).with_name("blurkit")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("blurkit")
    return [found] if found else [sys.executable, "-m", "blurkit.cli.main"]


COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import blurkit": [sys.executable, "-c", "import blurkit"],
    "blurkit --help": [*_blurkit_command(), "--help"],
}


@pytest.mark.parametrize("case", list(COMMANDS))
def test_startup(benchmark, tmp_path, case):
    """Median wall time of the command in a new process (after one warm-up run for the disk cache)."""
    cmd = COMMANDS[case]
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)

    def run():
        subprocess.run(cmd, check=True, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    t = timed(benchmark, run, rounds=STARTUP_ROUNDS, warmup=1)
    vals = {"seconds": t["median"], "min_s": t["min"], "rounds": t["rounds"], "command": " ".join(cmd)}
    record("startup", case, **vals)
    attach(benchmark, **vals)
