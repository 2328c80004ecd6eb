"""``blurkit demo``: runs on scikit-image's sample photos with a model file, a preset, or says why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from blurkit.cli.demo import SAMPLES
from blurkit.cli.main import main
from helpers import changing_unet


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny U-Net that changes images (an untrained one is the identity, whose column would equal the
    blurred one: see helpers.changing_unet)."""
    from skimage import data

    d = changing_unet({"width": 8, "depth": 2, "blocks": 1}, data.astronaut()[::8, ::8])
    return d.save(tmp_path_factory.mktemp("model") / "tiny.keras")


def _mean_row(out: str) -> list[float]:
    row = next(line for line in out.splitlines() if line.startswith("| **mean**"))
    return [float(c) for c in row.strip("|").split("|")[2:]]


def _row(out: str, photo: str) -> list[str]:
    row = next(line for line in out.splitlines() if line.startswith(f"| {photo} | "))
    return [c.strip() for c in row.strip("|").split("|")[2:]]


def test_demo_with_model_file(tiny_model, tmp_path, capsys, monkeypatch):
    import blurkit.cli._common as common
    from blurkit.classical import blur_gaussian
    from blurkit.cli.demo import _photos
    from blurkit.metrics.functional import psnr, ssim

    loaded, load = [], common.load_deblurrer  # the demo's own Deblurrer, to check its table (no second load)
    monkeypatch.setattr(common, "load_deblurrer", lambda *a, **k: loaded.append(load(*a, **k)) or loaded[-1])
    out_dir = tmp_path / "figs"
    assert main(["demo", "--model", str(tiny_model), "--max-side", "64", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "| photo | size | blurred PSNR |" in out
    for name in SAMPLES:
        assert f"| {name} | " in out
        assert (out_dir / f"{name}.png").stat().st_size > 0
    assert str(out_dir.resolve()) in out
    blurred_psnr, blurred_ssim, wiener_psnr, _, model_psnr, model_ssim, *_ = _mean_row(out)
    assert wiener_psnr > blurred_psnr  # the true kernel helps even at 64 px
    assert model_psnr > 10
    assert (model_psnr, model_ssim) != (blurred_psnr, blurred_ssim)  # the model's column is not the blurred one
    (d,) = loaded
    photos = _photos(64)
    assert [name for name, _ in photos] == list(SAMPLES)
    for name, sharp in photos:  # each photo's columns: the blurred photo's scores and the model's restoration's
        blurred, _ = blur_gaussian(sharp, 2.0, seed=0)
        restored = d.predict(blurred)
        cells = _row(out, name)
        assert cells[:2] == [f"{psnr(sharp, blurred):.2f}", f"{ssim(sharp, blurred):.4f}"], name
        assert cells[4:6] == [f"{psnr(sharp, restored):.2f}", f"{ssim(sharp, restored):.4f}"], name
        assert cells[4:6] != cells[:2], name


def test_demo_without_shipped_preset_says_so(tmp_path, monkeypatch, capsys):
    import blurkit.presets

    monkeypatch.setattr(blurkit.presets, "_HERE", tmp_path)  # an installation with no preset files
    assert main(["demo", "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert "no pretrained preset is shipped" in err and "--model FILE" in err
    assert not (tmp_path / "figs").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "m.keras", "--preset", "p"], "not both"),
        (["--model", "missing.keras"], "model file not found"),
        (["--model", "m.keras", "--sigma", "0"], "--sigma"),
        (["--model", "m.keras", "--max-side", "8"], "--max-side"),
    ],
)
def test_demo_argument_errors(argv, message, capsys):
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_demo_given_sigma_needs_a_blur_estimator(tiny_model, tmp_path, capsys):
    """``--given-sigma`` on a model without a Gaussian blur estimator is a usage error, before any figure."""
    out_dir = tmp_path / "figs"
    assert main(["demo", "--model", str(tiny_model), "--given-sigma", "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert "--given-sigma" in err and "no Gaussian blur estimator" in err
    assert not list(out_dir.glob("*.png"))


def test_demo_with_default_preset_and_given_sigma(tmp_path, capsys, monkeypatch):
    """The default preset, blind and given the true sigma (``--given-sigma``: like for like with Wiener). The
    ``--given-sigma`` table has the blind columns too, so one run checks both; the plain table is
    test_demo_with_model_file's."""
    from blurkit.presets import DEFAULT_PRESET, list_presets

    if DEFAULT_PRESET not in list_presets():
        pytest.skip(f"preset {DEFAULT_PRESET} is not shipped yet")
    assert main(["demo", "--given-sigma", "--sigma", "5", "--out", str(tmp_path)]) == 2
    assert "--sigma (with --given-sigma) must be a number from 0.3 to 3.5" in capsys.readouterr().err
    import blurkit.plots

    drawn, real = [], blurkit.plots.plot_comparison
    monkeypatch.setattr(blurkit.plots, "plot_comparison", lambda panels, titles, path, **kw: (
        drawn.append(titles), real(panels, titles, path, **kw))[1])
    assert main(["demo", "--given-sigma", "--max-side", "96", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "figures (blurred | Wiener | blurkit | blurkit given sigma | sharp)" in out
    assert len(drawn) == len(SAMPLES)
    assert all(len(t) == 5 and t[3].startswith("blurkit given σ ") for t in drawn)
    assert f"preset {DEFAULT_PRESET}" in out
    assert "| blurkit PSNR | SSIM | blurkit given sigma PSNR | SSIM | Wiener s |" in out
    blurred_psnr, blurred_ssim, _, _, model_psnr, model_ssim, given_psnr, given_ssim, *_ = _mean_row(out)
    assert model_psnr > blurred_psnr + 1.0 and model_ssim > blurred_ssim  # blind
    assert given_psnr > blurred_psnr + 1.0 and given_ssim > blurred_ssim
    assert len(list(tmp_path.glob("*.png"))) == len(SAMPLES)


def test_comparison_figures_add_a_pixel_for_pixel_crop_where_the_detail_is(tmp_path):
    """Whole photos shrunk to a panel hide what separates Wiener from blurkit: ``zoom`` adds, under each row, the
    same crop of every image, taken where the row's last (sharp) image has the most detail; each row is as
    high as its own images (a landscape row under a portrait one left white bands)."""
    import numpy as np
    from skimage import data

    from blurkit.data.io import read_image
    from blurkit.plots import detail_crop, plot_comparison

    sharp = data.astronaut()[::2, ::2]
    soft = (sharp // 2).astype(np.uint8)
    y, x = detail_crop(sharp, 64)
    flat = np.zeros((64, 64))
    assert detail_crop(flat, 16) == (0, 0) and 0 <= y <= 256 - 64 and 0 <= x <= 256 - 64
    plain = plot_comparison([soft, sharp], ["a", "b"], tmp_path / "plain.png")
    zoomed = plot_comparison([soft, sharp], ["a", "b"], tmp_path / "zoom.png", zoom=64)
    assert read_image(zoomed).shape[0] > 1.7 * read_image(plain).shape[0]  # a second row of crops
    wide = np.zeros((40, 200, 3), np.uint8)
    two = plot_comparison([sharp, sharp, wide, wide], list("abcd"), tmp_path / "two.png", rows=2)
    assert read_image(two).shape[0] < 1.5 * read_image(plain).shape[0]  # the wide row is low, not square
