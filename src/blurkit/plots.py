"""Figures written to PNG files (matplotlib, no display needed).

Examples:
    >>> import tempfile, os
    >>> from blurkit.plots import plot_history
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = plot_history({"loss": [0.1, 0.05], "val_loss": [0.12, 0.07],
    ...                         "psnr": [20.0, 24.0], "val_psnr": [19.0, 23.0]}, os.path.join(tmp, "c.png"))
    ...     os.path.getsize(out) > 0
    True
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_history", "plot_comparison", "detail_crop"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _defaults() -> Iterator[None]:
    """Matplotlib's default settings for the figure drawn inside, whatever the user's matplotlibrc or style
    says (``text.usetex: True`` on a machine without LaTeX failed every figure, after a training run's model
    was saved), put back afterwards; its warnings about glyphs a font lacks (a title naming ``猫.png``) are
    not raised as errors under ``-W error``. The figure functions are decorated with it (``@_defaults()``)."""
    import matplotlib

    with matplotlib.rc_context(), warnings.catch_warnings():
        matplotlib.rcdefaults()  # the backend is not reset (matplotlib leaves it out)
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
        yield


def _title(text: str) -> str:
    """``text`` as matplotlib can draw it: a file name that is not UTF-8 (its undecodable bytes held as lone
    surrogates, as Python lists it) with U+FFFD in their place (its text engine refused the name with a
    TypeError), and ``$`` escaped (``price$5$.png`` is not mathtext).

    Examples:
        >>> _title("caf\\udce9.png: blurred 24.42 dB")
        'caf\ufffd.png: blurred 24.42 dB'
        >>> print(_title("price$5$.png"))
        price\\$5\\$.png
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("$", r"\$")


def _save(fig, path: str | os.PathLike) -> Path:
    """Save a figure atomically (:func:`~blurkit.data.io.atomic_write_bytes`: a hidden temporary file beside
    ``path``, fsynced, then renamed over it; what a killed write leaves is cleaned up by the next one).

    The format follows the suffix (``.png`` when there is none, as matplotlib does).
    """
    import io

    from blurkit.data.io import atomic_write_bytes

    path = Path(path)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=path.suffix[1:].lower() or "png", dpi=110, bbox_inches="tight")
    finally:
        _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


@_defaults()
def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike, *, loss: str | None = None
                 ) -> Path:
    """Training curves: loss and PSNR per epoch, training vs validation.

    Told apart without colour too (greyscale print, colour blindness): training is a solid line with round
    markers, validation a dashed one with square markers. A dotted vertical line marks the best epoch, the one
    a checkpoint keeps (the lowest validation loss, or training loss without validation).

    Args:
        history: Keras-style history (``loss``, ``val_loss``, ``psnr``, ``val_psnr``, ...).
        path: PNG file to write.
        loss: The loss's name, for the axis label (``"charbonnier"``).
    """
    plt = _pyplot()
    keys = [k for k in ("loss", "psnr", "ssim") if k in history]
    if not keys:
        raise ValueError(f"history has no loss/psnr/ssim curves (keys: {sorted(history)})")
    monitor = "val_loss" if np.isfinite(np.array(history.get("val_loss", []), dtype=float)).any() else "loss"
    chosen = np.array(history.get(monitor, []), dtype=float)
    best = int(np.nanargmin(chosen)) + 1 if np.isfinite(chosen).any() else None
    # constrained: each axis label clears its neighbour's tick labels
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False,
                             layout="constrained")
    for ax, k in zip(axes[0], keys, strict=True):
        # one value per epoch, NaN (None once saved) where an epoch had none: a gap in the curve
        train = np.array(history[k], dtype=float)
        ax.plot(np.arange(1, len(train) + 1), train, "o-", markersize=3, label="training")
        if f"val_{k}" in history:
            val = np.array(history[f"val_{k}"], dtype=float)
            ax.plot(np.arange(1, len(val) + 1), val, "s--", markersize=3, label="validation")
        if best is not None:
            ax.axvline(best, color="0.35", linestyle=":", linewidth=1.2,
                       label=f"best epoch ({best}, {'validation' if monitor == 'val_loss' else 'training'} loss)")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # epochs 1, 2, 3: no 1.5
        ax.set_ylabel({"psnr": "PSNR (dB)", "ssim": "SSIM", "loss": f"loss ({loss})" if loss else "loss"}.get(k, k))
        values = [v for key in (k, f"val_{k}") for v in np.array(history.get(key, []), dtype=float)
                  if np.isfinite(v)]
        if k == "loss" and values and min(values) > 0:  # psnr_loss is negative (dB): a linear axis
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def detail_crop(image: np.ndarray, size: int) -> tuple[int, int]:
    """The top-left corner of the ``size`` x ``size`` window of ``image`` with the most detail (the largest sum
    of gradient magnitudes), where a restoration's differences show.

    Examples:
        >>> img = np.zeros((64, 80))
        >>> img[40:56, 8:24] = np.indices((16, 16)).sum(axis=0) % 2  # a checkerboard patch
        >>> detail_crop(img, 16)
        (40, 8)
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = img.mean(axis=-1)
    h, w = img.shape
    size = min(size, h, w)
    gy, gx = np.gradient(img)
    energy = np.hypot(gy, gx)
    s = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # integral image: any window's sum in 4 lookups
    sums = s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(y), int(x)


@_defaults()
def plot_comparison(
    panels: Sequence[np.ndarray], titles: Sequence[str], path: str | os.PathLike, *, rows: int = 1,
    zoom: int | None = None,
) -> Path:
    """Images side by side (e.g. blurred | restored | sharp), with titles (put the PSNR there).

    Args:
        panels: Images (uint8/uint16 or float [0, 1]); ``rows * columns`` of them, row by row (the images of
            a row share a size when ``zoom`` is given).
        titles: One title per panel.
        path: PNG file to write.
        rows: Number of rows of the grid.
        zoom: Under each row, the same ``zoom`` x ``zoom`` pixel crop of each of its images, shown pixel for
            pixel, where the row's last image (the sharp one, by convention) has the most detail
            (:func:`detail_crop`): whole photos shrunk to a panel hide the differences between methods.
    """
    if len(panels) != len(titles):
        raise ValueError(f"{len(panels)} panels but {len(titles)} titles")
    plt = _pyplot()
    cols = int(np.ceil(len(panels) / rows))
    grid: list[list[tuple[np.ndarray, str]]] = []
    crops: list[bool] = []  # crops are shown pixel for pixel; whole photos smoothly shrunk
    for r in range(rows):
        row = [(np.asarray(p), t) for p, t in zip(panels[r * cols:(r + 1) * cols], titles[r * cols:(r + 1) * cols],
                                                  strict=True)]
        grid.append(row)
        crops.append(False)
        if zoom and row:
            y, x = detail_crop(_unit(row[-1][0]), zoom)
            side = min(zoom, *row[-1][0].shape[:2])
            grid.append([(p[y:y + side, x:x + side], f"{side}x{side} px at ({x}, {y})" if i == 0 else "")
                         for i, (p, _) in enumerate(row)])
            crops.append(True)
    ratios = [max(1e-3, max(p.shape[0] / max(p.shape[1], 1) for p, _ in row)) if row else 1.0 for row in grid]
    size = 3.6
    fig, axes = plt.subplots(len(grid), cols, figsize=(size * cols, size * sum(ratios) + 0.4 * len(grid)),
                             squeeze=False, gridspec_kw={"height_ratios": ratios})
    for ax in axes.ravel():
        ax.axis("off")
    for axrow, row, crop in zip(axes, grid, crops, strict=True):  # each row as high as its images (no white bands)
        for ax, (img, title) in zip(axrow, row, strict=False):  # a row may have spare cells
            img = _unit(img)
            ax.imshow(img.squeeze(), cmap="gray" if img.ndim == 2 or img.shape[-1] == 1 else None, vmin=0, vmax=1,
                      interpolation="nearest" if crop else "antialiased")
            ax.set_title(_title(title), fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _unit(img: np.ndarray) -> np.ndarray:
    """An image as float in [0, 1] for display (:func:`blurkit.data.io.to_float`, clipped)."""
    from blurkit.data.io import to_float

    return np.clip(to_float(img), 0, 1)
