"""Widen a trained ``wiener_unet``'s restorer without changing what it computes (Net2Net-style).

The model card's analysis said the width-24 refinement U-Net is close to what it can learn, and that a wider
one trained on a GPU might close most of the gap to the quality bar. It was tried (2026-11-28, the model card
has the run): width 48 gained on the val photos and lost on the second test set, so it is not shipped. The
package's 25 MB limit on shipped weights (float32) allows about 6 million parameters: ``width=48, blocks=1``
(5.6 million, 3.9x the restorer's FLOPs) or ``width=32, blocks=2`` (4.7 million, 3.3x); ``width=48, blocks=2``
has 10 million (40 MB). Trained from scratch, a wider restorer needs the whole recipe again before it is even
as good as the shipped one; this script instead makes a wider model that starts *exactly* where the shipped
one is, so a GPU run of ``train_joint.py`` from it spends all its steps on what the extra capacity can add.

How the weights are set (``width`` and ``blocks`` may grow; ``depth`` and the kernel size stay):

* every convolution that exists in both models keeps its old weights in the old channels; the weights
  *from* new input channels *to* old output channels are zero, so the new channels do not change the old
  ones; the weights into new output channels are a fresh Glorot initialisation times ``--scale`` (0.01), so
  the new channels carry a small signal and the zero weights that read them get gradients from the first
  step;
* a new residual block (``blocks`` grown) has a zero second convolution, i.e. it starts as the identity,
  as the whole refinement did (its zero ``tail``), and its first convolution is scaled like the rest;
* the estimator is copied unchanged.

Why the scale: Adam moves every weight by about the learning rate whatever its gradient, so the zero weights
that read full-size new channels (``--scale 1``) start feeding them into the restoration at once. On the
same 120 CPU batches (``train_joint.py --freeze-estimator --steps 120 --batch 4 --context 256 --patch 128
--lr 1e-4``), width 48 at scale 1 trained to a loss 0.3-0.8 dB worse than the shipped width-24 model in
four of the five chunks after the first; at 0.01 it stayed within 0.08 dB of it.

Usage::

    python benchmarks/widen.py --width 48 --blocks 1 --out wide.keras     # from the gaussian-v1 preset
    KERAS_BACKEND=jax python benchmarks/train_joint.py --init wide.keras --data PHOTOS --out joint.keras \\
        --minutes 8 --freeze-estimator                                       # on a GPU

It checks that the wider model restores a test image as the original does (to float32 rounding) before
it writes the file, and prints the parameters and the file's size. The check calls the model directly, so it
runs on any Keras backend. On a GPU, JAX convolves float32 in TF32 by default, which rounds beyond the
check's 1e-4 (an H200 gave 1.2e-4): run it there as ``JAX_DEFAULT_MATMUL_PRECISION=highest KERAS_BACKEND=jax
python benchmarks/widen.py ...`` (1e-6 on the same machine); training is unaffected.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _embed(layer, old_weights: list, scale: float) -> list:
    """``layer``'s weights with ``old_weights`` embedded in the leading channels, the fresh ones times
    ``scale`` (see the module docstring)."""
    import keras
    import numpy as np

    new = [np.array(w) for w in layer.get_weights()]
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        if [w.shape for w in new] != [np.shape(w) for w in old_weights]:
            raise ValueError(f"layer {layer.name!r} changed shape but is not a convolution")
        return [np.array(w) for w in old_weights]
    kernel, bias = new
    old_kernel, old_bias = old_weights
    if kernel.shape[:2] != old_kernel.shape[:2]:
        raise ValueError(f"layer {layer.name!r}: the kernel size cannot change")
    if isinstance(layer, keras.layers.Conv2DTranspose):  # its kernel is (k, k, out, in): work on a view
        kernel, old_kernel = kernel.swapaxes(2, 3), old_kernel.swapaxes(2, 3)  # (k, k, in, out)
    cin, out = old_kernel.shape[2:]
    kernel *= scale
    kernel[:, :, cin:, :out] = 0.0
    kernel[:, :, :cin, :out] = old_kernel
    bias[:out] = old_bias
    bias[out:] = 0.0
    return new  # the arrays the views above wrote into


def widen(d, width: int, blocks: int, seed: int = 0, scale: float = 0.01):
    """Replace a Deblurrer's ``wiener_unet`` with one of restorer ``width`` and ``blocks`` that computes the
    same (see the module docstring); the fresh weights are Glorot times ``scale``. Returns the Deblurrer."""
    import keras
    import numpy as np
    from train_preset import parts, rebuild

    old_config = d.model_spec["config"]
    if width < old_config.get("width", 24) or blocks < old_config.get("blocks", 1):
        raise ValueError(f"width and blocks can only grow (the model has width {old_config.get('width', 24)}, "
                         f"blocks {old_config.get('blocks', 1)})")
    keras.utils.set_random_seed(seed)  # the fresh weights
    old = rebuild(d, width=int(width), blocks=int(blocks))
    (new_est, new_res, _), (old_est, old_res, _) = parts(d.model), parts(old)
    new_est.set_weights(old_est.get_weights())
    have = {layer.name: layer for layer in old_res.layers}
    for layer in new_res.layers:
        if not layer.weights:
            continue
        if layer.name in have:
            layer.set_weights(_embed(layer, have[layer.name].get_weights(), scale))
        elif layer.name.endswith("_conv2"):  # a new residual block starts as the identity
            layer.set_weights([np.zeros(w.shape, "float32") for w in layer.weights])
        elif layer.name.endswith("_conv1"):
            layer.set_weights([np.asarray(w) * scale for w in layer.get_weights()])
        else:
            raise ValueError(f"layer {layer.name!r} is new and not part of a residual block")
    return d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default=None, help="a wiener_unet .keras file (default: the gaussian-v1 preset)")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--blocks", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=0.01,
                   help="the fresh weights' Glorot initialisation is multiplied by this (default 0.01)")
    args = p.parse_args(argv)

    import keras
    import numpy as np
    from skimage import data
    from train_preset import load_or_preset

    from blurkit.blurs import GaussianBlur

    d = load_or_preset(args.init)
    source = args.init or "preset gaussian-v1"
    params = d.model.count_params()
    test = GaussianBlur(sigma=1.5)(data.astronaut()[96:352, 96:352], seed=0)["image"].astype(np.float32) / 255

    def restore(model):  # the model called directly, so the check runs on any Keras backend (JAX on a GPU)
        return keras.ops.convert_to_numpy(model(test[None], training=False))[0]

    before = restore(d.model)
    widen(d, args.width, args.blocks, args.seed, args.scale)
    diff = float(np.abs(restore(d.model) - before).max())
    if diff > 1e-4:
        raise SystemExit(f"error: the widened model restores differently (max difference {diff:g}; on a "
                         "GPU, set JAX_DEFAULT_MATMUL_PRECISION=highest: TF32 rounding alone can exceed 1e-4)")
    d.training = {**d.training, "widened": {"from": source, "width": args.width, "blocks": args.blocks,
                                           "seed": args.seed, "scale": args.scale,
                                           "params_before": params}}
    d.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB): width {args.width}, blocks {args.blocks}, "
          f"{params:,} -> {d.model.count_params():,} parameters; same restoration (max difference {diff:.1g})")
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())
