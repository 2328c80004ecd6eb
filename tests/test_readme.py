"""README's set-up commands and CI agree (CI runs exactly the README test command)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- setup -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md must have a ```bash block right after <!-- setup -->"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_exactly_two_setup_commands():
    cmds = _setup_commands()
    assert len(cmds) == 2, cmds
    assert "pip install" in cmds[0] and "blurkit demo" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    test_cmd = _setup_commands()[1]
    test_part = test_cmd.split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_part in ci, f"CI must run the README test command {test_part!r}"
    assert "-eq 5" in ci, "CI must treat pytest's exit code 5 (no tests) as a failure"
