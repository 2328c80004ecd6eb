"""blurkit: train, compare, ship and apply image deblurring models.

``import blurkit`` is light: NumPy only. OpenCV is imported with the blur generators and image I/O, and
TensorFlow/Keras only when a model is built, trained or loaded.

Examples:
    >>> import blurkit
    >>> "gaussian" in blurkit.BLURS.list()
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blurkit._lazy import attach
from blurkit.registry import (
    BLURS,
    METRICS,
    MODELS,
    Registry,
    register_blur,
    register_metric,
    register_model,
)

__version__ = "0.1.0"

# name -> module holding it; imported on first attribute access (PEP 562).
_LAZY = {
    "Deblurrer": "blurkit.deblurrer",
    "ModelFileError": "blurkit.deblurrer",
    "TrainingDivergedError": "blurkit.deblurrer",
    "read_image": "blurkit.data.io",
    "write_image": "blurkit.data.io",
    "list_images": "blurkit.data.io",
    "Blur": "blurkit.blurs.base",
    "psnr": "blurkit.metrics.functional",
    "ssim": "blurkit.metrics.functional",
    "mse": "blurkit.metrics.functional",
}

__all__ = [
    "BLURS",
    "MODELS",
    "METRICS",
    "Registry",
    "register_blur",
    "register_model",
    "register_metric",
    "__version__",
    "Deblurrer",
    "ModelFileError",
    "TrainingDivergedError",
    "read_image",
    "write_image",
    "list_images",
    "Blur",
    "psnr",
    "ssim",
    "mse",
]
assert set(_LAZY) <= set(__all__)

if TYPE_CHECKING:  # pragma: no cover
    from blurkit.blurs.base import Blur
    from blurkit.data.io import list_images, read_image, write_image
    from blurkit.deblurrer import Deblurrer, ModelFileError, TrainingDivergedError
    from blurkit.metrics.functional import mse, psnr, ssim


#: Sub-packages reachable as attributes after ``import blurkit`` alone (``blurkit.metrics.keras_metric``),
#: imported on first access like the names above.
_SUBMODULES = ("batch", "blurs", "classical", "data", "export", "metrics", "models", "plots", "presets", "testing",
               "tiling", "training")

# not for type checkers: they would take any name as an attribute (Any) instead of these lazy ones
if not TYPE_CHECKING:
    __getattr__, __dir__ = attach(__name__, _LAZY, __all__, globals(), submodules=_SUBMODULES)
else:  # pragma: no cover
    from blurkit import (  # noqa: F401
        batch,
        blurs,
        classical,
        data,
        export,
        metrics,
        models,
        plots,
        presets,
        testing,
        tiling,
        training,
    )
