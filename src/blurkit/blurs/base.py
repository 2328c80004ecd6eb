"""The :class:`Blur` base class, parameter checks and (de)serialization of blur generators.

A blur generator samples parameters (``sample``), makes a kernel from them (``kernel``) and applies it
(``apply``: convolution, then noise (additive Gaussian, and signal-dependent with ``shot``), then optional
8-bit quantization, then an optional JPEG round trip). Calling it does the three steps and returns
``{"image", "kernel", "params"}``, so non-blind methods and evaluations get the kernel that was used.

Images are ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``, uint8, uint16 or float (any range). Work is
done in float32; the output keeps the input's shape and dtype. Integer outputs are rounded and clipped to
the dtype's range; float outputs are clipped to [0, 1] only when the input was within [0, 1].

Border convention: ``border="reflect"`` (default) is :func:`numpy.pad`'s "reflect" (``dcb|abcd|cba``,
``cv2.BORDER_REFLECT_101``); also "symmetric", "edge", "constant" (zeros) and "wrap" (circular). See
:mod:`blurkit.blurs.functional`.

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import GaussianBlur, deserialize_blur, serialize_blur
    >>> blur = GaussianBlur(sigma=(1.0, 2.0), noise=0.01, seed=0)
    >>> out = blur(np.zeros((8, 8, 3), np.uint8), seed=42)
    >>> sorted(out), out["image"].shape, out["image"].dtype
    (['image', 'kernel', 'params'], (8, 8, 3), dtype('uint8'))
    >>> saved = serialize_blur(blur)
    >>> saved["name"], saved["version"], saved["config"]["sigma"]
    ('gaussian', 1, [1.0, 2.0])
    >>> deserialize_blur(saved).get_config() == blur.get_config()
    True
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, cast, overload

import cv2
import numpy as np

from blurkit.blurs.functional import check_border, convolve, jpeg

__all__ = ["Blur", "Range", "check_range", "draw", "jsonable", "serialize_blur", "deserialize_blur"]

#: A fixed number or a ``(low, high)`` range sampled uniformly per image (a tuple, or a list as JSON gives it).
Range = float | tuple[float, float] | Sequence[float]

#: The largest ``noise`` standard deviation a blur takes: the whole [0, 1] data range (more is no photo's).
MAX_NOISE = 1.0
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _number(name: str, value: Any, integer: bool = False) -> float | int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if integer:
        whole = int(cast(float, value))  # a numbers.Real: int() takes it
        if float(value) != whole:
            raise ValueError(f"{name} must be an integer, got {value}")
        return whole
    return float(value)


@overload
def check_range(name: str, value: Any, *, minimum: float | None = None, integer: Literal[True]
                ) -> int | tuple[int, int]: ...


@overload
def check_range(name: str, value: Any, *, minimum: float | None = None, integer: Literal[False] = False
                ) -> float | tuple[float, float]: ...


@overload
def check_range(name: str, value: Any, *, minimum: float | None = None, integer: bool = False
                ) -> float | tuple[float, float]: ...


def check_range(
    name: str, value: Any, *, minimum: float | None = None, integer: bool = False
) -> Any:
    """Validate a parameter given as a number or a ``(low, high)`` pair.

    Args:
        name: Argument name, used in the error messages.
        value: A number, or a list/tuple of two numbers.
        minimum: Smallest allowed value, or None.
        integer: Require integers (returned as ``int``).

    Returns:
        The number (float or int), or a ``(low, high)`` tuple.

    Raises:
        TypeError: Not a number or pair of numbers.
        ValueError: Out of bounds, not finite, or an empty range; the message names the argument.

    Examples:
        >>> check_range("sigma", [1, 2])
        (1.0, 2.0)
        >>> check_range("sigma", (3, 1))
        Traceback (most recent call last):
        ...
        ValueError: sigma range (3, 1) is empty: low must be <= high
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) != 2:
            raise ValueError(f"{name} range must be a (low, high) pair, got {value!r}")
        low, high = (_number(name, v, integer) for v in items)
        if minimum is not None and low < minimum:
            raise ValueError(f"{name} must be >= {minimum:g}, got ({items[0]}, {items[1]})")
        if low > high:
            raise ValueError(f"{name} range ({items[0]}, {items[1]}) is empty: low must be <= high")
        return (low, high)
    number = _number(name, value, integer)
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value}")
    return number


def draw(rng: np.random.Generator, spec: float | tuple) -> float:
    """Sample a :data:`Range`: the number itself, or uniform in ``[low, high)``.

    Examples:
        >>> draw(np.random.default_rng(0), 2.5)
        2.5
        >>> 1.0 <= draw(np.random.default_rng(0), (1.0, 2.0)) < 2.0
        True
    """
    if isinstance(spec, tuple):
        low, high = spec
        return float(low) if low == high else float(rng.uniform(low, high))
    return float(spec)


def jsonable(spec: Any) -> Any:
    """A config value as JSON: tuples become lists."""
    return list(spec) if isinstance(spec, tuple) else spec


def to_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, a seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"seed must be a non-negative int, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"seed must be a numpy Generator, an int or None, got {rng!r}")


def check_image(image: np.ndarray) -> np.ndarray:
    """Check that ``image`` is a supported array (shape, dtype, finite values); return it as an ndarray."""
    given = image
    try:
        image = np.asarray(image)
    except ValueError as exc:  # NumPy's "inhomogeneous shape": a list of images of different sizes
        raise ValueError(f"image must be one array (blur images of different sizes one at a time): {exc}") from None
    if image.dtype.kind in "OUS":  # a path or a string, say: "got shape ()" did not say what was wrong
        raise TypeError(f"image must be a numeric array, got {type(given).__name__}")
    if image.ndim not in (2, 3, 4):
        raise ValueError(f"image must be (H, W), (H, W, C) or (N, H, W, C), got shape {image.shape}")
    hw = image.shape[1:3] if image.ndim == 4 else image.shape[:2]
    if min(hw) < 1 or (image.ndim > 2 and image.shape[-1] < 1):
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    if image.dtype not in _SCALE and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image dtype must be uint8, uint16 or float, got {image.dtype}")
    # min and max propagate NaN: two passes without a temporary array (this runs on every training patch)
    if image.dtype.kind == "f" and not (np.isfinite(image.min()) and np.isfinite(image.max())):
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise ValueError(f"image has {bad} NaN or infinite value{'s' if bad != 1 else ''}: nothing can be "
                         "blurred (or restored, or scored) with them")
    return image


def _finish(out: np.ndarray, image: np.ndarray, quantize: bool) -> np.ndarray:
    """Round/clip the float32 result ``out`` (which it may overwrite) back to ``image``'s dtype and range."""
    dtype = image.dtype
    if dtype in _SCALE:
        fast = out.ndim in (2, 3) and out.shape[-1] <= 4 and out.size > 4
        if fast and not (quantize and dtype == np.uint16):
            # one pass: OpenCV's conversion rounds half to even (as np.rint) and saturates to the range (not
            # for the tiniest arrays: OpenCV's bindings take a one-element array for a scalar)
            zero: Any = 0.0  # a scalar: OpenCV's stubs (as NumPy 2.0 reads them) name arrays only
            res = cv2.add(out, zero, dtype=cv2.CV_8U if dtype == np.uint8 else cv2.CV_16U)
            return res.reshape(out.shape)
        out = np.clip(np.rint(out, out=out), 0, _SCALE[dtype], out=out)
        if quantize and dtype == np.uint16:
            out = np.rint(out / 257.0) * 257.0
        return out.astype(dtype)
    if image.size and image.min() >= 0 and image.max() <= 1:
        out = np.clip(out, 0, 1, out=out)
    if quantize:
        out *= 255.0
        np.rint(out, out=out)
        out /= 255.0
    return out.astype(dtype, copy=False)


class Blur(abc.ABC):
    """Base class of blur generators: sample parameters, make a kernel, apply it.

    Subclasses set ``name`` (the registry name), implement :meth:`sample_kernel` and :meth:`kernel`, and
    add their own arguments to :meth:`get_config`. Register them with ``@register_blur("name")``.

    Args:
        border: Border mode: "reflect" (default, ``cv2.BORDER_REFLECT_101``), "symmetric", "edge",
            "constant" (zeros) or "wrap" (circular).
        noise: Standard deviation of additive Gaussian noise, in units of the [0, 1] data range (255 for
            uint8, 65535 for uint16, 1 for float), fixed or ``(low, high)``, at most 1. Added after blurring.
        shot: Signal-dependent (Poisson, "shot") noise, as its Gaussian approximation: variance
            ``shot * x`` for a blurred value ``x`` in [0, 1], added to ``noise**2`` (the Poisson-Gaussian
            model of raw camera noise, Foi et al. 2008; at an exposure that fills a pixel with N
            photo-electrons, ``shot = 1 / N``). Fixed or ``(low, high)``, drawn per image and recorded as
            ``params["shot_noise"]``; None (default): no signal-dependent noise.
        quantize: Round the result to 8-bit levels (float: ``round(x * 255) / 255``; uint16: multiples
            of 257).
        jpeg: JPEG quality (1-100), fixed or an integer ``(low, high)`` range drawn per image: the result is
            then saved as a JPEG and decoded again, as a camera or phone file
            (:func:`blurkit.blurs.functional.jpeg`; 8-bit values, float images taken as [0, 1]). None
            (default): no compression.
        seed: Seed of the instance's own generator, used when a call gets no seed.

    Examples:
        >>> import numpy as np
        >>> from blurkit.blurs import MotionBlur
        >>> blur = MotionBlur(length=(5, 9), seed=0)
        >>> p = blur.sample(rng=7)
        >>> p == blur.sample(rng=7), sorted(p)
        (True, ['angle', 'border', 'length', 'noise_sigma', 'quantize'])
        >>> blur.apply(np.ones((4, 4)), p).round(6).tolist()[0]
        [1.0, 1.0, 1.0, 1.0]
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1

    def __init__(
        self,
        *,
        border: str = "reflect",
        noise: Range = 0.0,
        shot: Range | None = None,
        quantize: bool = False,
        jpeg: Range | None = None,
        seed: int | None = None,
    ) -> None:
        self.border = check_border(border)
        self.noise = check_range("noise", noise, minimum=0)
        if max(np.atleast_1d(self.noise)) > MAX_NOISE:  # noise 1e300 scored pure noise, without a warning
            raise ValueError(f"noise must be at most {MAX_NOISE:g} (a standard deviation in units of the data "
                             f"range), got {noise!r}")
        self.shot = None if shot is None else check_range("shot", shot, minimum=0)
        if not isinstance(quantize, (bool, np.bool_)):
            raise TypeError(f"quantize must be True or False, got {quantize!r}")
        self.quantize = bool(quantize)
        self.jpeg = None if jpeg is None else check_range("jpeg", jpeg, minimum=1, integer=True)
        if self.jpeg is not None and max(self.jpeg if isinstance(self.jpeg, tuple) else (self.jpeg,)) > 100:
            raise ValueError(f"jpeg quality must be at most 100, got {jpeg!r}")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0
        ):
            raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed)

    # -- what a subclass provides --------------------------------------------------------------
    @abc.abstractmethod
    def sample_kernel(self, rng: np.random.Generator) -> dict:
        """Draw the kernel parameters (JSON-able numbers) for one image."""

    @abc.abstractmethod
    def kernel(self, params: dict) -> np.ndarray:
        """The 2D float64 kernel (odd height and width, >= 0, sums to 1) for ``params``."""

    # -- sampling and applying -----------------------------------------------------------------
    def _generator(self, rng: np.random.Generator | int | None) -> np.random.Generator:
        return self._rng if rng is None else to_generator(rng)

    def sample(self, rng: np.random.Generator | int | None = None) -> dict:
        """Draw the parameters for one image.

        Args:
            rng: A Generator, an int seed, or None for the instance's own generator.

        Returns:
            A JSON-able dict: the kernel parameters plus ``"noise_sigma"``, ``"quantize"`` and
            ``"border"``, and ``"jpeg_quality"`` and ``"shot_noise"`` when the generator has a ``jpeg`` or
            ``shot`` option (drawn after the others, so a generator without them keeps its draws).
        """
        rng = self._generator(rng)
        drawn = self.sample_kernel(rng)
        if not isinstance(drawn, Mapping):
            raise TypeError(f"{type(self).__name__}.sample_kernel must return a dict of JSON-able kernel "
                            f"parameters, got {type(drawn).__name__}")
        params = dict(drawn)
        params["noise_sigma"] = draw(rng, self.noise)
        params["quantize"] = self.quantize
        params["border"] = self.border
        if isinstance(self.jpeg, tuple):
            params["jpeg_quality"] = int(rng.integers(self.jpeg[0], self.jpeg[1] + 1))
        elif self.jpeg is not None:
            params["jpeg_quality"] = self.jpeg
        if self.shot is not None:
            params["shot_noise"] = draw(rng, self.shot)
        return params

    def apply(
        self,
        image: np.ndarray,
        params: dict,
        kernel: np.ndarray | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> np.ndarray:
        """Blur ``image`` with ``params``, add noise, quantize, compress; keep its shape, dtype and range.

        Args:
            image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; a batch gets the same params.
            params: From :meth:`sample`; ``"border"``, ``"noise_sigma"``, ``"quantize"`` and (if there)
                ``"shot_noise"`` and ``"jpeg_quality"`` are read from it.
            kernel: The kernel, if already made from ``params``.
            rng: Generator (or seed) for the noise; None uses the instance's generator.

        Returns:
            The degraded image, same shape and dtype.
        """
        image = check_image(image)
        if kernel is None:
            kernel = self.kernel(params)
        border = check_border(params.get("border", self.border))
        sigma = float(params.get("noise_sigma", 0.0))
        shot = float(params.get("shot_noise", 0.0))
        # uint8 / uint16 go to OpenCV as they are (converted while filtering): no float copy of the input
        src = image if image.dtype in (np.float32, np.uint8, np.uint16) else image.astype(np.float32)
        out = convolve(src, kernel, border)
        scale = _SCALE.get(image.dtype, 1.0)
        if shot > 0:  # the standard deviation follows the blurred signal, read before any noise is added
            level = np.maximum(out / np.float32(scale), 0)
            std = np.sqrt(shot * level + sigma**2) * np.float32(scale)
            out += (self._generator(rng).standard_normal(size=out.shape) * std).astype(np.float32)
        elif sigma > 0:
            noise = self._generator(rng).normal(0.0, sigma * scale, size=out.shape)
            out += noise.astype(np.float32)
        out = _finish(out, image, bool(params.get("quantize", False)))
        quality = params.get("jpeg_quality")
        return out if quality is None else jpeg(out, int(quality))

    def __call__(self, image: np.ndarray, seed: np.random.Generator | int | None = None) -> dict:
        """Sample parameters, make the kernel, apply it.

        Args:
            image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
            seed: Same seed, same kernel and noise. None uses the instance's generator, which advances.

        Returns:
            ``{"image": blurred, "kernel": k, "params": p}``; for an ``(N, H, W, C)`` batch each image
            gets its own parameters, and ``"kernel"`` and ``"params"`` are lists.
        """
        image = check_image(image)
        rng = self._generator(seed)
        if image.ndim == 4:
            outs, kernels, params = [], [], []
            for one in image:
                p = self.sample(rng)
                k = self.kernel(p)
                outs.append(self.apply(one, p, k, rng))
                kernels.append(k)
                params.append(p)
            stacked = np.stack(outs) if outs else image.copy()
            return {"image": stacked, "kernel": kernels, "params": params}
        p = self.sample(rng)
        k = self.kernel(p)
        return {"image": self.apply(image, p, k, rng), "kernel": k, "params": p}

    # -- configuration -------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Every constructor argument, JSON-serializable (ranges as lists)."""
        return {
            "border": self.border,
            "noise": jsonable(self.noise),
            "shot": jsonable(self.shot),
            "quantize": self.quantize,
            "jpeg": jsonable(self.jpeg),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> Blur:
        """Rebuild from :meth:`get_config`'s output: ``cls(**config)``."""
        return cls(**config)

    @classmethod
    def upgrade_config(cls, config: dict, version: int) -> dict:
        """Turn a config saved by an older ``version`` of this class into the current one.

        The default returns it unchanged; override when arguments change and bump ``version``.
        """
        return config

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def serialize_blur(blur: Blur) -> dict:
    """``{"name", "version", "config"}`` of a blur, JSON-serializable; see :func:`deserialize_blur`.

    Examples:
        >>> from blurkit.blurs import AverageBlur
        >>> serialize_blur(AverageBlur(size=5))["config"]["size"]
        5
    """
    if not isinstance(blur, Blur):
        raise TypeError(f"serialize_blur needs a Blur instance, got {blur!r}")
    return {"name": blur.name, "version": int(blur.version), "config": blur.get_config()}


def deserialize_blur(data: dict | str) -> Blur:
    """Rebuild a blur from :func:`serialize_blur`'s dict (or build a default one from a name).

    The class comes from the ``BLURS`` registry (plugins included). A config saved by an older version of
    the class goes through its ``upgrade_config``.

    Raises:
        UnknownComponentError: No blur of that name (the message lists the available ones).
        ValueError: The dict is malformed, or was saved by a newer version than the installed one.
        TypeError: Its config has an option the blur does not take (the message names it and lists those it
            takes).

    Examples:
        >>> deserialize_blur({"name": "defocus", "config": {"radius": 2.0}}).radius
        2.0
        >>> deserialize_blur({"name": "gaussian", "version": 9, "config": {}})
        Traceback (most recent call last):
        ...
        ValueError: blur 'gaussian' was saved with version 9, but this blurkit has version 1; upgrade blurkit to load it
    """
    from blurkit.registry import BLURS, options_error

    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError(f'a serialized blur is a dict {{"name", "version", "config"}}, got {data!r}')
    name = data["name"]
    entry = BLURS.entry(name)
    cls = entry.obj
    version = int(data.get("version", 1))
    current = int(getattr(cls, "version", 1))
    if version > current:
        raise ValueError(f"blur {name!r} was saved with version {version}, but {_newer(entry, current)}")
    config = dict(data.get("config") or {})
    if version < current:
        config = cls.upgrade_config(config, version)
    try:
        return cls.from_config(config)
    except TypeError as exc:  # an option it does not take: named, with those it takes
        raise options_error("blur", name, cls, config, exc) from None


def _newer(entry: Any, current: int) -> str:
    """What provides version ``current`` of the blur ``entry`` (a :class:`~blurkit.registry.Entry`) and what to
    upgrade, for a file saved with a newer version: blurkit for a built-in, the package for a plugin's."""
    source = str(entry.source).split()
    if len(source) == 3 and source[0] == "plugin":  # "plugin DIST VERSION"
        return (f"{source[1]} {source[2]} provides version {current}; upgrade {source[1]} to load it "
                f"(pip install -U {source[1]})")
    if len(source) == 2 and source[0] == "plugin":  # an entry point without a distribution (its object reference)
        return f"plugin {source[1]} provides version {current}; upgrade it to load it"
    if entry.source != "built-in":  # the user's (any other source= given to register, even an empty one)
        return (f"the blur registered under that name here ({entry.module}) has version {current}; register the "
                "version it was saved with to load it")
    return f"this blurkit has version {current}; upgrade blurkit to load it"
