"""Registry behaviour: registration, lookup errors, duplicates, lazy built-ins, find."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from blurkit.blurs import GaussianBlur
from blurkit.registry import (
    BLURS,
    METRICS,
    MODELS,
    DuplicateComponentError,
    Registry,
    UnknownComponentError,
)


@pytest.fixture
def reg() -> Registry:
    return Registry("things")


def test_register_decorator_get_create_list(reg):
    @reg.register("alpha")
    class Alpha:
        def __init__(self, x=1):
            self.x = x

    @reg.register()
    def beta():
        return "b"

    assert reg.get("alpha") is Alpha
    assert reg.create("alpha", x=5).x == 5
    assert reg.get("beta")() == "b"
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("a*") == ["alpha"]
    assert "alpha" in reg and "gamma" not in reg and 3 not in reg
    assert len(reg) == 2


def test_unknown_name_lists_available_and_closest(reg):
    reg.register("gaussian", object())
    reg.register("motion", object())
    with pytest.raises(UnknownComponentError) as err:
        reg.get("gausian")
    msg = str(err.value)
    assert msg == "unknown thing 'gausian'; did you mean 'gaussian'? Available: gaussian, motion"
    assert isinstance(err.value, KeyError)
    with pytest.raises(UnknownComponentError) as err:
        reg.get("zzz")  # nothing close: the sentence still ends before the list
    assert str(err.value) == "unknown thing 'zzz'. Available: gaussian, motion"


def test_messages_name_one_component_in_the_singular():
    """A new user read `unknown models 'unett'` and `blurs 'gaussian' takes no option 'sigm'`: the registry's
    plural title stood for one component. The messages say `model`, `blur`, `metric` (``Registry.noun``)."""
    assert (BLURS.noun, MODELS.noun, Registry("things").noun) == ("blur", "model", "thing")
    assert Registry("data", noun="dataset").noun == "dataset"
    with pytest.raises(UnknownComponentError, match=r"^unknown model 'unett'; did you mean 'unet'\? Available: "):
        MODELS.get("unett")
    with pytest.raises(TypeError, match=r"^blur 'gaussian' takes no option 'sigm'; its options: sigma, "):
        BLURS.create("gaussian", sigm=2)
    reg = Registry("things")
    reg.register("f", len)
    with pytest.raises(DuplicateComponentError, match=r"^thing 'f' is already registered"):
        reg.register("f", max)
    reg.register("n", 3)
    with pytest.raises(TypeError, match=r"^thing 'n' is not callable"):
        reg.create("n")


def test_duplicate_raises_unless_override(reg):
    def one():
        return 1

    def two():
        return 2

    reg.register("f", one)
    reg.register("f", one)  # the same object again is harmless
    with pytest.raises(DuplicateComponentError, match="already registered.*override=True"):
        reg.register("f", two)
    reg.register("f", two, override=True)
    assert reg.get("f")() == 2


def test_a_plugin_whose_name_another_plugin_took_is_skipped_with_a_warning(reg, recwarn):
    """Two plugins of one name: the first keeps it, and the one left out says so (its users would otherwise
    get the other component without a word). A name the user registered wins without a warning."""
    from importlib import metadata

    from blurkit.registry import PluginWarning

    reg.register("g", json.dumps, source="plugin other-dist 1.0")
    with pytest.warns(PluginWarning, match=r"plugin json:loads provides thing 'g', which plugin other-dist 1\.0 "
                                           r"\(json\) provides already; that one is kept"):
        reg._load_entry_point(metadata.EntryPoint(name="g", value="json:loads", group="things"))
    assert reg.get("g") is json.dumps
    reg.register("f", json.loads)
    reg._load_entry_point(metadata.EntryPoint(name="f", value="json:dumps", group="things"))
    assert reg.get("f") is json.loads and not recwarn.list


@pytest.mark.parametrize("plugins_first", [True, False], ids=["plugins-loaded-first", "plugins-loaded-after"])
def test_registering_a_plugins_name_yourself_wins_silently_in_either_order(plugins_first, monkeypatch, recwarn):
    """Regression: after a listing had loaded the plugins, taking a plugin's name raised
    DuplicateComponentError; before it, the same registration won."""
    from importlib import metadata

    reg = Registry("things", group="blurkit.test-things")
    ep = metadata.EntryPoint(name="mae", value="json:loads", group="blurkit.test-things")
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [ep] if group == reg.group else [])

    def mae(a, b):
        return 0.0

    if plugins_first:
        assert reg.get("mae") is json.loads and reg.find("mae")["source"] == "plugin json:loads"
    reg.register("mae", mae)
    assert reg.list() == ["mae"]
    reg.reload_plugins()  # a later scan keeps the user's component too
    assert reg.list() == ["mae"] and reg.get("mae") is mae and reg.find("mae")["source"] == "user"
    assert not recwarn.list
    with pytest.raises(DuplicateComponentError, match="already registered"):  # the user's own entry is guarded
        reg.register("mae", json.dumps)
    reg.register("other", json.dumps, source="plugin other-dist 1.0")
    with pytest.raises(DuplicateComponentError, match="already registered"):  # plugin over plugin still raises
        reg.register("other", json.loads, source="plugin more-dist 1.0")


def test_find_reports_module_file_and_line(reg):
    def comp():
        return None

    reg.register("comp", comp)
    where = reg.find("comp")
    assert where["name"] == "comp"
    assert where["module"] == __name__
    assert where["file"].endswith("test_registry.py")
    assert isinstance(where["line"], int)
    assert where["source"] == "user"


def test_builtins_registered_lazily_and_sourced():
    assert {"gaussian", "motion", "average", "defocus"} <= set(BLURS.list())
    assert {"mse", "psnr", "ssim", "accuracy", "channel_accuracy"} <= set(METRICS.list())
    assert {"autoencoder", "unet", "nafnet"} <= set(MODELS.list())
    assert BLURS.find("gaussian")["source"] == "built-in"
    assert BLURS.find("gaussian")["module"] == "blurkit.blurs.gaussian"


def test_empty_name_rejected(reg):
    with pytest.raises(ValueError, match="non-empty string name"):
        reg.register("", object())


def test_import_is_light_and_listing_needs_no_tensorflow():
    code = (
        "import sys, blurkit\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'import blurkit loaded TF'\n"
        "assert 'cv2' not in sys.modules, 'import blurkit loaded OpenCV'\n"
        "from blurkit.registry import BLURS, MODELS, METRICS\n"
        "BLURS.list(); MODELS.list(); METRICS.list()\n"
        "assert 'tensorflow' not in sys.modules, 'listing the registries loaded TF'\n"
        # the sub-packages are attributes after `import blurkit` alone, as the docs write them
        "assert callable(blurkit.metrics.keras_metric) and callable(blurkit.models.unet)\n"
        "assert callable(blurkit.data.io.read_image) and callable(blurkit.classical.wiener)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'a sub-package loaded TF'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_list_presets_names_each_shipped_preset_without_tensorflow():
    code = (
        "import json, sys\n"
        "from blurkit.cli.main import main\n"
        "assert main(['list', 'presets']) == 0\n"
        "assert main(['list', '--json']) == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'listing presets loaded TF'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    from blurkit.presets import DEFAULT_PRESET, list_presets

    table, _, listing = out.partition("[")
    lines = table.splitlines()
    assert lines[0] == "presets:" and len(lines) == 1 + len(list_presets())
    for name, line in zip(list_presets(), lines[1:], strict=True):
        assert line.split()[0] == name and "shipped" in line
        assert ("shipped, default" in line) == (name == DEFAULT_PRESET)
    rows = [r for r in json.loads("[" + listing) if r["kind"] == "presets"]
    assert [r["name"] for r in rows] == list_presets()
    assert {r["kind"] for r in json.loads("[" + listing)} == {"blurs", "models", "metrics", "presets"}
    for r in rows:
        assert r["source"] == "shipped" and r["default"] == (r["name"] == DEFAULT_PRESET)
        assert r["summary"] and "\n" not in r["summary"] and r["object"].endswith(f"{r['name']}.keras")


def test_every_preset_has_a_model_card():
    from blurkit.presets import list_presets

    docs = Path(__file__).resolve().parents[1] / "docs"
    for name in list_presets():
        card = docs / f"model-card-{name}.md"
        assert card.is_file(), f"preset {name} has no model card ({card})"
        assert f"`{name}`" in card.read_text(encoding="utf-8").splitlines()[0]


def test_preset_summary_comes_from_the_metadata(tmp_path, monkeypatch, capsys):
    import blurkit.presets as presets
    from blurkit.cli.main import main

    if presets.DEFAULT_PRESET in presets.list_presets():
        summary = presets.describe_preset(presets.DEFAULT_PRESET)["summary"]
        assert summary == "wiener_unet model for gaussian blur (sigma 0.3-3.5)"
    meta = {"model": {"name": "wiener_unet"}, "blur": {"name": "gaussian", "config": {"sigma": [0.3, 3.5]}},
            "training": {"joint": {"noise": 0.02, "jpeg": 50}}}
    assert presets._summary(meta) == ("wiener_unet model for gaussian blur (sigma 0.3-3.5), trained on inputs with "
                                      "sensor noise up to 0.02 and JPEG quality 50-95 too")
    meta["training"]["joint"] = {"noise": 0.0, "jpeg": None}  # recorded by a clean run
    assert presets._summary(meta) == "wiener_unet model for gaussian blur (sigma 0.3-3.5)"
    (tmp_path / "broken-v0.keras").write_text("not a model")
    monkeypatch.setattr(presets, "_HERE", tmp_path)
    assert main(["list", "presets", "--pattern", "broken*"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  broken-v0  shipped  unreadable preset file: .*not a \.keras model file", out, re.M)
    assert main(["list", "presets", "--pattern", "none*"]) == 0
    assert capsys.readouterr().out == "presets:\n  (none)\n"


def test_a_plugin_of_the_wrong_kind_or_that_exits_is_skipped_with_a_warning(tmp_path, monkeypatch):
    """A function declared as a blur, a number as a metric and a module calling sys.exit() at import are each
    skipped with a PluginWarning naming the entry point; before, the first two were listed and failed later
    ("'function' object has no attribute 'from_config'"), and the last ended `blurkit list`."""
    from importlib import metadata

    from blurkit.registry import PluginWarning, _check_blur, _check_callable

    (tmp_path / "bk_kinds.py").write_text(
        "from blurkit.blurs import Blur\nNUMBER = 3\n\ndef function(image, seed=None):\n    return image\n\n\n"
        "class Fine(Blur):\n    pass\n"
    )
    (tmp_path / "bk_exits.py").write_text("import sys\nsys.exit('bk_exits: cannot run here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    blurs = Registry("blurs", group="blurkit.test-blurs", check=_check_blur)
    metrics = Registry("metrics", group="blurkit.test-metrics", check=_check_callable)
    points = {
        blurs.group: [metadata.EntryPoint("func", "bk_kinds:function", blurs.group),
                      metadata.EntryPoint("fine", "bk_kinds:Fine", blurs.group),
                      metadata.EntryPoint("exits", "bk_exits:Nothing", blurs.group)],
        metrics.group: [metadata.EntryPoint("number", "bk_kinds:NUMBER", metrics.group),
                        metadata.EntryPoint("ok", "bk_kinds:function", metrics.group)],
    }
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: points.get(group, []))
    with pytest.warns(PluginWarning) as caught:
        assert blurs.list() == ["fine"]
        assert metrics.list() == ["ok"]
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "blurkit could not load plugin blur 'exits' (bk_exits:Nothing) from bk_exits:Nothing: "
        "SystemExit: bk_exits: cannot run here",
        "blurkit could not load plugin blur 'func' (bk_kinds:function) from bk_kinds:function: "
        "not a subclass of blurkit.blurs.Blur (function function)",
        "blurkit could not load plugin metric 'number' (bk_kinds:NUMBER) from bk_kinds:NUMBER: "
        "not callable (int 3)",
    ], messages


def test_an_unknown_option_is_named_with_the_options_the_component_takes():
    """`--blur-option foo=1` said "Blur.__init__() got an unexpected keyword argument 'foo'" (the base class, and
    no word of what the blur takes); a blur's options are its own and its base class's, as **kwargs passes them.
    A component that keeps **kwargs for itself is called as it is (its own error, if any, unchanged)."""
    from blurkit.blurs import Blur

    with pytest.raises(TypeError, match=r"^blur 'motion' takes no options 'bar', 'foo'; its options: length, "
                                        r"angle, border, noise, shot, quantize, jpeg, seed$"):
        BLURS.create("motion", foo=1, bar=2, length=3)
    with pytest.raises(TypeError, match=r"^model 'unet' takes no option 'wdth'; its options: channels, width, "):
        MODELS.create("unet", wdth=8)
    reg = Registry("things")
    reg.register("loose", lambda **kwargs: kwargs)  # options it cannot tell: passed on, unchecked
    assert reg.create("loose", anything=1) == {"anything": 1}

    class Taps(Blur):  # keeps some of its **kwargs itself, passes the rest on
        name = "taps"

        def __init__(self, width=3, **opts):
            self.taps = {k: opts.pop(k) for k in list(opts) if k.startswith("tap_")}
            super().__init__(**opts)

        def sample_kernel(self, rng):
            return {}

        def kernel(self, params):
            return np.ones((1, 1))

    reg.register("taps", Taps)
    assert reg.create("taps", tap_a=1, noise=0.01).taps == {"tap_a": 1}
    with pytest.raises(TypeError, match=r"^thing 'taps' takes no option 'nope'; its options: width, border, "):
        reg.create("taps", nope=1)
    reg.register("fixed", lambda: 1)
    with pytest.raises(TypeError, match=r"^thing 'fixed' takes no option 'foo'; its options: \(none\)$"):
        reg.create("fixed", foo=1)


def test_a_blur_registered_under_another_name_than_its_own_is_refused(tmp_path, monkeypatch):
    """A saved model records a blur's ``name`` and is rebuilt from the blur registered under it: an entry point
    ``streak = ...:StreakClone`` whose class said ``name = "gaussian"`` was accepted, and a model trained with
    it came back with the built-in Gaussian blur, silently. Entry points and registrations alike now refuse it."""
    from importlib import metadata

    from blurkit.registry import PluginWarning, _check_blur

    (tmp_path / "bk_names.py").write_text(
        "from blurkit.blurs import GaussianBlur\n\n"
        "class Clone(GaussianBlur):\n    name = 'gaussian'\n\n"
        "class Streak(GaussianBlur):\n    name = 'streak'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    blurs = Registry("blurs", group="blurkit.test-names", check=_check_blur, name_attr="name")
    points = [metadata.EntryPoint("clone", "bk_names:Clone", blurs.group),
              metadata.EntryPoint("streak", "bk_names:Streak", blurs.group)]
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: points if group == blurs.group else [])
    with pytest.warns(PluginWarning, match=r"plugin blur 'clone' \(bk_names:Clone\) .*: its name is 'gaussian' "
                                           r"\(class Clone\); it must be the name it is registered under"):
        assert blurs.list() == ["streak"]
    from bk_names import Clone

    with pytest.raises(ValueError, match=r"^blur 'copy': its name is 'gaussian'"):
        blurs.register("copy", Clone)
    assert blurs.register(None, Clone, override=True) is Clone  # no name given: its own
    assert blurs.get("gaussian") is Clone
    assert BLURS.name_attr == "name"


def test_registration_checks_the_kind_as_entry_points_do(reg):
    """``register_blur("fblur")(lambda img: img)`` and ``register_metric("m", 3)`` were accepted, and failed only
    when used (``<lambda>() missing 1 required positional argument``); an entry point of either is refused with
    a reason. The decorator now checks the same."""
    from blurkit.registry import _check_blur, _check_callable

    blurs = Registry("blurs", check=_check_blur, name_attr="name")
    metrics = Registry("metrics", check=_check_callable)
    with pytest.raises(TypeError, match=r"^blur 'fblur': not a subclass of blurkit.blurs.Blur \(function "):
        blurs.register("fblur")(lambda image: image)
    with pytest.raises(TypeError, match=r"^metric 'three': not callable \(int 3\)$"):
        metrics.register("three", 3)
    assert blurs.list() == [] and metrics.list() == []


def test_the_decorator_works_without_parentheses(reg):
    """``@register_metric`` (no call) made the function a lambda of the registry and registered nothing; it
    now registers it under its own name, as ``@register_metric()`` does."""
    from blurkit.blurs import GaussianBlur

    @reg.register
    def sharpness(y_true, y_pred):
        return 1.0

    assert sharpness(0, 0) == 1.0 and reg.get("sharpness") is sharpness
    blurs = Registry("blurs", name_attr="name")

    @blurs.register
    class Wide(GaussianBlur):
        name = "wide"

    assert blurs.list() == ["wide"] and blurs.get("wide") is Wide


def _fake_dist(site: Path, name: str, entry_points: dict[str, dict[str, str]]):
    """A distribution ``name`` 0.1 with ``entry_points``, written into ``site`` (its ``*.dist-info`` only)."""
    from importlib import metadata

    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items()))
    (dist,) = metadata.distributions(path=[str(site)])
    return dist


def test_a_plugin_that_failed_to_load_is_named_when_asked_for(tmp_path, monkeypatch):
    """An installed plugin whose module fails to import gave a PluginWarning once and was then "unknown metric
    'bk_mymetric'. Available: ..." (the reason lost where warnings are filtered, or shown already). The
    registry remembers why, and says so."""
    from importlib import metadata

    from blurkit.registry import PluginWarning

    (tmp_path / "bk_needs_more.py").write_text("import bk_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = _fake_dist(tmp_path / "site", "bk-fail", {"blurkit.test-fail": {"bk_mymetric": "bk_needs_more:m"}})
    metrics = Registry("metrics", group="blurkit.test-fail", noun="metric")
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group=None: [ep for ep in dist.entry_points if ep.group == group])
    with warnings_ignored(PluginWarning):
        assert metrics.list() == []
    failed = (r"^metric 'bk_mymetric' is provided by plugin bk-fail 0\.1 \(bk_needs_more:m\) but could not be "
              r"loaded: ModuleNotFoundError: No module named 'bk_not_installed_xyz'$")
    for _ in range(2):  # every time, not only the first
        with pytest.raises(UnknownComponentError, match=failed):
            metrics.get("bk_mymetric")
    assert "bk_mymetric" not in metrics
    (failure,) = metrics.failures()
    assert (failure.name, failure.source, failure.value) == ("bk_mymetric", "plugin bk-fail 0.1", "bk_needs_more:m")
    assert failure.reason == "ModuleNotFoundError: No module named 'bk_not_installed_xyz'"
    assert metrics.failures("other*") == []
    with pytest.raises(UnknownComponentError, match=r"^unknown metric 'nothing'\. Available: \(none\)$"):
        metrics.get("nothing")  # other names: as before
    (tmp_path / "bk_not_installed_xyz.py").write_text("")  # the dependency installed, and the plugins rescanned
    metrics.reload_plugins()
    with pytest.warns(PluginWarning), pytest.raises(UnknownComponentError, match="AttributeError"):
        metrics.get("bk_mymetric")  # its module imports now; it lacks the attribute
    assert len(metrics.failures()) == 1
    metrics.register("bk_mymetric", len)  # the user's own, under the name: no longer missing
    assert metrics.get("bk_mymetric") is len and metrics.failures() == []


@contextlib.contextmanager
def warnings_ignored(category):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category)
        yield


def test_list_json_reports_plugins_that_failed_to_load_when_asked(tmp_path, monkeypatch, capsys):
    """`blurkit list --json` left broken plugins out (they were only warnings on stderr). With --failed they are
    rows of kind "failed", so a reader taking every "blurs" row as a usable blur is not misled; without it, `list
    blurs --json` holds blurs only, as it always did (it had gained the "failed" rows)."""
    from importlib import metadata

    from blurkit.cli.main import main

    (tmp_path / "bk_broken_blur.py").write_text("raise ImportError('bk_broken_blur needs bk_nothing')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    dist = _fake_dist(tmp_path / "site", "bk-broken", {"blurkit.blurs": {"bk_streak": "bk_broken_blur:Streak"}})
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [
        *real(group=group), *(ep for ep in dist.entry_points if ep.group == group)])
    BLURS.reload_plugins()
    try:
        with warnings_ignored(UserWarning):
            assert main(["list", "blurs", "--json"]) == 0
            rows = json.loads(capsys.readouterr().out)
            assert {r["kind"] for r in rows} == {"blurs"} and "bk_streak" not in [r["name"] for r in rows]
            assert main(["list", "blurs", "--json", "--failed"]) == 0
            rows = json.loads(capsys.readouterr().out)
            assert main(["list", "blurs", "--failed"]) == 0
            table = capsys.readouterr().out
        assert {r["kind"] for r in rows} == {"blurs", "failed"}
        assert "bk_streak" not in [r["name"] for r in rows if r["kind"] == "blurs"]
        assert [r for r in rows if r["kind"] == "failed"] == [{
            "kind": "failed", "of": "blurs", "name": "bk_streak", "source": "plugin bk-broken 0.1",
            "object": "bk_broken_blur:Streak", "summary": "could not be loaded: ImportError: bk_broken_blur needs "
            "bk_nothing", "error": "ImportError: bk_broken_blur needs bk_nothing"}]
        assert table.split("failed:\n")[1] == ("  bk_streak  blurs, plugin bk-broken 0.1 (bk_broken_blur:Streak): "
                                               "could not be loaded: ImportError: bk_broken_blur needs bk_nothing\n")
    finally:
        monkeypatch.undo()
        BLURS.reload_plugins()
        sys.modules.pop("bk_broken_blur", None)


def test_an_empty_name_is_refused_not_replaced_by_the_class_name():
    """``register_blur("", Cls)`` registered ``Cls.name`` silently; an empty name is refused as for any object."""
    blurs = Registry("blurs", name_attr="name")

    class Named(GaussianBlur):
        name = "named"

    with pytest.raises(ValueError, match="non-empty string name"):
        blurs.register("", Named)
    assert blurs.list() == []
    assert blurs.register(None, Named) is Named and blurs.list() == ["named"]  # no name given: its own
