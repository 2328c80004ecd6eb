"""Where a saved model's blur came from, and what blurkit says when a component cannot be used.

A saved file records its blur by name and where the blur came from (``components.blur``); loading it where
another blur holds that name must not rebuild that one silently. Plugins here are fake distributions written
into a temporary folder (a ``*.dist-info`` with ``METADATA`` and ``entry_points.txt``) and put on
``sys.path``, so ``importlib.metadata`` finds them as it finds installed ones; nothing is pip-installed.
"""

from __future__ import annotations

import json
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.blurs import Blur, GaussianBlur
from blurkit.deblurrer import ModelFileError
from blurkit.registry import BLURS, METRICS, MODELS, PluginWarning
from helpers import rewrite_model

TINY = {"width": 4, "depth": 1, "blocks": 1}
FAST = {"patch_size": 32, "batch_size": 2, "patches_per_image": 2}
PHOTOS = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A tiny U-Net with the built-in Gaussian blur, saved."""
    d = Deblurrer(model="unet", model_options=TINY, blur="gaussian", **FAST)
    return d.save(tmp_path_factory.mktemp("saved") / "builtin.keras")


@pytest.fixture
def fake_plugin(tmp_path):
    """Install (on ``sys.path``) a fake distribution ``bk-fake 0.1``: ``install(modules, entry_points)`` writes
    the modules and the dist-info, and rescans the registries; everything is undone afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    modules: list[str] = []

    def install(sources: dict[str, str], entry_points: dict[str, dict[str, str]]) -> None:
        for name, code in sources.items():
            (site / f"{name}.py").write_text(textwrap.dedent(code))
            modules.append(name)
        info = site / "bk_fake-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bk-fake\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in entry_points.items()))
        sys.path.insert(0, str(site))
        for registry in (BLURS, MODELS, METRICS):
            registry.reload_plugins()

    try:
        yield install
    finally:
        if str(site) in sys.path:
            sys.path.remove(str(site))
        for name in modules:
            sys.modules.pop(name, None)
        for registry in (BLURS, MODELS, METRICS):
            registry.reload_plugins()


HORIZONTAL = """
    import numpy as np
    from blurkit.blurs.base import Blur

    class Horizontal(Blur):
        name = "horizontal"
        version = 1

        def sample_kernel(self, rng):
            return {}

        def kernel(self, params):
            return np.full((1, 3), 1 / 3)
"""


# -- finding 1: a blur is never rebuilt from another blur of its name --------------------------------------
class MyMotion(Blur):
    """Not registered; its name is a built-in's, and the built-in can build its config (the base options)."""

    name = "motion"

    def sample_kernel(self, rng):
        return {}

    def kernel(self, params):
        return np.full((1, 5), 0.2)


def test_an_unregistered_blur_with_a_builtins_name_is_recorded_as_what_it_is(saved, tmp_path):
    """An unregistered blur named like a built-in was recorded as "built-in" and came back as the built-in
    MotionBlur, silently. It is recorded as its module's (with a warning at save), and loads as a blur that
    cannot be rebuilt, naming both sources; the model still restores photos."""
    d = Deblurrer.load(saved)
    d.blur = MyMotion(noise=0.01)
    with pytest.warns(UserWarning, match=rf"its blur 'motion' is {__name__}\.MyMotion \(user module {__name__}\), "
                                         r"not the blur registered under that name \(built-in\)"):
        path = d.save(tmp_path / "mymotion.keras")
    assert Deblurrer.read_metadata(path)["components"]["blur"] == f"user module {__name__}"
    loaded = Deblurrer.load(path)
    assert repr(loaded.blur) == "<blur 'motion', cannot be rebuilt>"
    assert loaded.predict(PHOTOS[0]).shape == PHOTOS[0].shape
    with pytest.raises(ModelFileError, match=rf"mymotion\.keras: its blur generator 'motion' \(registered by user "
                                             rf"module {__name__}: .*\) differs from the blur installed under that "
                                             r"name here \(built-in\)"):
        loaded.evaluate(PHOTOS)
    # saved again, it keeps what it was
    assert Deblurrer.read_metadata(loaded.save(tmp_path / "again.keras"))["components"]["blur"] == \
        f"user module {__name__}"


def test_your_own_blur_over_a_builtin_is_not_rebuilt_as_the_builtin(saved, tmp_path):
    """``register_blur(Mine, override=True)`` under ``gaussian``, saved, then loaded where the built-in is back
    (a fresh process): it loaded as the built-in Gaussian. Where the user's class is registered again before
    loading, it is rebuilt with it."""
    original = BLURS.entry("gaussian")

    class Boxy(GaussianBlur):
        name = "gaussian"

    try:
        BLURS.register("gaussian", Boxy, override=True)
        d = Deblurrer(model="unet", model_options=TINY, blur="gaussian", **FAST)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # the registered blur: no warning
            path = d.save(tmp_path / "boxy.keras")
        assert Deblurrer.read_metadata(path)["components"]["blur"] == f"user module {__name__}"
        assert type(Deblurrer.load(path).blur) is Boxy
    finally:
        BLURS.register("gaussian", original.obj, override=True, source=original.source)
    loaded = Deblurrer.load(path)
    assert repr(loaded.blur) == "<blur 'gaussian', cannot be rebuilt>"
    with pytest.raises(ModelFileError, match=r"differs from the blur installed under that name here \(built-in\)"):
        loaded.fit(PHOTOS, epochs=1, steps_per_epoch=1, verbose=0)


def test_builtin_files_and_files_without_provenance_load_silently(saved, tmp_path):
    """What must not change: a built-in recorded as "built-in", and a file of an older blurkit that records no
    provenance, rebuild the installed blur without a word."""
    old = rewrite_model(saved, tmp_path / "old.keras",
                        meta=lambda m: {k: v for k, v in m.items() if k != "components"})
    odd = rewrite_model(saved, tmp_path / "odd.keras",
                        meta=lambda m: m.update(components={"blur": "something else"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for path in (saved, old, odd):
            assert type(Deblurrer.load(path).blur) is GaussianBlur, path


def test_a_file_from_another_plugin_is_not_rebuilt_with_the_installed_one(saved, tmp_path, fake_plugin):
    """A file whose ``horizontal`` came from plugin bk-other loaded with bk-fake's ``horizontal`` (which could
    build its config). It now cannot be rebuilt, naming both; a newer or older version of the same plugin
    still rebuilds it."""
    fake_plugin({"bk_fake_h": HORIZONTAL}, {"blurkit.blurs": {"horizontal": "bk_fake_h:Horizontal"}})

    def horizontal(source):
        return lambda m: m.update(blur={"name": "horizontal", "version": 1, "config": {}},
                            components={"model": "built-in", "blur": source})

    other = Deblurrer.load(rewrite_model(saved, tmp_path / "other.keras", meta=horizontal("plugin bk-other 1.0")))
    assert repr(other.blur) == "<blur 'horizontal', cannot be rebuilt>"
    assert "(from plugin bk-other 1.0: pip install bk-other) differs from the blur installed under that name " \
           "here (plugin bk-fake 0.1)" in other.blur.missing
    upgraded = Deblurrer.load(rewrite_model(saved, tmp_path / "older.keras",
                                            meta=horizontal("plugin bk_fake 0.0.9")))
    assert type(upgraded.blur).__module__ == "bk_fake_h"


# -- finding 2: a plugin that is installed but fails to load -------------------------------------------------
def test_a_file_whose_plugin_is_installed_but_broken_says_so(saved, tmp_path, fake_plugin):
    """It said "(from plugin bk-fake 0.1: pip install bk-fake) is not installed", of an installed package, and
    not why it failed."""
    fake_plugin({"bk_fake_broken": "raise ImportError('bk_fake_broken needs not_here')\n"},
                {"blurkit.blurs": {"horizontal": "bk_fake_broken:Horizontal"}})
    path = rewrite_model(saved, tmp_path / "broken.keras", meta=lambda m: m.update(
        blur={"name": "horizontal", "version": 1, "config": {}},
        components={"model": "built-in", "blur": "plugin bk-fake 0.1"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        d = Deblurrer.load(path)
    assert "pip install" not in d.blur.missing
    assert ("'horizontal' (from plugin bk-fake 0.1, installed here) is installed but could not be loaded (plugin "
            "bk-fake 0.1: ImportError: bk_fake_broken needs not_here)") in d.blur.missing


# -- finding 3: a plugin's blur saved with a newer version -----------------------------------------------------
def test_a_newer_plugin_blur_names_the_plugin_to_upgrade(saved, tmp_path, fake_plugin):
    """It said "this blurkit has version 1; upgrade blurkit", and "pip install bk-fake" of an installed one."""
    from blurkit.blurs import deserialize_blur

    fake_plugin({"bk_fake_h": HORIZONTAL}, {"blurkit.blurs": {"horizontal": "bk_fake_h:Horizontal"}})
    with pytest.raises(ValueError, match=r"^blur 'horizontal' was saved with version 2, but bk-fake 0\.1 provides "
                                         r"version 1; upgrade bk-fake to load it \(pip install -U bk-fake\)$"):
        deserialize_blur({"name": "horizontal", "version": 2, "config": {}})
    with pytest.raises(ValueError, match=r"but this blurkit has version 1; upgrade blurkit to load it$"):
        deserialize_blur({"name": "gaussian", "version": 2, "config": {}})
    path = rewrite_model(saved, tmp_path / "v2.keras", meta=lambda m: m.update(
        blur={"name": "horizontal", "version": 2, "config": {}},
        components={"model": "built-in", "blur": "plugin bk-fake 0.1"}))
    missing = Deblurrer.load(path).blur.missing
    assert "pip install bk-fake" not in missing and "upgrade blurkit" not in missing
    assert "(from plugin bk-fake 0.1, installed here) cannot be rebuilt" in missing
    assert "upgrade bk-fake to load it (pip install -U bk-fake)" in missing


# -- finding 4: a builder's own error names the model and the options -----------------------------------------
def _fragile(channels=3, width=4):
    if not isinstance(width, int):
        return width <= 3  # the builder's own TypeError: '<=' not supported between 'str' and 'int'
    if width > 8:
        raise RuntimeError(f"fragile: width {width} is too wide")
    from blurkit.models.unet import unet

    return unet(channels=channels, width=width, depth=1, blocks=1)


@pytest.fixture
def fragile():
    MODELS.register("test-fragile", _fragile)
    try:
        yield "test-fragile"
    finally:
        MODELS.unregister("test-fragile")


def test_a_builder_error_names_the_model_and_its_options(fragile):
    """``'<=' not supported between instances of 'str' and 'int'`` named neither the model nor the option;
    the error keeps its type and is chained to the builder's own."""
    with pytest.raises(TypeError, match=r"^model 'test-fragile' with options \{'width': 'abc', 'channels': 3\} "
                                        r"failed to build: TypeError: '<=' not supported") as info:
        Deblurrer(model=fragile, model_options={"width": "abc"})
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(RuntimeError, match=r"^model 'test-fragile' with options \{'width': 16, 'channels': 3\} "
                                           r"failed to build: RuntimeError: fragile: width 16 is too wide$"):
        Deblurrer(model=fragile, model_options={"width": 16})
    with pytest.raises(TypeError, match=r"^model 'test-fragile' takes no option 'wdth'; its options: channels, "
                                        r"width$"):  # an unknown option: as before
        Deblurrer(model=fragile, model_options={"wdth": 16})


def test_cli_train_gives_one_line_for_any_builder_error(fragile, tmp_path, capsys):
    """A builder's RuntimeError for an option value ended ``blurkit train`` in a traceback; the context named
    the blur's options but not the model's."""
    from blurkit.cli.main import main
    from blurkit.data.io import write_image

    (tmp_path / "photos").mkdir()
    for i, photo in enumerate(PHOTOS):
        write_image(tmp_path / "photos" / f"{i}.png", photo)
    for value, kind in (("16", "RuntimeError"), ("abc", "TypeError")):
        capsys.readouterr()
        argv = ["train", str(tmp_path / "photos"), "--model", fragile, "--model-option", f"width={value}",
                "-o", str(tmp_path / "m.keras")]
        assert main(argv) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1, err
        assert err[0].startswith("blurkit train: error: model 'test-fragile' with options ")
        assert f"failed to build: {kind}: " in err[0]
        shown = repr(16 if value == "16" else value)
        assert err[0].endswith(f"(--model test-fragile with options {{'width': {shown}}}, --blur gaussian)"), err[0]


# -- finding 5: the remedy fits the caller ------------------------------------------------------------------
def test_the_remedy_for_a_missing_blur_fits_the_caller(saved, tmp_path):
    """fit and ``train --init`` said "give evaluate another blur"; "import it first" did not say that it must
    come before loading the file, nor that the command line cannot."""
    from blurkit.cli import train as train_cmd
    from blurkit.cli.main import build_parser

    path = rewrite_model(saved, tmp_path / "user.keras", meta=lambda m: m.update(
        blur={"name": "test-gone", "version": 1, "config": {}},
        components={"model": "built-in", "blur": "user module my_blurs"}))
    d = Deblurrer.load(path)
    hint = ("(registered by user module my_blurs: import my_blurs before loading the file, in Python; the command "
            "line cannot import it) is not installed")
    with pytest.raises(ModelFileError) as info:
        d.fit(PHOTOS, epochs=1, steps_per_epoch=1, verbose=0)
    assert hint in str(info.value)
    assert str(info.value).endswith("(install it, or train with another blur: assign it to the Deblurrer's blur "
                                    "before fit (d.blur = blurkit.BLURS.create(NAME, ...)))")
    with pytest.raises(ModelFileError, match=r"\(install it, or give evaluate another blur: blur= in Python, "
                                             r"--blur on the command line\)$"):
        d.evaluate(PHOTOS)
    args = build_parser().parse_args(["train", str(tmp_path), "--init", str(path)])
    with pytest.raises(ModelFileError, match=r"\(install it, or train with another blur: --blur NAME\)$"):
        train_cmd._fine_tuned(args, {})


# -- review of the provenance change ------------------------------------------------------------------------
STREAK = """
import numpy as np
from blurkit.blurs.base import Blur

class Streak(Blur):
    name = "test-streak"

    def sample_kernel(self, rng):
        return {}

    def kernel(self, params):
        return np.full((1, 3), 1 / 3)
"""


def _user_blur(module: str, *, register: bool = True, name: str = "test-streak") -> type:
    """The class ``Streak`` (blur ``name``) defined in a fresh module named ``module``, as a script run as
    ``__main__`` (or again as ``__mp_main__`` in a spawn worker) or an imported module defines it."""
    import types

    mod = types.ModuleType(module)
    exec(STREAK.replace("test-streak", name), mod.__dict__)  # noqa: S102 - the test's own code
    cls = mod.Streak
    if register:
        BLURS.register(name, cls, override=True)
    return cls


def _streak_file(saved: Path, tmp_path: Path, source: str, name: str = "test-streak") -> Path:
    return rewrite_model(saved, tmp_path / f"{name}.keras", meta=lambda m: m.update(
        blur={"name": name, "version": 1, "config": {}},
        components={"model": "built-in", "blur": source}))


def test_a_spawn_worker_rebuilds_a_blur_registered_in_main(saved, tmp_path):
    """Under spawn and forkserver (macOS', Windows' default) the parent's script runs again as ``__mp_main__`` in
    the worker: a Deblurrer whose blur was registered in ``__main__`` arrived there with a MissingBlur. The
    worker's class is recorded as ``__main__``'s too."""
    try:
        worker = _user_blur("__mp_main__")
        loaded = Deblurrer.load(_streak_file(saved, tmp_path, "user module __main__"))
        assert type(loaded.blur) is worker
        loaded.blur = worker()
        assert Deblurrer.read_metadata(loaded.save(tmp_path / "again.keras"))["components"]["blur"] == \
            "user module __main__"
    finally:
        BLURS.unregister("test-streak")


def test_the_same_user_blur_under_another_module_name_is_rebuilt(saved, tmp_path, fake_plugin):
    """A blur saved from ``myblurs`` (a script's import) loaded as "cannot be rebuilt" where it is registered from
    ``proj.myblurs``, or saved from a notebook (``__main__``) and later moved into a module. A blur the user
    registers is theirs whatever the module; swaps between the user's, a plugin's and the built-in are still
    refused."""
    try:
        mine = _user_blur("proj.myblurs")
        for source in ("user module myblurs", "user module __main__", "user module proj.myblurs"):
            assert type(Deblurrer.load(_streak_file(saved, tmp_path, source)).blur) is mine, source
        assert repr(Deblurrer.load(_streak_file(saved, tmp_path, "plugin bk-streak 1.0")).blur) == \
            "<blur 'test-streak', cannot be rebuilt>"  # a plugin's, where the user's is registered
    finally:
        BLURS.unregister("test-streak")
    fake_plugin({"bk_fake_h": HORIZONTAL}, {"blurkit.blurs": {"horizontal": "bk_fake_h:Horizontal"}})
    users = Deblurrer.load(_streak_file(saved, tmp_path, "user module myblurs", name="horizontal"))
    assert repr(users.blur) == "<blur 'horizontal', cannot be rebuilt>"  # the user's, where a plugin's is installed


DECORATED = HORIZONTAL.replace("from blurkit.blurs.base import Blur", "from blurkit import register_blur\n"
                               "    from blurkit.blurs.base import Blur").replace("class Horizontal",
                                                                                  "@register_blur\n    class Horizontal")


@pytest.mark.parametrize("import_first", [True, False])
def test_a_plugin_that_also_registers_its_blur_is_the_plugins_whatever_is_imported_first(
        saved, tmp_path, fake_plugin, import_first):
    """A plugin whose module registers its blur with the decorator too was ``user module bk_fake_dec`` where the
    module was imported before the plugins were scanned, and ``plugin bk-fake 0.1`` otherwise: a file saved in one
    process was refused in the other."""
    import importlib

    try:
        fake_plugin({"bk_fake_dec": DECORATED}, {"blurkit.blurs": {"horizontal": "bk_fake_dec:Horizontal"}})
        if import_first:
            importlib.import_module("bk_fake_dec")
        cls = BLURS.get("horizontal") if not import_first else (BLURS.list(), BLURS.get("horizontal"))[1]
        assert BLURS.entry("horizontal").source == "plugin bk-fake 0.1"
        assert type(Deblurrer.load(_streak_file(saved, tmp_path, "plugin bk-fake 0.1", name="horizontal")).blur) \
            is cls
    finally:
        BLURS.unregister("horizontal")


class RunPathMotion(MyMotion):
    """An unregistered blur named like the built-in, from a module name blurkit's texts never held."""


RunPathMotion.__module__ = "<run_path>"


def test_any_user_module_or_custom_source_is_told_from_the_builtin(saved, tmp_path):
    """A class from ``runpy.run_path`` (module ``<run_path>``), and a blur registered with a ``source=`` of its own,
    were recorded so that loading rebuilt the built-in in their place, silently."""
    d = Deblurrer.load(saved)
    d.blur = RunPathMotion()
    with pytest.warns(UserWarning, match=r"\(user module <run_path>\)"):
        path = d.save(tmp_path / "rp.keras")
    assert repr(Deblurrer.load(path).blur) == "<blur 'motion', cannot be rebuilt>"
    original = BLURS.entry("gaussian")

    class Acme(GaussianBlur):
        name = "gaussian"

    try:
        BLURS.register("gaussian", Acme, override=True, source="acme corp")
        path = Deblurrer(model="unet", model_options=TINY, blur="gaussian", **FAST).save(tmp_path / "acme.keras")
        assert Deblurrer.read_metadata(path)["components"]["blur"] == f"user module {__name__}"
    finally:
        BLURS.register("gaussian", original.obj, override=True, source=original.source)
    assert repr(Deblurrer.load(path).blur) == "<blur 'gaussian', cannot be rebuilt>"


@pytest.mark.parametrize("source", ["", "plugin", "plugin a b c d"])
def test_a_newer_version_names_what_to_do_whatever_the_source(source):
    """``register(..., source="")`` or ``source="plugin"`` made deserializing a newer saved version raise
    IndexError, which ``Deblurrer.load`` does not catch."""
    from blurkit.blurs import deserialize_blur

    try:
        BLURS.register("test-streak", _user_blur("odd_source", register=False), source=source)
        with pytest.raises(ValueError, match=r"was saved with version 2, but .* has version 1"):
            deserialize_blur({"name": "test-streak", "version": 2, "config": {}})
    finally:
        BLURS.unregister("test-streak")


class Fmt(ValueError):
    def __init__(self, option):
        super().__init__(f"bad option {option!r}")
        self.option = option


class Coded(RuntimeError):
    def __init__(self, message, code=7):
        super().__init__(message)
        self.code = code


@pytest.mark.parametrize("exc", [Fmt("width"), KeyError("width"), OSError(2, "No such file", "w.h5"),
                                 FileNotFoundError(2, "No such file", "w.h5"), Coded("no", code=42),
                                 json.JSONDecodeError("bad", "doc", 0)], ids=type)
def test_a_builder_error_that_cannot_be_remade_is_raised_as_it_was_with_a_note(exc):
    """``type(exc)(text)`` was trusted when the text was in its ``str``: a formatting constructor garbled it
    (``bad option "model ... bad option 'width'"``), KeyError quoted it, OSError lost errno and filename, a
    custom one its attributes. Those are raised unchanged, the model and options in a note."""
    from blurkit.deblurrer import _build_error

    before = (type(exc), str(exc), dict(vars(exc)), exc.args)
    out = _build_error("m", {"width": 3}, exc)
    assert out is exc and (type(out), str(out), exc.args) == (before[0], before[1], before[3])
    assert {k: v for k, v in vars(out).items() if k != "__notes__"} == before[2]
    assert out.__notes__ == [f"model 'm' with options {{'width': 3}} failed to build: {type(exc).__name__}: "
                             f"{before[1]}"]
    plain = _build_error("m", {}, ValueError("too wide"))  # the plain built-in ones: remade, as before
    assert type(plain) is ValueError and str(plain) == "model 'm' with options {} failed to build: ValueError: " \
                                                        "too wide"


def test_cli_train_exits_1_when_a_builder_cannot_read_a_file(tmp_path, capsys):
    """A builder's FileNotFoundError (its weights file) ended ``blurkit train`` with exit status 2, a usage
    error; it was 1 before builder errors were reworded."""
    from blurkit.cli.main import main
    from blurkit.data.io import write_image

    def needs_weights(channels=3, weights="w.h5"):
        open(weights, "rb")  # noqa: SIM115 - raises

    MODELS.register("test-needs-weights", needs_weights)
    try:
        (tmp_path / "photos").mkdir()
        for i, photo in enumerate(PHOTOS):
            write_image(tmp_path / "photos" / f"{i}.png", photo)
        assert main(["train", str(tmp_path / "photos"), "--model", "test-needs-weights", "--model-option",
                     f"weights={tmp_path / 'nope.h5'}", "-o", str(tmp_path / "m.keras")]) == 1
        assert "nope.h5" in capsys.readouterr().err
    finally:
        MODELS.unregister("test-needs-weights")


def test_the_save_warning_of_a_blur_nobody_registered_reads_right(saved, tmp_path):
    """It said "..., not no blur registered under it"."""
    d = Deblurrer.load(saved)
    d.blur = _user_blur("my_unregistered", register=False, name="test-nobody")()
    with pytest.warns(UserWarning, match=r"\(user module my_unregistered\), and no blur is registered under that "
                                         r"name; ") as record:
        d.save(tmp_path / "nobody.keras")
    assert "not no" not in str(record[0].message)


def test_pickling_does_not_warn_about_a_temporary_file(saved):
    """Pickling (spawn) saves to a temporary file: a blur that is not the registered one warned about
    ``/tmp/tmpXXXX/deblurrer.keras``, a path the user never chose."""
    import pickle

    d = Deblurrer.load(saved)
    d.blur = MyMotion()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = pickle.loads(pickle.dumps(d))
    assert again.blur.name == "motion"
