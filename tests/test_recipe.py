"""The preset's training recipe (benchmarks/train_preset.py, train_joint.py) runs end to end: every stage, a step or
two."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import SMALL_BLIND, bench


def _folder(path: Path, images: dict) -> Path:
    """A new folder of photos: ``images`` maps file names to arrays."""
    from blurkit.data.io import write_image

    path.mkdir()
    for name, image in images.items():
        write_image(path / name, image)
    return path


@pytest.fixture(scope="module")
def recipe():
    return bench("train_preset")


#: Stage 5's settings for the runs below: the shipped recipe's (batch 32 of 384-px crops) made small, so a step
#: costs a few seconds, and unlike train_joint.py's defaults, so the tests see that the recipe passes them on.
SMALL_JOINT = {"steps": 16000, "batch": 4, "context": 96, "patch": 48, "lr": 5e-4, "seed": 5}


def test_the_recipe_s_stage_5_is_the_shipped_preset_s(recipe):
    """The recipe's stage 5 settings are those the shipped file records for its last training."""
    from blurkit import Deblurrer

    shipped = Deblurrer.from_preset("gaussian-v1").training["joint"]
    assert recipe.RECIPES["gaussian-v1"]["joint"] == {k: shipped[k] for k in SMALL_JOINT}
    assert set(SMALL_JOINT) == set(recipe.RECIPES["gaussian-v1"]["joint"])


def test_every_stage_of_the_preset_recipe_runs(recipe, tmp_path, astronaut, camera, monkeypatch):
    from skimage import data

    from blurkit import Deblurrer

    monkeypatch.setitem(recipe.RECIPES["gaussian-v1"], "joint", SMALL_JOINT)

    train = _folder(tmp_path / "train", {f"{i}.png": img[:200, :220]
                                         for i, img in enumerate([astronaut, data.coffee(), data.chelsea()])})
    val = _folder(tmp_path / "val", {"v.png": astronaut[250:450, 200:400],
                                     "g.png": camera[:170, :190]})  # greyscale photos are fine too
    out = tmp_path / "preset.keras"
    argv = ["--data", str(train), "--val", str(val), "--out", str(out), "--work-dir", str(tmp_path / "work"),
            "--epochs", "1", "--steps-per-epoch", "1", "--estimator-steps", "2", "--finetune-epochs", "1",
            "--context-steps", "2", "--joint-steps", "2", "--model-option", "width=4",
            "--model-option", "estimator_width=4",
            "--model-option", "depth=2", "--model-option", "scales=[1.0, 0.8]"]
    assert recipe.main(argv) == 0
    d = Deblurrer.load(out)
    assert d.model_spec["name"] == "wiener_unet" and d.model_spec["config"]["width"] == 4
    assert d.training["recipe"] == "gaussian-v1" and d.training["command"].endswith(" ".join(argv))
    assert set(d.training["stage4_validation_psnr"]) == {"sigma 1", "sigma 2", "sigma 3"}
    assert d.training["joint"]["steps"] == 2  # stage 5, with the recipe's settings (not train_joint.py's defaults)
    assert {k: d.training["joint"][k] for k in ("batch", "context", "patch", "lr", "seed")} == {
        k: SMALL_JOINT[k] for k in ("batch", "context", "patch", "lr", "seed")}
    assert {layer.name for layer in d.model.layers} >= {"estimator", "restorer"}
    assert (tmp_path / "preset-curves.png").is_file()
    y = d.predict(astronaut[:64, :80])
    assert y.shape == (64, 80, 3) and y.dtype == np.uint8

    # stage 4 alone from a saved model, as the shipped file was made
    again = tmp_path / "again.keras"
    assert recipe.main([*argv[:4], "--out", str(again), "--work-dir", str(tmp_path / "w2"),
                        "--from-stage3", str(out), "--context-steps", "1", "--joint-steps", "0"]) == 0
    info = Deblurrer.load(again).training
    assert info["stage3_command"] == d.training["command"]
    assert info["joint"] == d.training["joint"]  # --joint-steps 0: no new stage 5 (the file's record stays)
    assert info["train_minutes"] >= d.training["train_minutes"]

    # a new estimator for a trained restorer (how the shipped file's estimator was made)
    est = tmp_path / "estimator.keras"
    assert recipe.main([*argv[:4], "--out", str(est), "--work-dir", str(tmp_path / "w3"), "--estimator-only", str(out),
                        "--estimator-steps", "2", "--context-steps", "1", "--model-option", "estimator_width=6"]) == 0
    e = Deblurrer.load(est)
    assert e.model_spec["config"]["estimator_width"] == 6 and e.model_spec["config"]["width"] == 4
    assert e.training["restorer_command"] == d.training["command"] and "estimator_minutes" in e.training
    x, params = astronaut[None, :48, :40].astype("float32") / 255, np.array([[0.3, -0.2]], "float32")
    np.testing.assert_allclose(e.model.get_layer("restorer").predict([x, params], verbose=0),
                               d.model.get_layer("restorer").predict([x, params], verbose=0), atol=1e-6)
    assert e.model.get_layer("estimator").get_layer("est_conv0").filters == 6

    # the restorer trained further with the estimator it now has (how the shipped restorer was last trained)
    res = tmp_path / "restorer.keras"
    assert recipe.main([*argv[:4], "--out", str(res), "--work-dir", str(tmp_path / "w4"), "--restorer-only", str(est),
                        "--context-steps", "1"]) == 0
    f = Deblurrer.load(res)
    assert f.training["estimator_command"] == e.training["command"] and "restorer_minutes" in f.training
    assert f.training["train_minutes"] >= e.training["train_minutes"]
    assert set(f.training["stage4_validation_psnr"]) == {"sigma 1", "sigma 2", "sigma 3"}
    np.testing.assert_allclose(f.model.get_layer("estimator").predict(x, verbose=0),
                               e.model.get_layer("estimator").predict(x, verbose=0), atol=1e-6)
    with pytest.raises(SystemExit, match="at most one"):
        recipe.main([*argv[:4], "--restorer-only", str(est), "--estimator-only", str(est)])

    # stage 5 alone (how the shipped file was last trained): both parts move, the file's history stays
    joint = tmp_path / "joint.keras"
    assert recipe.main([*argv[:4], "--out", str(joint), "--joint-only", str(res), "--joint-steps", "1"]) == 0
    j = Deblurrer.load(joint)
    assert j.training["joint"]["steps"] == 1 and j.training["joint"]["command"].endswith(
        f"{joint} --steps 1 --batch 4 --context 96 --patch 48 --lr 0.0005 --seed 5")
    assert j.training["command"] == f.training["command"]
    for part in ("estimator", "restorer"):
        before, after = f.model.get_layer(part).get_weights(), j.model.get_layer(part).get_weights()
        assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), part

    # stage 4 from a model Keras never fitted (no curves to draw): trains, saves and returns 0
    fresh = tmp_path / "fresh.keras"
    Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}).save(fresh)
    assert recipe.main([*argv[:4], "--out", str(tmp_path / "fresh4.keras"), "--work-dir", str(tmp_path / "w5"),
                        "--from-stage3", str(fresh), "--context-steps", "1", "--joint-steps", "1"]) == 0
    info = Deblurrer.load(tmp_path / "fresh4.keras").training
    assert set(info["stage4_validation_psnr"]) == {"sigma 1", "sigma 2", "sigma 3"}


def test_edge_sigma_reads_the_blur_of_a_step_edge():
    """``oracle_sigma.edge_sigma`` on blurred step edges: it reads the total blur, the Gaussian's and the
    3x3 Sobel operator's own (about 0.5-0.6 px^2 of variance), so estimate^2 - sigma^2 stays in that band
    for every sigma, with or without the 8-bit rounding; the estimates grow with sigma."""
    from blurkit.registry import BLURS

    edge_sigma = bench("oracle_sigma").edge_sigma
    x = np.full((96, 96, 3), 0.1, np.float32)
    x[:, 48:] = 0.9
    x[20:40, 10:30] = 0.6
    found = []
    for sigma in (0.8, 1.0, 1.5, 2.0, 3.0):
        for quantize in (False, True):
            b = BLURS.create("gaussian", sigma=sigma, border="reflect", quantize=quantize)(x)["image"]
            est = edge_sigma(b)
            assert 0.45 <= est**2 - sigma**2 <= 0.65 + 0.15 * sigma, (sigma, quantize, est)
        found.append(est)
    assert np.all(np.diff(found) > 0)


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_oracle_sigma_prints_the_mean_table_and_each_photo(tmp_path, astronaut, camera, capsys):
    from blurkit import Deblurrer

    oracle_sigma = bench("oracle_sigma")
    photos = _folder(tmp_path / "photos", {"a.png": astronaut[100:164, 120:200], "c.png": camera[:56, :72]})
    model = tmp_path / "m.keras"
    Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}).save(model)
    assert oracle_sigma.main(["--model", str(model), "--data", str(photos), "--sigmas", "1", "2", "--per-photo",
                              "--tile-estimates", "32", "48", "--reblur", "--edge-estimates", "--reestimate",
                              "--scale-estimates"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | blind | edge estimate"))
    for line, sigma in zip(lines[at + 2 : at + 4], ("1", "2"), strict=True):  # 3 PSNRs, 3 log-sigma RMS errors
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[0] == sigma and len(cells) == 7 and all(float(c) >= 0 for c in cells[1:])
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | blind | half-scale estimate"))
    halved = {}  # blind, 2 PSNRs (better / worse than blind), 3 log-sigma RMS errors, 3 mean errors, 3 counts
    for line, sigma in zip(lines[at + 2 : at + 4], ("1", "2"), strict=True):
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[0] == sigma and len(cells) == 11
        for c in cells[2:4]:
            better, worse = (int(k) for k in c.split("(")[1].rstrip(")").split(" / "))
            assert float(c.split()[0]) > 0 and better + worse <= 2
        assert all(float(c) >= 0 for c in cells[4:7]) and all(abs(float(c)) <= float(r) + 1e-3
                                                               for c, r in zip(cells[7:10], cells[4:7], strict=True))
        over = [int(k) for k in cells[10].split(" / ")]
        assert len(over) == 3 and all(0 <= k <= 2 for k in over)
        halved[sigma] = cells

    class Fixed:  # an estimator that reads 0.5 px off any image, and keeps the image it was given
        def estimate_sigma(self, image):
            self.seen = image
            return 0.5

    fixed = Fixed()
    b = np.zeros((9, 12, 3), np.float32)
    b[:, 1::2] = 1.0  # stripes one pixel wide: 2x2 means make them uniform grey
    assert abs(oracle_sigma.half_scale_sigma(fixed, b) - 2 * np.sqrt(0.25 - 0.0625)) < 1e-6
    assert fixed.seen.shape == (4, 6, 3) and np.allclose(fixed.seen, 0.5)
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | blind | re-blur pick"))
    for line in lines[at + 2 : at + 4]:  # blind, two picks (with better / worse counts), best factor, true sigma
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[0] in ("1", "2") and len(cells) == 6
        blind, best = float(cells[1]), float(cells[4].split()[0])
        assert best >= blind - 1e-9  # the best factor of the grid includes 1.0, the blind estimate
        assert all(c.endswith(" / 0)") for c in cells[4:5])  # nothing is worse than blind with the best factor
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | blind | knee, 2 %"))
    for line, sigma in zip(lines[at + 2 : at + 4], ("1", "2"), strict=True):  # blind, three picks, best factor
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[0] == sigma and len(cells) == 6
        assert float(cells[5].split()[0]) >= float(cells[1]) - 1e-9 and cells[5].endswith(" / 0)")
        assert all(float(c.split()[0]) <= float(cells[5].split()[0]) + 1e-9 for c in cells[2:5])  # none beats it
    at = next(i for i, line in enumerate(lines) if line.startswith("| photo | sigma | x0.75"))
    curves = [line.split("|")[1:-1] for line in lines[at + 2 : at + 6]]  # each photo's re-estimates per factor
    assert sorted((c[0].strip(), c[1].strip()) for c in curves) == [("a.png", "1"), ("a.png", "2"), ("c.png", "1"),
                                                                     ("c.png", "2")]
    for c in curves:
        assert len(c) == 2 + 15 and sum("**" in v for v in c) == 1  # the best factor marked once
        assert all(0.3 <= float(v.strip(" *")) <= 3.5 for v in c[2:])
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | whole photo"))
    assert lines[at].count("|") == 2 + 1 + 6  # sigma, whole, then median / upper quartile / max for 2 sides
    tiled = {line.split("|")[1].strip(): [float(v) for v in line.split("|")[2:-1]] for line in lines[at + 2 : at + 4]}
    assert set(tiled) == {"1", "2"} and all(len(v) == 7 for v in tiled.values())
    wins = next(i for i, line in enumerate(lines) if line.startswith("Photos restored better"))
    for line in lines[wins + 3 : wins + 5]:  # per sigma, for each tile column: "k of 2" photos beat the whole photo
        cells = [c.strip() for c in line.split("|")[2:-1]]
        assert len(cells) == 6 and all(c.endswith(" of 2") and 0 <= int(c.split()[0]) <= 2 for c in cells)
    means = [line.split("|")[1:-1] for line in out.splitlines()[:at] if line.startswith(("| 1 |", "| 2 |"))]
    per = next(i for i, line in enumerate(lines) if line.startswith("| photo | sigma | estimated sigma"))
    photo = [line.split("|")[1:-1] for line in lines[per + 2 : per + 6]]
    assert len(means) == 2
    assert sorted((r[0].strip(), r[1].strip()) for r in photo) == [("a.png", "1"), ("a.png", "2"), ("c.png", "1"),
                                                                    ("c.png", "2")]
    for _, _, guess, blind, true, lost in photo:
        assert 0.3 <= float(guess) <= 3.5
        assert abs(float(true) - float(blind) - float(lost)) <= 0.011  # the gain is true minus blind
    for sigma in ("1", "2"):  # the mean table's blind column is the mean of the per-photo column
        rows = [r for r in photo if r[1].strip() == sigma]
        blind_mean = float(next(m for m in means if m[0].strip() == sigma)[1])
        mean_row = next(m for m in means if m[0].strip() == sigma)
        assert float(halved[sigma][1]) == blind_mean  # the half-scale table's blind column and model's RMS error
        assert abs(float(halved[sigma][4]) - float(mean_row[6])) <= 1e-3  # are the mean table's
        assert abs(blind_mean - np.mean([float(r[3]) for r in rows])) <= 0.011
        # and the tile table's "whole photo" column is the blind model again (photos below the estimate tile)
        assert abs(tiled[sigma][0] - blind_mean) <= 0.011


def test_estimator_probe_prints_an_estimate_per_photo_sigma_and_processing(tmp_path, astronaut, capsys):
    from blurkit import Deblurrer

    probe = bench("estimator_probe")
    photos = _folder(tmp_path / "photos", {"a.png": astronaut[100:196, 120:220], "b.png": astronaut[:64, :64]})
    model = tmp_path / "m.keras"
    Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "estimator_width": 4}).save(model)
    assert probe.main(["--model", str(model), "--data", str(photos), "--sigmas", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines if line.startswith(("| a.png", "| b.png"))]
    assert sorted((r[0], r[1]) for r in rows) == [("a.png", "1"), ("a.png", "2"), ("b.png", "1"), ("b.png", "2")]
    for r in rows:
        assert len(r) == 2 + len(probe.PROCESSING)
        assert all(0.3 <= float(c.split()[0]) <= 3.5 for c in r[2:])  # the model's sigma range
        soft = r[2 + probe.PROCESSING.index("soft 0.6")]  # the target is the total blur
        assert soft.endswith(f"({np.hypot(float(r[1]), 0.6):.2f})")
    assert lines[-1].startswith("| **mean of log(estimate / target)** |")
    image = astronaut[:64, :64].astype("float32") / 255
    assert probe.process(image, "half size").shape == (32, 32, 3)
    sharp = probe.process(image, "sharpened r1 a2")
    assert sharp.std() > image.std() and abs(sharp.mean() - image.mean()) < 0.02  # sharper, not darker
    with pytest.raises(ValueError, match="choose from"):
        probe.process(image, "sepia")


@pytest.fixture(scope="module")
def joint():
    return bench("train_joint")


def test_joint_batches_are_fixed_by_seed_and_step(joint, astronaut):
    from skimage import data

    photos = [astronaut[:60, :70], data.coffee()[:50, :90], np.ascontiguousarray(data.chelsea()[:80, :40])]
    (ctx, x), (y, target) = joint.make_batch(photos, 3, 7, 5, 48, 32)
    assert ctx.shape == (5, 48, 48, 3) and x.shape == y.shape == (5, 32, 32, 3) and target.shape == (5, 2)
    assert ctx.dtype == x.dtype == y.dtype == np.uint8
    assert np.all((target[:, 0] >= 0.3) & (target[:, 0] <= 3.5)) and np.all(target[:, 1] == 0)
    again = joint.make_batch(photos, 3, 7, 5, 48, 32)
    for a, b in zip((ctx, x, y, target), (*again[0], *again[1]), strict=True):
        np.testing.assert_array_equal(a, b)  # the same batch whatever thread makes it, whenever
    assert not np.array_equal(joint.make_batch(photos, 3, 8, 5, 48, 32)[0][0], ctx)
    from blurkit.blurs import GaussianBlur

    for i in range(5):
        # the blurred patch is a window of the blurred context crop
        assert any(np.array_equal(ctx[i, py : py + 32, px : px + 32], x[i]) for py in range(17) for px in range(17))
        # and the sharp target is that window of the sharp crop: away from the patch's edges, blurring the
        # target with the batch's sigma gives the input patch (up to the 8-bit rounding of a tie)
        sigma = float(target[i, 0])
        r = int(np.ceil(3 * sigma))
        blur = GaussianBlur(sigma=sigma, border="reflect", quantize=True)
        again = blur.apply(y[i], blur.sample(0))
        assert np.abs(again[r:-r, r:-r].astype(int) - x[i, r:-r, r:-r].astype(int)).max() <= 1
    with pytest.raises(ValueError, match="smaller than the 64-px patch"):
        joint.make_batch(photos, 3, 7, 5, 96, 64)



def test_joint_jitter_scales_the_sigma_the_restorer_gets_and_keeps_the_batches(joint, astronaut):
    """``--jitter``: a third input of log-factors from their own generator (the crops and blurs are those of
    the run without it), and ``jittered`` multiplies the estimator's sigma by exp(factor) inside its range."""
    import keras

    from blurkit.models.layers import GaussianWiener

    photos = [astronaut[:60, :70]]
    (ctx, x), (y, target) = joint.make_batch(photos, 3, 7, 64, 48, 32)
    (ctx_j, x_j, factors), (y_j, target_j) = joint.make_batch(photos, 3, 7, 64, 48, 32, jitter=0.2)
    for a, b in ((ctx, ctx_j), (x, x_j), (y, y_j), (target, target_j)):
        np.testing.assert_array_equal(a, b)
    assert factors.shape == (64, 1) and factors.dtype == np.float32
    assert 0.1 < factors.std() < 0.3 and abs(factors.mean()) < 0.1
    np.testing.assert_array_equal(factors, joint.make_batch(photos, 3, 7, 64, 48, 32, jitter=0.2)[0][2])
    wiener = GaussianWiener(sigma_range=(0.3, 3.5))
    raw = np.array([[-1.0, 0.3], [0.5, -2.0], [0.0, 0.0], [2.0, 1.0]], np.float32)
    log_factor = np.log(np.array([[1.0], [1.5], [0.5], [4.0]], np.float32))
    out = keras.ops.convert_to_numpy(joint.jittered(raw, log_factor, wiener))
    before = keras.ops.convert_to_numpy(wiener.blur_parameters(raw)[0])
    after = keras.ops.convert_to_numpy(wiener.blur_parameters(out)[0])
    np.testing.assert_allclose(after[:3], before[:3] * [1.0, 1.5, 0.5], rtol=1e-4)
    assert before[3] * 4 > 3.5 and 3.49 < after[3] <= 3.5  # kept inside the range
    np.testing.assert_array_equal(out[:, 1], raw[:, 1])  # the balance is not touched


def test_joint_degradations_add_noise_and_jpeg_to_the_same_batches(joint, astronaut):
    """``--noise`` / ``--jpeg``: each blurred crop, with probability ``fraction``, gets sensor noise and (drawn
    apart) a JPEG round trip, from a generator of their own: the crops, blurs and targets are the clean run's,
    and the patch is still a window of the (degraded) context crop."""
    photos = [astronaut[:120, :140]]
    (ctx, x), (y, target) = joint.make_batch(photos, 3, 7, 16, 64, 32)
    (ctx_d, x_d), (y_d, target_d) = joint.make_batch(photos, 3, 7, 16, 64, 32, noise=0.02, jpeg=50, fraction=0.5)
    np.testing.assert_array_equal(y, y_d)
    np.testing.assert_array_equal(target, target_d)
    changed = [not np.array_equal(a, b) for a, b in zip(ctx, ctx_d, strict=True)]
    assert 2 <= sum(changed) <= 15  # about 3/4 of the crops get noise, JPEG or both
    again = joint.make_batch(photos, 3, 7, 16, 64, 32, noise=0.02, jpeg=50, fraction=0.5)
    np.testing.assert_array_equal(ctx_d, again[0][0])  # fixed by seed and step, like the clean batches
    for i in range(16):
        assert any(np.array_equal(ctx_d[i, py : py + 32, px : px + 32], x_d[i]) for py in range(33) for px in range(33))
    none = joint.make_batch(photos, 3, 7, 16, 64, 32, noise=0.02, jpeg=50, fraction=0.0)
    np.testing.assert_array_equal(none[0][0], ctx)
    every = joint.make_batch(photos, 3, 7, 16, 64, 32, jpeg=50, fraction=1.0)
    assert all(not np.array_equal(a, b) for a, b in zip(ctx, every[0][0], strict=True))

    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = joint.add_noise(flat, 0.01, np.random.default_rng(0))
    assert noisy.dtype == np.uint8 and noisy.shape == flat.shape
    assert abs(noisy.astype(float).std() / 255 - 0.01) < 0.001 and abs(noisy.mean() - 128) < 0.1
    tile = np.ascontiguousarray(astronaut[:64, :64])
    high, low = joint.jpeg(tile, 95), joint.jpeg(tile, 10)
    assert high.shape == tile.shape and high.dtype == np.uint8
    err = [np.abs(v.astype(int) - tile).mean() for v in (high, low)]
    assert 0 < err[0] < 3 < err[1]  # lossy, and more so at a low quality
    assert abs(low.astype(float).mean(axis=(0, 1)) - tile.mean(axis=(0, 1))).max() < 4  # colours stay (RGB, not BGR)


def test_joint_learning_rate_warms_up_then_decays_to_a_hundredth():
    learning_rate = bench("train_joint").learning_rate
    assert learning_rate(0.0, 2.0) == pytest.approx(0.2)  # lr / 10
    assert learning_rate(0.01, 2.0) == pytest.approx(1.1)  # half-way up
    assert learning_rate(0.02, 2.0) == pytest.approx(2.0)  # the peak
    assert learning_rate(0.51, 2.0) == pytest.approx(2.0 * (0.01 + 0.99 / 2))  # the cosine's middle
    assert learning_rate(1.0, 2.0) == pytest.approx(0.02) == learning_rate(1.5, 2.0)  # lr / 100, and stays
    values = [learning_rate(f / 100, 1.0) for f in range(2, 101)]
    assert all(a >= b for a, b in zip(values[:-1], values[1:], strict=True))


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_joint_training_moves_both_parts_or_only_the_restorer(joint, tmp_path, astronaut, camera, capsys):
    from blurkit import Deblurrer
    from blurkit.data.io import write_image

    photos = _folder(tmp_path / "photos", {"a.png": astronaut[:90, :100],
                                           "g.png": camera[:70, :80]})  # greyscale: used as RGB
    init = tmp_path / "init.keras"
    Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4,
                                                   "scales": [1.0, 0.8]}).save(init)
    start = Deblurrer.load(init)
    common = ["--init", str(init), "--data", str(photos), "--steps", "3", "--batch", "2", "--context", "64",
              "--patch", "32", "--chunk", "2", "--workers", "2"]
    out = tmp_path / "j.keras"
    assert joint.main([*common, "--out", str(out), "--keep", "0.5"]) == 0
    d = Deblurrer.load(out)
    info = d.training["joint"]
    assert info["steps"] == 3 and info["batch"] == 2 and info["freeze_estimator"] is False
    assert info["command"] == "python benchmarks/train_joint.py " + " ".join([*common, "--out", str(out), "--keep",
                                                                             "0.5"])
    assert "joint_kept_at_step" not in d.training
    kept = Deblurrer.load(tmp_path / "j-f50.keras")  # kept after the first chunk, 2 of 3 steps (>= 50 %)
    assert kept.training["joint_kept_at_step"] == 2

    def moved(a, b, part):
        return any(not np.array_equal(u, v) for u, v in zip(a.model.get_layer(part).get_weights(),
                                                           b.model.get_layer(part).get_weights(), strict=True))

    assert moved(start, d, "estimator") and moved(start, d, "restorer")
    assert moved(kept, d, "restorer")  # the last step trained on after the copy was kept
    frozen = tmp_path / "f.keras"
    assert joint.main([*common, "--out", str(frozen), "--freeze-estimator"]) == 0
    f = Deblurrer.load(frozen)
    assert f.training["joint"]["freeze_estimator"] is True
    assert not moved(start, f, "estimator") and moved(start, f, "restorer")
    y = f.predict(astronaut[:40, :50])
    assert y.shape == (40, 50, 3) and y.dtype == np.uint8
    jit = tmp_path / "jit.keras"
    assert joint.main([*common, "--out", str(jit), "--freeze-estimator", "--jitter", "0.1"]) == 0
    jd = Deblurrer.load(jit)
    assert jd.training["joint"]["jitter"] == 0.1 and f.training["joint"]["jitter"] == 0.0
    assert not moved(start, jd, "estimator") and moved(f, jd, "restorer")  # other sigmas, other steps
    assert "jitter" not in {layer.name for layer in jd.model.layers}  # the saved model has no training part
    # the estimator alone, trained through the frozen restorer: with no weight on its sigma loss, only the
    # restorer's PSNR loss can move it, so it moves only if the gradient flows through the restorer
    through = tmp_path / "t.keras"
    assert joint.main([*common, "--out", str(through), "--freeze-restorer", "--through",
                       "--estimator-weight", "0"]) == 0
    t = Deblurrer.load(through)
    assert t.training["joint"]["freeze_restorer"] is True and t.training["joint"]["through"] is True
    assert moved(start, t, "estimator") and not moved(start, t, "restorer")
    with pytest.raises(SystemExit, match="leave nothing to train"):
        joint.main([*common, "--out", str(out), "--freeze-restorer", "--freeze-estimator"])
    with pytest.raises(SystemExit, match="must end in .keras"):
        joint.main([*common, "--out", str(tmp_path / "j.h5")])
    with pytest.raises(SystemExit):  # argparse: names the option
        joint.main([*common, "--out", str(out), "--keep", "half"])
    assert "--keep: expected fractions" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        joint.main([*common, "--out", str(out), "--jitter", "-0.1"])
    assert "--jitter must be >= 0" in capsys.readouterr().err
    rough = tmp_path / "rough.keras"
    assert joint.main([*common, "--out", str(rough), "--noise", "0.02", "--jpeg", "50", "--degrade", "1"]) == 0
    info = Deblurrer.load(rough).training["joint"]
    assert (info["noise"], info["jpeg"], info["degrade"]) == (0.02, 50, 1.0)
    assert "joint_before" not in Deblurrer.load(rough).training  # from a file no joint run made
    again = tmp_path / "again.keras"  # a second run keeps the first one's record
    assert joint.main([*common[:1], str(rough), *common[2:], "--out", str(again)]) == 0
    record = Deblurrer.load(again).training
    assert record["joint_before"] == [info] and record["joint"]["noise"] == 0.0
    assert (f.training["joint"]["noise"], f.training["joint"]["jpeg"]) == (0.0, None)
    for flag, value, message in (("--noise", "-0.01", "--noise must be in"), ("--jpeg", "0", "--jpeg must be in"),
                                 ("--degrade", "1.5", "--degrade must be in")):
        with pytest.raises(SystemExit):
            joint.main([*common, "--out", str(out), flag, value])
        assert message in capsys.readouterr().err
    write_image(photos / "small.png", astronaut[:20, :50])
    with pytest.raises(SystemExit, match=r"small\.png: 20x50 px, smaller than the 32-px patch"):
        joint.main([*common, "--out", str(out)])


def test_quality_second_test_set_is_scikit_image_samples_outside_val():
    quality = bench("quality")
    photos = quality.load_photos("skimage", 3, 64)
    assert [n for n, _ in photos] == list(quality.SKIMAGE_SAMPLES[:3])
    for _, img in photos:
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3 and max(img.shape[:2]) == 64
        assert 0 <= img.min() and img.max() <= 1
    assert len(quality.load_photos("skimage", None, 32)) == len(quality.SKIMAGE_SAMPLES) == 10
    # none of them is one of the validation photos (scikit-image's astronaut, chelsea, coffee, rocket, motorcycle)
    assert not set(quality.SKIMAGE_SAMPLES) & {"astronaut", "chelsea", "cat", "coffee", "rocket", "motorcycle_left"}


def test_quality_rl_iterates_are_richardson_lucy_at_each_count(astronaut):
    """``--tune-rl`` scores every iteration count from one run of the largest: each count's result is
    ``classical.richardson_lucy``'s to the last bit."""
    from blurkit.classical import blur_gaussian, richardson_lucy

    quality = bench("quality")
    for image in (astronaut[:40, :56], astronaut[:40, :56, 0].astype(np.float32) / 255):
        b, k = blur_gaussian(image, 1.5)
        got = quality.rl_iterates(b, k, [7, 2, 7])
        assert sorted(got) == [2, 7]
        for n, r in got.items():
            np.testing.assert_array_equal(r, richardson_lucy(b, k, iterations=n))
        assert not np.array_equal(got[2], got[7])


def test_robustness_scores_each_sigma_and_degradation_with_the_same_inputs(tmp_path, astronaut, camera, capsys):
    """benchmarks/robustness.py: a row per (sigma, degradation); every method restores the same degraded inputs;
    noise and JPEG lower the input's PSNR; the JSON holds what the table prints."""
    import json

    from blurkit import Deblurrer
    from blurkit.classical import blur_gaussian
    from blurkit.metrics.functional import psnr

    robustness = bench("robustness")
    photos = _folder(tmp_path / "photos", {"a.png": astronaut[100:164, 120:200], "c.png": camera[:56, :72]})
    model = tmp_path / "m.keras"
    Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}).save(model)
    out = tmp_path / "r.json"
    assert robustness.main(["--no-presets", "--model", str(model), "--data", str(photos), "--sigmas", "1", "2",
                            "--noise", "0.02", "--jpeg", "30", "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | file |"))
    assert lines[at] == "| sigma | file | input | Wiener, true kernel | model m.keras, blind | model m.keras, given sigma |"
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[at + 2 : at + 8]]
    assert [(r[0], r[1]) for r in rows] == [(s, k) for s in ("1", "2") for k in ("8-bit", "noise 0.02", "JPEG 30")]
    result = json.loads(out.read_text())
    assert result["table_markdown"] == "\n".join(lines[at : at + 8])
    by = {(r["sigma"], r["degradation"]): r["scores"] for r in result["rows"]}
    for sigma in (1.0, 2.0):  # the clean row's input is the quality benchmark's blurred photo
        sharp = [np.asarray(x, np.float32) / 255 for x in (astronaut[100:164, 120:200], camera[:56, :72])]
        sharp[1] = np.repeat(sharp[1][..., None], 3, axis=-1)
        expected = np.mean([psnr(x, blur_gaussian(x, sigma, seed=0)[0]) for x in sharp])
        assert by[(sigma, "8-bit")]["input"]["psnr"] == pytest.approx(expected, abs=1e-4)
        for kind in ("noise 0.02", "JPEG 30"):
            assert by[(sigma, kind)]["input"]["psnr"] < by[(sigma, "8-bit")]["input"]["psnr"] - 0.5
        for scores in (by[(sigma, k)] for k in ("8-bit", "noise 0.02", "JPEG 30")):
            assert set(scores) == {"input", "Wiener, true kernel", "model m.keras, blind", "model m.keras, given sigma"}
            assert all(0 < v["ssim"] <= 1 and 10 < v["psnr"] < 60 for v in scores.values())
    at = next(i for i, line in enumerate(lines) if line.startswith("| sigma | file | model m.keras |"))
    assert result["estimates_markdown"] == "\n".join(lines[at : at + 8])
    for r in result["rows"]:
        e = r["estimates"]["model m.keras"]
        assert 0.3 / r["sigma"] <= e["ratio"] <= 3.5 / r["sigma"] and e["rms"] >= abs(np.log(e["ratio"])) - 1e-9
    with pytest.raises(SystemExit, match="noise levels must be in"):
        robustness.main(["--no-presets", "--data", str(photos), "--noise", "0.7", "--json", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="no such model file"):  # (--json: never the committed results file)
        robustness.main(["--data", str(photos), "--model", str(tmp_path / "missing.keras"),
                         "--json", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_auto_thresholds_scores_the_choice_and_searches_the_best_thresholds(tmp_path, astronaut, camera, capsys):
    """benchmarks/auto_thresholds.py: every case has both presets' PSNR and both measures; the table's
    "choice" is the mean PSNR of the preset the thresholds pick per case (recomputed here), "better of the
    two" bounds it; --search finds thresholds on its grid whose mean choice is at least the shipped ones'."""
    import json

    from blurkit.presets.auto import BLOCK_THRESHOLD, NOISE_THRESHOLD

    auto = bench("auto_thresholds")
    photos = _folder(tmp_path / "photos", {"a.png": astronaut[100:196, 120:216], "c.png": camera[:80, :96]})
    out = tmp_path / "a.json"
    assert auto.main(["--data", str(photos), "--crop", "64", "--search", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    cases = result["cases"]
    assert len(cases) == 2 * len(auto.SIGMAS) * (1 + len(auto.NOISE) + len(auto.QUALITIES))
    assert {c["kind"] for c in cases} == set(auto.KINDS)
    assert all(10 < c["psnr_default"] < 70 and 10 < c["psnr_noisy"] < 70 and c["noise_level"] >= 0 for c in cases)
    jpegs = [c["blockiness"] for c in cases if c["file"] == "JPEG 50"]
    assert np.mean(jpegs) > np.mean([c["blockiness"] for c in cases if c["kind"] == "clean"])
    t = result["thresholds"]
    assert t["searched"] and t["noise_level"] in auto.NOISE_GRID and t["blockiness"] in auto.BLOCK_GRID

    def mean_choice(noise_t, block_t):
        per_kind = []
        for kind in auto.KINDS:
            sel = [c for c in cases if c["kind"] == kind]
            per_kind.append(np.mean([c["psnr_noisy"] if c["noise_level"] > noise_t or c["blockiness"] > block_t
                                     else c["psnr_default"] for c in sel]))
        return per_kind

    searched = mean_choice(t["noise_level"], t["blockiness"])
    for kind, value in zip(auto.KINDS, searched, strict=True):
        row = result["table"][kind]
        assert row["choice"] == pytest.approx(value)
        assert row["best"] >= max(row["default"], row["noisy"], row["choice"]) - 1e-9
    assert np.mean(searched) >= np.mean(mean_choice(NOISE_THRESHOLD, BLOCK_THRESHOLD)) - 1e-9
    assert result["table_markdown"] in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--every must be"):
        auto.main(["--data", str(photos), "--every", "0"])


def test_estimator_pool_trains_only_the_estimator_from_the_same_start(tmp_path, astronaut, camera):
    from blurkit import Deblurrer

    estimator_pool = bench("estimator_pool")
    photos = _folder(tmp_path / "photos", {"a.png": astronaut[100:196, 120:220], "c.png": camera[:80, :90]})
    init = tmp_path / "init.keras"
    start = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "estimator_width": 4}, seed=3)
    start.save(init)
    x = astronaut[None, 100:164, 120:184].astype("float32") / 255
    out = tmp_path / "att.keras"
    assert estimator_pool.main(["--init", str(init), "--data", str(photos), "--out", str(out), "--pool",
                                "attention", "--steps", "3", "--sides", "32", "48", "--batch", "2",
                                "--over-weight", "3", "--vary", "sharpen", "jpeg",
                                "--sharpen-amount", "0.1", "0.6"]) == 0
    d = Deblurrer.load(out)
    assert d.model_spec["config"]["estimator_pool"] == "attention"
    assert "--pool attention" in d.training["estimator_pool"]["command"]
    assert "--vary sharpen jpeg --sharpen-amount 0.1 0.6" in d.training["estimator_pool"]["command"]
    restorer, before = d.model.get_layer("restorer"), start.model.get_layer("restorer")
    for a, b in zip(restorer.get_weights(), before.get_weights(), strict=True):  # the restorer is frozen
        np.testing.assert_array_equal(a, b)
    moved = d.model.get_layer("estimator").get_layer("est_params").get_weights()[0]
    assert np.abs(moved - start.model.get_layer("estimator").get_layer("est_params").get_weights()[0]).max() > 0
    # with_pool alone changes nothing: the attention starts as the mean
    same = estimator_pool.with_pool(Deblurrer.load(init), "attention")
    np.testing.assert_allclose(same.model.predict(x, verbose=0), start.model.predict(x, verbose=0), atol=1e-5)


def test_estimator_loss_can_weigh_over_estimates_more(recipe):
    from blurkit.registry import MODELS

    wiener = MODELS.create("wiener_unet", width=4, depth=1, estimator_width=4).get_layer("restorer").get_layer("wiener")
    raw = np.zeros((2, 2), "float32")  # the same estimate for both images
    sigma = float(np.asarray(wiener.blur_parameters(raw)[0])[0])
    truth = np.float32([[sigma / 1.2], [sigma * 1.2]])  # over-estimated by 1.2x, under-estimated by 1.2x
    plain = np.asarray(recipe.estimator_loss(wiener)(truth, raw))
    heavy = np.asarray(recipe.estimator_loss(wiener, over_weight=3.0)(truth, raw))
    np.testing.assert_allclose(plain[0], plain[1], rtol=1e-5)  # symmetric in log sigma
    balance = plain[0] - np.log(1.2) ** 2
    np.testing.assert_allclose(heavy, [balance + 3 * np.log(1.2) ** 2, plain[1]], rtol=1e-5)


def test_vary_draws_the_same_crops_and_makes_them_look_like_other_cameras(recipe, tmp_path, astronaut):
    """``_vary`` takes its choices from its own generator: where it chooses nothing, the crop is ``_square``'s;
    otherwise the patch is rescaled (never larger than asked), noisy, sharpened or JPEG-compressed, and stays
    in [0, 1]."""
    photos = [_folder(tmp_path / "p", {"a.png": astronaut[:300, :320]}) / "a.png"]

    class Never:  # a generator whose every coin toss says "no"
        def random(self):
            return 1.0

    plain = recipe._square(photos, {}, np.random.default_rng(5), 96)
    same = recipe._vary(photos, {}, np.random.default_rng(5), Never(), 96, recipe.VARY)
    np.testing.assert_array_equal(same, plain)
    with pytest.raises(ValueError, match="blur"):
        recipe._vary(photos, {}, np.random.default_rng(5), Never(), 96, ("jpeg", "blur"))
    vrng, changed = np.random.default_rng(0), 0
    for side in (64, 96, 200):
        for _ in range(6):
            rng = np.random.default_rng(side)
            patch = recipe._vary(photos, {}, rng, vrng, side, recipe.VARY)
            square = recipe._square(photos, {}, np.random.default_rng(side), side)
            assert patch.dtype == np.float32 and patch.shape[2] == 3
            assert patch.shape[0] == patch.shape[1] <= side and 0.0 <= patch.min() and patch.max() <= 1.0
            changed += patch.shape != square.shape or not np.array_equal(patch, square)
    assert changed >= 12  # 15 in 16 draws change something


def test_dead_leaves_are_sharp_discs_coloured_from_the_palette(recipe):
    """A dead-leaves image is reproducible from its generator, is coloured only from the palette (flat areas
    of exactly a palette colour, anti-aliased edges mixing two), and has discs of many sizes."""
    palette = np.float32([[[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]]])
    im = recipe.dead_leaves(128, np.random.default_rng(3), palette)
    np.testing.assert_array_equal(im, recipe.dead_leaves(128, np.random.default_rng(3), palette))
    assert not np.array_equal(im, recipe.dead_leaves(128, np.random.default_rng(4), palette))
    assert im.shape == (128, 128, 3) and im.dtype == np.float32
    dark = np.all(np.abs(im - palette[0, 0]) < 1e-6, axis=-1)
    light = np.all(np.abs(im - palette[0, 1]) < 1e-6, axis=-1)
    assert dark.mean() > 0.2 and light.mean() > 0.2 and (dark | light).mean() > 0.5
    t = (im - palette[0, 0]) / (palette[0, 1] - palette[0, 0])  # every pixel a mix of the two colours
    np.testing.assert_allclose(t, t[..., :1].repeat(3, axis=-1), atol=1e-4)
    assert -1e-4 <= t.min() and t.max() <= 1 + 1e-4
    # scale invariance, roughly: regions of one colour come in many sizes (small and large runs along rows)
    runs = np.diff(np.flatnonzero(np.diff(light[::8].astype(int), axis=1).ravel() != 0))
    assert runs.min() <= 3 and runs.max() >= 20


def test_widen_keeps_the_restoration_and_trains_the_new_channels():
    """A wider restorer made by widen.py computes what the original did, and its new weights are not dead:
    the zero weights that read the new channels, and a new block's zero convolution, get gradients."""
    import keras
    import tensorflow as tf

    from blurkit import Deblurrer

    widen = bench("widen")
    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}, seed=1)
    rng = np.random.default_rng(6)
    for layer in d.model.get_layer("restorer").layers:  # not the zero tail: every path must matter
        if layer.weights:
            layer.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.random((2, 36, 44, 3), dtype=np.float32)
    before = d.model.predict(x, verbose=0)
    widen.widen(d, width=6, blocks=2)
    assert d.model_spec["config"]["width"] == 6 and d.model_spec["config"]["blocks"] == 2
    restorer = d.model.get_layer("restorer")
    assert restorer.get_layer("head").filters == 6 and restorer.get_layer("dec0_block1_conv2")
    # float32 sums over more channels round differently (by CPU: oneDNN blocks channels by 8 or 16): 1e-5 of
    # the output's scale (here ~30); a widening that changed the restoration is off by far more (below)
    np.testing.assert_allclose(d.model.predict(x, verbose=0), before, atol=1e-5 * np.abs(before).max())
    with tf.GradientTape() as tape:
        loss = keras.ops.mean((d.model(x) - x) ** 2)
    grads = dict(zip([w.path for w in d.model.trainable_weights],
                     tape.gradient(loss, d.model.trainable_weights), strict=True))
    tail = grads[restorer.get_layer("tail").kernel.path].numpy()
    assert np.abs(tail[:, :, 4:, :]).max() > 0  # the tail's zero weights from the new channels
    block = grads[restorer.get_layer("dec0_block1_conv2").kernel.path].numpy()
    assert np.abs(block).max() > 0  # a new block's zero convolution
    # the check can fail: a zeroed weight that is not zero changes the restoration
    kernel, bias = restorer.get_layer("tail").get_weights()
    kernel[:, :, 4:, :] = 0.1
    restorer.get_layer("tail").set_weights([kernel, bias])
    assert np.abs(d.model.predict(x, verbose=0) - before).max() > 1e-3
    with pytest.raises(ValueError, match="only grow"):
        widen.widen(d, width=4, blocks=2)
    # the fresh weights are the seeded Glorot start times `scale`
    heads = []
    for scale in (1.0, 0.01):
        e = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}, seed=1)
        widen.widen(e, width=6, blocks=2, seed=3, scale=scale)
        heads.append(e.model.get_layer("restorer").get_layer("head").get_weights()[0][..., 4:])
    assert np.abs(heads[0]).max() > 0.05
    np.testing.assert_allclose(heads[1], 0.01 * heads[0], rtol=1e-5)


def test_widen_script_writes_a_wider_file_that_restores_the_same(tmp_path, capsys):
    """``widen.py --init FILE`` writes a loadable wider model, records the widening, and restores as before."""
    from blurkit import Deblurrer

    widen = bench("widen")
    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}, seed=1)
    rng = np.random.default_rng(7)
    for layer in d.model.get_layer("restorer").layers:  # every path matters, the tail included
        if layer.weights:
            layer.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in layer.get_weights()])
    src, out = tmp_path / "narrow.keras", tmp_path / "wide.keras"
    d.save(src)
    assert widen.main(["--init", str(src), "--width", "6", "--blocks", "2", "--out", str(out)]) == 0
    w = Deblurrer.load(out)
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "width 6, blocks 2" in printed and "same restoration" in printed
    assert f"{d.model.count_params():,} -> {w.model.count_params():,} parameters" in printed
    assert w.model_spec["config"]["width"] == 6 and w.model_spec["config"]["blocks"] == 2
    assert w.training["widened"] == {"from": str(src), "width": 6, "blocks": 2, "seed": 0, "scale": 0.01,
                                     "params_before": d.model.count_params()}
    x = rng.random((1, 40, 48, 3), dtype=np.float32)
    want = d.model.predict(x, verbose=0)  # to float32 rounding of the output's scale, as in the test above
    np.testing.assert_allclose(w.model.predict(x, verbose=0), want, atol=1e-5 * np.abs(want).max())


def test_export_check_compares_serve_with_predict(tmp_path, astronaut, camera, capsys):
    from blurkit import Deblurrer

    photos = _folder(tmp_path / "photos", {"a.png": astronaut[100:164, 120:200], "c.png": camera[:56, :72]})
    model = tmp_path / "m.keras"
    Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}).save(model)
    assert bench("export_check").main(["--model", str(model), "--data", str(photos), "--repeats", "1",
                                       "--tflite"]) == 0
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| a.png")
            or line.startswith("| c.png")]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [("a.png", "80x64"), ("c.png", "72x56")]
    for row in rows:
        assert int(row[2]) == 0 and int(row[3]) == 0 and int(row[6]) == 0  # as predict does, blind and given sigma
        assert float(row[4]) > 0 and float(row[5]) > 0
    tflite = [line for line in out.splitlines() if line.startswith("TFLite, ")]  # one line per way, what it did
    assert [line.split(":")[0] for line in tflite] == ["TFLite, built-in operators only",
                                                       "TFLite, TensorFlow ops allowed (Flex)"]
    # as benchmarks/README.md and blurkit.export say: built-ins alone fail (with a reason), Flex converts
    assert tflite[0].startswith("TFLite, built-in operators only: failed") and len(tflite[0]) > 45
    assert tflite[1].endswith(" MB") and "converted" in tflite[1]  # with TensorFlow's ops it always converts


def test_make_val_writes_the_scikit_image_photos_and_names_the_scikit_learn_ones(tmp_path, monkeypatch, capsys):
    """Without scikit-learn (not a dependency) the five scikit-image photos are written pixel for pixel and the
    command fails, naming the two it could not write."""
    from skimage import data

    from blurkit.data.io import read_image

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails, installed or not
    assert bench("make_val").main([str(tmp_path / "val")]) == 1
    assert "china, flower come with scikit-learn" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "val").iterdir()) == [
        "astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "val" / "motorcycle_left.png"), data.stereo_motorcycle()[0])
    np.testing.assert_array_equal(read_image(tmp_path / "val" / "chelsea.png"), data.chelsea())


def test_quality_paired_statistics_golden():
    """The paired table's numbers: mean, bootstrap interval (seeded) and the exact Wilcoxon p-value."""
    quality = bench("quality")
    st = quality.paired([0.5, 1.0, -0.2, 0.8, 0.3, 0.6, 0.1])
    assert st["n"] == 7 and st["mean"] == pytest.approx(3.1 / 7)
    low, high = st["ci95"]
    assert low < st["mean"] < high and 0.05 < low < 0.25 and 0.6 < high < 0.8
    assert st["ci95"] == quality.paired([0.5, 1.0, -0.2, 0.8, 0.3, 0.6, 0.1])["ci95"]  # seeded
    # one negative difference of rank 2 among 7: W = 2, exact two-sided p = 2 * 3 / 2**7
    assert st["wilcoxon_p"] == pytest.approx(6 / 128)
    assert quality.paired([0.0, 0.0])["wilcoxon_p"] is None
    assert quality.paired([1.0]) == {"mean": 1.0, "ci95": None, "n": 1, "wilcoxon_p": None}  # no spread from one photo
    assert quality.paired([1.0, 1.0, 1.0])["ci95"] == [1.0, 1.0]


def test_quality_paired_vs_wiener_matches_photos_by_name():
    quality = bench("quality")

    def row(name, kind, psnrs, ssims):
        return {"name": name, "kind": kind, "per_image": [
            {"image": im, "sigma": 1.0, "psnr": p, "ssim": s}
            for im, p, s in zip(("a", "b", "c"), psnrs, ssims, strict=True)]}

    results = [row("blurred input", "reference", [20, 21, 22], [0.5, 0.5, 0.5]),
               row(quality.WIENER, "classical", [30, 31, 32], [0.8, 0.8, 0.8]),
               row("model", "model", [31, 30.5, 33], [0.9, 0.7, 0.81])]
    results[2]["per_image"].reverse()  # the model's photos in another order: matched by name, not position
    got = quality.paired_vs(results, quality.WIENER)
    assert list(got) == ["model"]
    st = got["model"]["1"]
    assert st["mean"] == pytest.approx((1 - 0.5 + 1) / 3)
    assert (st["ahead_psnr"], st["ahead_ssim"], st["n"]) == (2, 2, 3)
    assert quality.paired_vs(results[:1], quality.WIENER) == {}
    table = quality.format_paired(got)
    assert "| model | +0.50 [" in table and "2/3, 2/3; " in table


def test_quality_border_crop_cuts_blurred_and_sharp(tmp_path, astronaut):
    """``--border crop``: every method gets the blurred photo less ceil(3 * max sigma) px on each side,
    scored against the sharp photo cut the same way; the JSON says so and has the paired table."""
    import json

    from blurkit.classical import blur_gaussian, wiener

    quality = bench("quality")
    photos = _folder(tmp_path / "photos", {"a.png": astronaut[:60, :70]})
    out = tmp_path / "q.json"
    quality.main(["--data", str(photos), "--no-presets", "--sigmas", "1", "2", "--border", "crop",
                  "--json", str(out)])
    res = json.loads(out.read_text())
    assert res["protocol"]["border"] == {"mode": "crop", "cut_px": 6}
    wiener_row = next(m for m in res["methods"] if m["name"] == quality.WIENER)
    case = next(c for c in wiener_row["per_image"] if c["sigma"] == 2.0)
    sharp = astronaut[:60, :70].astype(np.float32) / 255
    b, k = blur_gaussian(sharp, 2.0, seed=0)
    balance = wiener_row["params"]["2"]["balance"]
    from blurkit.metrics import psnr
    expected = psnr(sharp[6:-6, 6:-6], wiener(b[6:-6, 6:-6], k, balance=balance))
    assert case["psnr"] == pytest.approx(expected, abs=1e-9)
    assert psnr(sharp, wiener(b, k, balance=balance)) != pytest.approx(expected, abs=1e-3)
    assert set(res["paired_vs_wiener"]) == {"unsharp mask (tuned on these photos)",
                                            "Richardson-Lucy, true kernel (30 it.)"}
    assert set(wiener_row["seconds_per_megapixel_by_sigma"]) == {"1", "2"}
    with pytest.raises(SystemExit, match="too small for --border crop"):
        tiny = _folder(tmp_path / "tiny", {"t.png": astronaut[:12, :40]})
        quality.main(["--data", str(tiny), "--no-presets", "--sigmas", "1", "2", "--border", "crop",
                      "--json", str(out)])
