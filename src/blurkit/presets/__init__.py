"""Pretrained models shipped inside the package (nothing is downloaded at run time).

A preset is a blurkit ``.keras`` file in this folder; its name is the file name without the suffix.
Each one has a model card in ``docs/`` (architecture, training data and licences, recipe, results).
``blurkit list presets`` lists them with :func:`describe_preset`, which reads only the file's blurkit
metadata (no TensorFlow). :func:`choose_preset` picks one for a given photo (:mod:`blurkit.presets.auto`:
clean 8-bit, or noisy / JPEG-compressed); ``blurkit deblur`` does that per photo when given no model file.

Examples:
    >>> from blurkit.presets import list_presets
    >>> isinstance(list_presets(), list)
    True
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from blurkit.presets.auto import choose_preset

__all__ = ["DEFAULT_PRESET", "AUTO", "SHA256", "list_presets", "preset_path", "describe_preset", "choose_preset"]

DEFAULT_PRESET = "gaussian-v1"
#: Not a file: ``blurkit deblur --preset auto`` (its default) runs :func:`choose_preset` on each photo.
AUTO = "auto"
_HERE = Path(__file__).resolve().parent
#: The SHA-256 of each shipped preset's file. A preset's weights never change under its name: a retrained model
#: ships under a new one (``gaussian-v2``), so results published with a preset's name stay reproducible
#: (docs/compatibility.md). ``tests/test_presets.py`` holds the files to these, and the restorations to values
#: recorded when they were published.
SHA256 = {
    "gaussian-v1": "e74064765d5947eb6b5b72f0d49b5801156a397fe57ba97859cb41936606c113",
    "gaussian-v1-noisy": "d0e40994008213317a3736da173a8e7e837a521079af29afb6856ed3a1cf8a89",
}


def list_presets() -> list[str]:
    """Names of the presets shipped with this installation, sorted."""
    return sorted(p.stem for p in _HERE.glob("*.keras"))


def preset_path(name: str = DEFAULT_PRESET) -> Path:
    """The file of preset ``name``.

    Raises:
        KeyError: No such preset; the message lists the shipped ones and the closest name.
        TypeError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"a preset name is a string (blurkit.presets.list_presets()), got {name!r}")
    names = list_presets()
    path = _HERE / f"{name}.keras"
    if name not in names:  # not a path: "../x" names no preset
        if name == AUTO:
            raise KeyError(f"{AUTO!r} is not one preset but a choice per photo: "
                           f"blurkit.presets.choose_preset(image) names the one to load. Shipped presets: "
                           f"{', '.join(names) or '(none)'}")
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown preset {name!r}{hint or '.'} Shipped presets: {', '.join(names) or '(none)'}")
    return path


def describe_preset(name: str) -> dict[str, Any]:
    """What ``blurkit list presets`` shows of preset ``name``, from its metadata alone.

    Only the blurkit metadata inside the file is read (:meth:`blurkit.Deblurrer.read_metadata`): neither
    TensorFlow nor the weights are loaded.

    Args:
        name: A name from :func:`list_presets`.

    Returns:
        ``{"name", "path", "default", "summary"}``; ``summary`` is one line such as ``wiener_unet model
        for gaussian blur (sigma 0.3-3.5)``, or says why the file cannot be read.

    Raises:
        KeyError: No such preset.
    """
    from blurkit.deblurrer import Deblurrer, ModelFileError

    path = preset_path(name)
    try:
        summary = _summary(Deblurrer.read_metadata(path))
    except ModelFileError as exc:
        summary = f"unreadable preset file: {exc}"
    return {"name": name, "path": str(path), "default": name == DEFAULT_PRESET, "summary": summary}


def _summary(meta: dict[str, Any]) -> str:
    """One line about a model from its blurkit metadata: the model, the blur it was trained for and, where
    ``benchmarks/train_joint.py`` recorded them, the camera-file degradations (noise, JPEG) it saw.

    (Not the ``validation`` scores a file may hold: a preset's come from an early training stage's patches,
    not from its model card's full-photo benchmark, and would mislead.)
    """
    model = (meta.get("model") or {}).get("name") or "model"
    blur = meta.get("blur") or {}
    text = f"{model} model"
    if isinstance(blur.get("name"), str):
        text += f" for {blur['name']} blur"
        sigma = (blur.get("config") or {}).get("sigma")
        if isinstance(sigma, (list, tuple)) and len(sigma) == 2:
            text += f" (sigma {sigma[0]:g}-{sigma[1]:g})"
        elif isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
            text += f" (sigma {sigma:g})"
    joint = (meta.get("training") or {}).get("joint") or {}
    rough = []
    if isinstance(joint.get("noise"), (int, float)) and joint["noise"] > 0:
        rough.append(f"sensor noise up to {joint['noise']:g}")
    if isinstance(joint.get("jpeg"), int) and not isinstance(joint["jpeg"], bool):
        rough.append(f"JPEG quality {joint['jpeg']}-95")
    if rough:
        text += ", trained on inputs with " + " and ".join(rough) + " too"
    return text
