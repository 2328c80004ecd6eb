"""Count the floating-point operations of a Keras model, per output pixel.

Convention: FLOPs = 2 x multiply-adds of the layers that multiply by a weight tensor — ``Conv1D/2D/3D``
(grouped included), ``DepthwiseConv``, ``SeparableConv``, ``Conv*Transpose`` and ``Dense`` — computed from
the shapes the model has on a given input size. Biases, activations, normalisation, pooling, resizing,
elementwise ops (adds, multiplies, SimpleGate...) and blurkit's padding/cropping layers count as zero; for
the built-in models they are a few percent at most. A custom layer can report its own count by defining
``compute_flops(input_shapes, output_shapes) -> float`` (shapes include the batch axis as None).

Only functional and Sequential models are supported (their layer graph can be rebuilt on a fixed input
size with ``keras.models.clone_model``); nested functional sub-models are counted recursively.

Keras is imported inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["flops_per_pixel", "flops_by_layer"]


def _positions(shape: tuple, data_format: str | None) -> int:
    """Number of spatial positions (all axes except batch and channels) of a layer output."""
    spatial = shape[2:] if data_format == "channels_first" else shape[1:-1]
    if any(d is None for d in spatial):
        raise ValueError(f"cannot count FLOPs on an unknown spatial shape {shape}")
    return math.prod(spatial)


def _node_flops(layer: Any, in_shapes: list[tuple], out_shapes: list[tuple]) -> float:
    import keras

    hook = getattr(layer, "compute_flops", None)
    if callable(hook):
        return float(hook(in_shapes, out_shapes))
    data_format = getattr(layer, "data_format", None)
    transposed = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
    if isinstance(layer, transposed):
        # Every input position scatters kernel-size x in x out multiply-adds.
        return 2.0 * math.prod(layer.kernel.shape) * _positions(in_shapes[0], data_format)
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        macs = math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
        return 2.0 * macs * _positions(out_shapes[0], data_format)
    if isinstance(
        layer,
        (
            keras.layers.Conv1D,
            keras.layers.Conv2D,
            keras.layers.Conv3D,
            keras.layers.DepthwiseConv1D,
            keras.layers.DepthwiseConv2D,
        ),
    ):
        return 2.0 * math.prod(layer.kernel.shape) * _positions(out_shapes[0], data_format)
    if isinstance(layer, keras.layers.Dense):
        return 2.0 * math.prod(layer.kernel.shape) * math.prod(out_shapes[0][1:-1])
    return 0.0


def _fixed_inputs(model: Any, height: int, width: int) -> list:
    import keras

    if not getattr(model, "inputs", None):
        raise TypeError(
            f"flops: only functional or Sequential models with a defined input can be counted, "
            f"not a {type(model).__name__}"
        )
    inputs = []
    for tensor in model.inputs:
        shape = list(tensor.shape)
        if len(shape) == 4:  # (B, H, W, C): fill in unknown spatial sizes
            shape[1] = height if shape[1] is None else shape[1]
            shape[2] = width if shape[2] is None else shape[2]
        inputs.append(keras.Input(batch_shape=(1, *shape[1:]), dtype=tensor.dtype))
    return inputs


def _model_flops(model: Any, input_shapes: list[tuple], prefix: str, out: dict[str, float]) -> None:
    import keras

    inputs = [
        keras.Input(batch_shape=(1, *s[1:]), dtype=t.dtype)
        for s, t in zip(input_shapes, model.inputs, strict=True)
    ]
    try:
        clone = keras.models.clone_model(model, input_tensors=inputs if len(inputs) > 1 else inputs[0])
    except ValueError as exc:  # Keras refuses to rebuild subclassed models on new inputs.
        raise TypeError(
            f"flops: only functional or Sequential models can be counted, not a {type(model).__name__} "
            f"({exc}); build it with the functional API"
        ) from exc
    for layer in clone.layers:
        # A layer's nodes are its calls in the cloned graph (several for a shared layer).
        for node in getattr(layer, "_inbound_nodes", []):
            in_shapes = [tuple(t.shape) for t in node.input_tensors]
            out_shapes = [tuple(t.shape) for t in node.output_tensors]
            if not in_shapes:  # the InputLayer
                continue
            name = f"{prefix}{layer.name}"
            if isinstance(layer, keras.Model):
                _model_flops(layer, in_shapes, f"{name}/", out)
            else:
                out[name] = out.get(name, 0.0) + _node_flops(layer, in_shapes, out_shapes)


def flops_by_layer(model: Any, height: int = 256, width: int = 256) -> dict[str, float]:
    """FLOPs of each layer of ``model`` on one ``height x width`` image (see the module docstring).

    Args:
        model: A functional or Sequential Keras model taking ``(B, H, W, C)`` images.
        height: Input height used where the model's is unknown (None).
        width: Input width used where the model's is unknown (None).

    Returns:
        ``{layer name: FLOPs}`` for every layer, in graph order (zeros included); nested models' layers
        are named ``"outer/inner"``.

    Raises:
        TypeError: ``model`` is a subclassed model.
    """
    input_shapes = [tuple(t.shape) for t in _fixed_inputs(model, height, width)]
    out: dict[str, float] = {}
    _model_flops(model, input_shapes, "", out)
    return out


def flops_per_pixel(model: Any, height: int = 256, width: int = 256) -> float:
    """FLOPs (2 x multiply-adds) per input pixel of one forward pass of ``model``.

    The model's graph is rebuilt on a ``height x width`` input and the FLOPs of its layers are summed (see
    the module docstring for what counts), then divided by the number of pixels. A model with a fixed input
    size (such as the autoencoder) is counted on its own size, whatever ``height`` and ``width`` say: the
    result is then the cost per pixel of one tile.

    Args:
        model: A functional or Sequential Keras model taking ``(B, H, W, C)`` images.
        height: Input height used where the model's is unknown (None).
        width: Input width used where the model's is unknown (None).

    Returns:
        FLOPs per pixel, as a float (a convolution's cost per pixel does not depend on the size, but padding
        to a multiple and the global pooling of attention layers make it vary slightly).

    Raises:
        TypeError: ``model`` is a subclassed model.

    Examples:
        >>> import keras
        >>> inputs = keras.Input((None, None, 3))
        >>> model = keras.Model(inputs, keras.layers.Conv2D(8, 3, padding="same")(inputs))
        >>> flops_per_pixel(model, 32, 32) == 2 * 3 * 3 * 3 * 8
        True
    """
    inputs = _fixed_inputs(model, height, width)
    first = tuple(inputs[0].shape)
    pixels = first[1] * first[2] if len(first) == 4 else 1
    return sum(flops_by_layer(model, height, width).values()) / pixels
