"""Tiled inference: tile placement, blending windows, and agreement with whole-image inference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurkit.tiling import tile_starts, tiled_apply, window_1d

FEW = settings(max_examples=30, deadline=None, database=None)


# ------------------------------------------------------------------------------------ tile_starts
def test_tile_starts_examples():
    assert tile_starts(300, 128, 32) == [0, 86, 172]
    assert tile_starts(100, 128, 32) == [0]
    assert tile_starts(128, 128, 32) == [0]
    with pytest.raises(ValueError, match="larger than overlap"):
        tile_starts(300, 32, 32)


@FEW
@given(length=st.integers(1, 700), tile=st.integers(2, 160), data=st.data())
def test_tile_starts_cover_with_requested_overlap(length, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] + tile == length  # the last tile ends at the image's edge: everything is covered
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:], strict=False))


@FEW
@given(units=st.integers(1, 60), tile_units=st.integers(2, 20), align=st.sampled_from([2, 4, 8]), data=st.data())
def test_tile_starts_aligned(units, tile_units, align, data):
    length, tile = units * align, tile_units * align
    overlap = data.draw(st.integers(0, tile - align))
    starts = tile_starts(length, tile, overlap, align=align)
    assert all(s % align == 0 for s in starts)
    assert starts[0] == 0 and (length <= tile or starts[-1] + tile == length)
    assert all(a + tile - b >= overlap for a, b in zip(starts, starts[1:], strict=False))


# ---------------------------------------------------------------------------------------- windows
@FEW
@given(length=st.integers(1, 600), tile=st.integers(2, 160), data=st.data())
def test_windows_sum_to_one(length, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    starts = tile_starts(length, tile, overlap)
    total = np.zeros(length)
    for i, s in enumerate(starts):
        w = window_1d(starts, i, tile, length)
        assert w.shape == (min(tile, length),) and w.min() >= 0 and w.max() <= 1
        total[s : s + len(w)] += w
    assert total.min() > 0  # every pixel gets some weight (tiled_apply normalises by the total)
    if not any(starts[i + 2] < starts[i] + tile for i in range(len(starts) - 2)):
        # only two tiles ever overlap: the cross-fades are complementary
        np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_windows_drop_the_outer_quarter_of_each_overlap():
    starts = tile_starts(300, 128, 64)
    left, right = window_1d(starts, 0, 128, 300), window_1d(starts, 1, 128, 300)
    ov = starts[0] + 128 - starts[1]
    assert np.all(left[128 - ov // 4 :] == 0) and np.all(right[: ov // 4] == 0)
    assert np.all(left[: starts[1]] == 1)


# ----------------------------------------------------------------------------------- tiled_apply
@FEW
@given(h=st.integers(1, 300), w=st.integers(1, 300), c=st.sampled_from([1, 3]),
       align=st.sampled_from([1, 4]), seed=st.integers(0, 2**16))
def test_identity_model_returns_the_input(h, w, c, align, seed):
    image = np.random.default_rng(seed).random((h, w, c), dtype=np.float32)
    calls = []

    def identity(batch):
        calls.append(batch.shape)
        return batch

    out = tiled_apply(identity, image, tile=64, overlap=16, batch=3, align=align)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, image, rtol=0, atol=1e-6)
    assert all(s[1] <= 64 and s[2] <= 64 for s in calls)  # memory bounded by the tile


def test_pad_to_tile_gives_the_fixed_size_and_crops_back():
    image = np.random.default_rng(0).random((50, 60, 3), dtype=np.float32)
    shapes = []

    def fixed(batch):
        shapes.append(batch.shape)
        return batch

    out = tiled_apply(fixed, image, tile=128, overlap=32, pad_to_tile=True)
    assert shapes == [(1, 128, 128, 3)]
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_local_filter_matches_whole_image():
    """A filter with a small support gives the same result tiled and untiled (blending is exact)."""
    from scipy.ndimage import uniform_filter

    image = np.random.default_rng(1).random((301, 263, 3), dtype=np.float32)

    def box(batch):
        return np.stack([uniform_filter(t, size=(5, 5, 1), mode="constant") for t in batch])

    whole = box(image[None])[0]
    for overlap in (32, 64):
        np.testing.assert_allclose(tiled_apply(box, image, tile=128, overlap=overlap), whole, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="overlap"):
        tiled_apply(lambda b: b, np.zeros((10, 10, 1), np.float32), tile=16, overlap=16)


# ------------------------------------------------------------------------------ with real models
def _nontrivial_unet(depth: int, tile: int = 128, overlap: int = 64):
    """A tiny U-Net whose zero-initialised tail is replaced by small random weights (not the identity)."""
    from blurkit import Deblurrer

    d = Deblurrer(model="unet", model_options={"width": 4, "depth": depth, "blocks": 1},
                  tile_size=tile, tile_overlap=overlap)
    tail = d.model.get_layer("tail")
    kernel, bias = tail.get_weights()
    tail.set_weights([np.random.default_rng(1).normal(0, 0.02, kernel.shape).astype("float32"), bias])
    return d


@pytest.mark.parametrize("depth", [1, 2])
def test_unet_tiled_matches_untiled(depth):
    d = _nontrivial_unet(depth)
    assert d.tile_align == 2**depth
    rng = np.random.default_rng(2)
    for shape in [(300, 260, 3), (301, 263, 3)]:
        x = (rng.random(shape, dtype=np.float32) * 0.8 + 0.1).astype(np.float32)
        d.tile_size = 4096
        whole = d.predict(x)
        assert np.abs(whole - x).mean() > 0.01, "the model must change the image for the test to mean anything"
        for overlap in (32, 64):
            d.tile_size, d.tile_overlap = 128, overlap
            tiled = d.predict(x)
            assert tiled.shape == x.shape
            # measured: mean <= 1.8e-5, max <= 9.2e-4 (depth 2, overlap 32); seams of a 2 px overlap give
            # mean 1.0e-3..1.5e-3 and max 0.06..0.08
            error = np.abs(tiled - whole)
            assert error.mean() < 1e-4 and error.max() < 2e-3, (shape, overlap, error.mean(), error.max())


def test_unet_tiles_are_actually_used(monkeypatch):
    d = _nontrivial_unet(1)
    seen = []
    infer = d._infer
    monkeypatch.setattr(d, "_infer", lambda b: seen.append(b.shape) or infer(b))
    d.predict(np.zeros((300, 260, 3), np.uint8))
    assert len(seen) > 1 and all(s[1] <= 128 and s[2] <= 128 for s in seen)


def test_autoencoder_runs_on_any_size_via_tiles():
    from blurkit import Deblurrer

    d = Deblurrer(model="autoencoder", model_options={"filters": (8, 16, 32), "latent_dim": 16})
    assert d.fixed_size == 128 and d.tile_size == 128 and d.patch_size == 128
    rng = np.random.default_rng(3)
    for shape in [(200, 150, 3), (50, 60, 3), (50, 60)]:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        y = d.predict(x)
        assert y.shape == x.shape and y.dtype == np.uint8
    seen = []
    infer = d._infer
    d._infer = lambda b: seen.append(b.shape) or infer(b)
    d.predict(np.zeros((200, 150, 3), np.float32))
    assert {s[1:] for s in seen} == {(128, 128, 3)} and sum(s[0] for s in seen) == 4


# ----------------------------------------------------------------------- fitted tiles, streaming
def test_fitted_tiles_cut_the_overlap_cost():
    from blurkit.tiling import plan_tiles

    fixed = plan_tiles(1536, 2048, tile=512, overlap=64, align=8, fit=False)
    fitted = plan_tiles(1536, 2048, tile=512, overlap=64, align=8)
    assert (len(fitted.ys), len(fitted.xs)) == (len(fixed.ys), len(fixed.xs))  # as many tiles, smaller
    assert fixed.pixel_inflation == pytest.approx(5 * 4 * 512**2 / (2048 * 1536))
    assert fitted.pixel_inflation < 1.28 and plan_tiles(1536, 2048, tile=1024, overlap=64,
                                                        align=8).pixel_inflation < 1.12


@FEW
@given(h=st.integers(1, 700), w=st.integers(1, 700), tile=st.integers(16, 300), align=st.sampled_from([1, 2, 8]),
       data=st.data())
def test_fitted_tiles_cover_aligned_and_bounded(h, w, tile, align, data):
    from blurkit.tiling import plan_tiles

    overlap = data.draw(st.integers(0, tile - 1))
    p = plan_tiles(h, w, tile=tile, overlap=overlap, align=align)
    side_max = max(align, tile - tile % align)
    for starts, side, length in ((p.ys, p.tile_h, p.height), (p.xs, p.tile_w, p.width)):
        assert length % align == 0 and starts[0] == 0
        if len(starts) == 1:
            assert side == length <= side_max
            continue
        assert side <= side_max and side % align == 0 and all(s % align == 0 for s in starts)
        assert starts[-1] + side == length  # covered to the edge
        # the overlap, rounded up to a multiple of align but below the tile side
        assert all(a + side - b >= min(p.overlap, side - align) for a, b in zip(starts, starts[1:], strict=False))
    assert p.pixel_inflation <= plan_tiles(h, w, tile=tile, overlap=overlap, align=align,
                                           fit=False).pixel_inflation + 1e-9


def test_integer_image_converted_tile_by_tile_and_written_in_bands():
    """uint8 in, uint8 out: ``prepare`` sees tiles, ``finish`` sees bands of rows, never the whole image."""
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (301, 263, 3), dtype=np.uint8)
    cuts, bands = [], []

    def prepare(crop):
        cuts.append(crop.shape)
        return crop.astype(np.float32) / 255

    def finish(y):
        bands.append(y.shape)
        return np.clip(np.rint(y * 255), 0, 255)

    def box(batch):
        return np.stack([uniform_filter(t, size=(5, 5, 1), mode="constant") for t in batch])

    out = np.empty_like(image)
    got = tiled_apply(box, image, tile=128, overlap=32, prepare=prepare, finish=finish, out=out)
    assert got is out and out.dtype == np.uint8
    whole = np.clip(np.rint(box(image[None].astype(np.float32) / 255)[0] * 255), 0, 255)
    assert np.abs(out.astype(int) - whole).max() <= 1
    assert all(s[0] <= 128 and s[1] <= 128 for s in cuts)
    assert len(bands) > 1 and all(b[0] <= 128 for b in bands) and sum(b[0] for b in bands) == 301


def test_presets_run_with_the_library_tiling_defaults():
    """A preset's file records the tiling it was saved with; ``from_preset`` applies the library's current
    defaults instead (tiling is an inference setting), while a plain ``load`` keeps the file's values."""
    from blurkit.deblurrer import DEFAULT_ESTIMATE_TILE, DEFAULT_TILE_OVERLAP, DEFAULT_TILE_SIZE, Deblurrer
    from blurkit.presets import DEFAULT_PRESET, list_presets, preset_path

    if DEFAULT_PRESET not in list_presets():
        pytest.skip("no shipped preset")
    d = Deblurrer.from_preset(DEFAULT_PRESET)
    assert (d.tile_size, d.tile_overlap, d.estimate_tile) == (DEFAULT_TILE_SIZE, DEFAULT_TILE_OVERLAP,
                                                              DEFAULT_ESTIMATE_TILE)
    stored = Deblurrer.read_metadata(preset_path(DEFAULT_PRESET))["facade"]
    loaded = Deblurrer.load(preset_path(DEFAULT_PRESET))
    assert (loaded.tile_size, loaded.tile_overlap) == (stored["tile_size"], stored["tile_overlap"])


def test_wiener_unet_tiles_share_one_blur_estimate(monkeypatch):
    """A photo cut into tiles is restored with one blur estimate (the median of the tiles' estimates),
    so every tile gets the same deconvolution: the tiled result matches the restorer run on the whole
    photo with that estimate."""
    from blurkit import Deblurrer

    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "estimator_width": 4},
                  tile_size=96, tile_overlap=32, estimate_tile=64)
    rng = np.random.default_rng(4)
    estimator, restorer = d.model.get_layer("estimator"), d.model.get_layer("restorer")
    for layer in (estimator.get_layer("est_params"), restorer.get_layer("tail")):  # not the zero init
        layer.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in layer.get_weights()])
    x = (rng.random((200, 170, 3), dtype=np.float32) * 0.8 + 0.1).astype(np.float32)
    x[:100] = 0.5  # half the photo is flat: its tiles' own estimates differ from the textured ones'
    estimate, restore = d._split()
    seen = []
    monkeypatch.setattr(d, "_split", lambda: (lambda b: seen.append(estimate(b).numpy()) or estimate(b),
                                              restore))
    tiled = d.predict(x)
    assert len(seen) > 1 and np.ptp(np.concatenate(seen), axis=0).max() > 1e-3  # the tiles disagree
    params = np.median(np.concatenate(seen), axis=0)[None].astype(np.float32)
    whole = np.clip(restorer.predict([x[None], params], verbose=0)[0], 0, 1)
    # measured: mean 1.7e-4, max 3.2e-2 (a few pixels where a tile seam meets the flat/textured edge: the
    # Wiener deconvolution is not local); seams of a 2 px overlap give mean 1.7e-2 and max 1.0
    error = np.abs(tiled - whole)
    assert error.mean() < 5e-4 and error.max() < 0.1, (error.mean(), error.max())
    # tile by tile with each tile's own estimate (the model as a whole on each tile) is further from it
    d._infer_fn = None
    monkeypatch.setattr(d, "_split", lambda: None)
    own = d.predict(x)
    assert np.abs(tiled - whole).mean() < 0.5 * np.abs(own - whole).mean()


def _split_model(estimate_tile: int):
    """A tiny ``wiener_unet`` facade whose estimator and restorer are not at their zero init."""
    from blurkit import Deblurrer

    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "estimator_width": 4},
                  estimate_tile=estimate_tile)
    rng = np.random.default_rng(5)
    for layer in (d.model.get_layer("estimator").get_layer("est_params"),
                  d.model.get_layer("restorer").get_layer("tail")):
        layer.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in layer.get_weights()])
    return d


def test_photo_estimate_is_the_median_over_estimate_tiles_even_below_the_restoration_tile():
    """A photo restored in one call (below ``tile_size**2``) still gets its blur read off ``estimate_tile``
    tiles: the restorer on the whole photo with the median of the estimates on the tiles that
    ``plan_tiles(..., tile=estimate_tile, overlap=0)`` lays out (as few as tiles of that side need, fitted
    to the photo without overlap)."""
    from blurkit.tiling import plan_tiles

    d = _split_model(64)
    estimate, restore = d._split()  # the facade's traced estimator and restorer
    rng = np.random.default_rng(6)
    x = (rng.random((150, 100, 3), dtype=np.float32) * 0.8 + 0.1).astype(np.float32)
    x[:, :50] = 0.5  # a flat half: its tiles' estimates differ from the textured half's
    plan = plan_tiles(150, 100, tile=64, overlap=0)
    assert (plan.tile_h, plan.tile_w, plan.ys, plan.xs) == (50, 50, [0, 50, 100], [0, 50])
    found = np.concatenate([estimate(x[None, y : y + 50, c : c + 50]).numpy() for y in plan.ys for c in plan.xs])
    assert np.ptp(found, axis=0).max() > 1e-3  # the tiles disagree, so the median is not any one of them
    want = restore(x[None], np.median(found, axis=0)[None].astype(np.float32)).numpy()[0]
    got = d.predict(x)
    assert np.abs(got - want).max() < 1e-6
    # a tile at least the photo's larger side: one estimate on the whole photo, i.e. the model as a whole
    d.estimate_tile = 150
    whole = d._infer(x[None])[0]
    assert np.abs(d.predict(x) - whole).max() < 1e-6
    assert np.abs(got - whole).mean() > 1e-3  # and the two estimates differ here


def test_estimate_tile_is_checked_saved_and_loaded(tmp_path):
    from blurkit import Deblurrer

    with pytest.raises(ValueError, match="estimate_tile"):
        Deblurrer(model="wiener_unet", estimate_tile=0)
    d = _split_model(200)
    assert d.metadata()["facade"]["estimate_tile"] == 200
    assert Deblurrer.load(d.save(tmp_path / "m.keras")).estimate_tile == 200


# ------------------------------------------------------------------- mutation-audit pins (exact values)
def test_progress_reports_the_tiles_each_call_finished():
    """Pins that ``progress`` receives the number of tiles each call of ``fn`` finished (an increment).

    16 tiles in batches of 3 give five calls of 3 and one of 1: a progress bar fed these reaches the tile
    count exactly; reporting 1 per call would leave it at 6 of 16.
    """
    from blurkit.tiling import plan_tiles

    image = np.random.default_rng(0).random((100, 90, 3), dtype=np.float32)
    plan = plan_tiles(100, 90, tile=32, overlap=8)
    calls: list[int] = []
    tiled_apply(lambda b: b, image, tile=32, overlap=8, batch=3, progress=calls.append)
    assert len(plan.ys) * len(plan.xs) == 16
    assert calls == [3, 3, 3, 3, 3, 1]


def test_identity_model_returns_the_input_when_three_tiles_overlap():
    """Pins the normalisation of the blending windows where more than two tiles overlap a pixel.

    With an overlap above half the tile (24 px tiles, 20 px overlap) up to six tiles cover a pixel and the
    raw windows no longer add up to 1: only dividing by their sum keeps an identity model an identity (the
    raw windows leave errors of about 0.4).
    """
    image = np.random.default_rng(0).random((100, 90, 3), dtype=np.float32)
    out = tiled_apply(lambda b: b, image, tile=24, overlap=20)
    assert np.abs(out - image).max() < 1e-6


def test_window_of_a_middle_tile_fades_out_towards_its_next_neighbour():
    """Pins the trailing fade of a tile that has neighbours on both sides, where the two fades overlap.

    Tile 1 of starts [0, 4, 8] (tile 24, length 32) overlaps tile 0 by 20 px and tile 2 by 20 px, so its
    rising and falling ramps overlap; the window is their minimum: 0 over the first 5 pixels (the outer
    quarter of the leading overlap). Replacing the minimum by the falling ramp alone would give it weight
    there.
    """
    w = window_1d([0, 4, 8], 1, 24, 32)
    np.testing.assert_array_equal(w[:5], 0.0)
    assert w[5] > 0 and w[-5:].max() == 0.0


def test_pixel_inflation_is_per_pixel_of_the_image_before_padding():
    """Pins that ``pixel_inflation`` counts the pixels computed per pixel of the *original* image.

    A 100 x 90 image padded to one 128 x 128 tile computes 128 * 128 pixels for 9000: 1.82. Dividing by the
    padded size would report 1.0 and hide the padding's cost.
    """
    from blurkit.tiling import plan_tiles

    plan = plan_tiles(100, 90, tile=128, overlap=16, pad_to_tile=True)
    assert plan.pixel_inflation == pytest.approx(128 * 128 / (100 * 90), rel=1e-12)


def test_tile_starts_and_fitted_tiles_round_to_the_nearest_pixel():
    """Pins the rounding of evenly spread tile starts (to the nearest) and fitted tile sides (upwards).

    ``tile_starts(1000, 300, 50)`` spreads 4 tiles over 700 px: 233.3 and 466.7 round to 233 and 467
    (flooring gives 466). ``fit_tile`` must round its side up (2304 / 5 = 460.8 -> 461), or the fitted
    tiles no longer cover the image; aligned, 49.5 units round to 50 (start 400, not 392).
    """
    from blurkit.tiling import fit_tile

    assert tile_starts(1000, 300, 50) == [0, 233, 467, 700]
    assert tile_starts(2048, 464, 64, align=8) == [0, 400, 792, 1184, 1584]
    assert fit_tile(2048, 512, 64) == 461
    assert fit_tile(2048, 512, 64, align=8) == 464
    assert fit_tile(1000, 300, 50) == 288
