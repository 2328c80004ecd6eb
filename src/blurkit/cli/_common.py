"""Argument helpers shared by the CLI commands (standard library only)."""

from __future__ import annotations

import json
from typing import Any

from blurkit.cli.main import CLIError


def parse_value(text: str) -> Any:
    """``"2"`` -> 2, ``"0.5:3"`` -> (0.5, 3.0), ``"[1, 2]"`` -> [1, 2], ``"reflect"`` -> "reflect".

    Examples:
        >>> parse_value("0.5:3"), parse_value("2"), parse_value("true"), parse_value("reflect")
        ((0.5, 3.0), 2, True, 'reflect')
    """
    if ":" in text and not text.startswith(("[", "{", '"')):
        lo, _, hi = text.partition(":")
        try:
            return (float(lo), float(hi))
        except ValueError:
            raise CLIError(f"bad range {text!r}: expected LOW:HIGH numbers") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """Parse repeated ``key=value`` arguments into keyword arguments."""
    out: dict[str, Any] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"{what} must look like key=value, got {item!r}")
        out[key.replace("-", "_")] = parse_value(value)
    return out


def load_deblurrer(model: str | None, preset: str | None = None):
    """A Deblurrer from a model file, or from a shipped preset (the default one when both are None)."""
    from pathlib import Path

    from blurkit.deblurrer import Deblurrer, ModelFileError

    try:
        if model:
            if not Path(model).is_file():
                raise CLIError(f"model file not found: {model}")
            return Deblurrer.load(model)
        from blurkit.presets import DEFAULT_PRESET

        return Deblurrer.from_preset(preset or DEFAULT_PRESET)
    except (ModelFileError, KeyError) as exc:
        raise CLIError(str(exc).strip("'\"")) from None
