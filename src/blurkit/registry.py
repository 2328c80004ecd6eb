"""One registry class for blur generators, model builders and metrics.

A :class:`Registry` maps short names (``"gaussian"``, ``"unet"``, ``"psnr"``) to components. Built-in
components are registered by importing their modules, which happens lazily the first time a registry is
used, so ``import blurkit`` stays light. Third-party components come from Python entry points, one group
per registry (``blurkit.blurs``, ``blurkit.models``, ``blurkit.metrics``): the entry point's name is the
component's name and its object is the component itself, so a plugin needs no import-time side effects::

    [project.entry-points."blurkit.metrics"]
    mae = "my_plugin:mae"

Entry points are loaded lazily (on the first unknown name, or when listing). Built-ins win over plugins
of the same name unless the plugin is registered explicitly with ``override=True``; a component you register
yourself wins over a plugin of its name silently, whether the plugins were loaded before or after. A plugin
that fails to import gives a :class:`PluginWarning` naming it and the error; it never breaks the other
components.

Examples:
    >>> from blurkit.registry import Registry
    >>> colors = Registry("colors")
    >>> @colors.register("red")
    ... def red():
    ...     return (255, 0, 0)
    >>> colors.get("red")()
    (255, 0, 0)
    >>> colors.list("r*")
    ['red']
    >>> colors.get("rde")
    Traceback (most recent call last):
    ...
    blurkit.registry.UnknownComponentError: unknown color 'rde'; did you mean 'red'? Available: red
"""

from __future__ import annotations

import builtins
import difflib
import fnmatch
import importlib
import inspect
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar, overload

# a component: a blur class, a model builder or a metric function (registration returns it unchanged)
_C = TypeVar("_C", bound=Callable[..., Any])
_T = TypeVar("_T")

__all__ = [
    "Registry",
    "Entry",
    "Failure",
    "UnknownComponentError",
    "DuplicateComponentError",
    "PluginWarning",
    "BLURS",
    "MODELS",
    "METRICS",
    "register_blur",
    "register_model",
    "register_metric",
]

BUILTIN = "built-in"


class UnknownComponentError(KeyError):
    """Raised for a name that no built-in or plugin provides."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class DuplicateComponentError(ValueError):
    """Raised when a name is registered twice without ``override=True``."""


class PluginWarning(UserWarning):
    """A plugin entry point could not be loaded; the other components still work."""


@dataclass(frozen=True)
class Entry:
    """Where a registered component comes from.

    Attributes:
        name: The registry name.
        obj: The component (class or function).
        source: ``"built-in"`` or ``"plugin <distribution> <version>"``.
        module: The module that defines the object.
        file: The source file, when known.
        line: The line in that file, when known.
    """

    name: str
    obj: Any
    source: str
    module: str
    file: str | None
    line: int | None


@dataclass(frozen=True)
class Failure:
    """A plugin entry point that could not be loaded (:meth:`Registry.failures`).

    Attributes:
        name: The entry point's name (the component's name in blurkit).
        source: ``"plugin <distribution> <version>"``, as an :class:`Entry`'s would have been.
        value: The entry point's object reference (``"my_plugin:mae"``).
        reason: Why it was left out (``"ModuleNotFoundError: No module named 'x'"``).
    """

    name: str
    source: str
    value: str
    reason: str


def _is_plugin(source: str) -> bool:
    return source.startswith("plugin ")


def options_error(noun: str, name: str, factory: Any, kwargs: dict, exc: TypeError) -> TypeError:
    """The ``TypeError`` to raise when ``factory(**kwargs)`` raised ``exc``: one that names the options it does
    not take and lists those it takes, when that is what ``exc`` was about and they can be told (see
    :func:`_options`); otherwise ``exc`` itself. ``noun`` names one component of its kind (``"blur"``:
    :attr:`Registry.noun`).

    Examples:
        >>> from blurkit.blurs import MotionBlur
        >>> try:
        ...     MotionBlur(foo=1)
        ... except TypeError as exc:
        ...     print(options_error("blur", "motion", MotionBlur, {"foo": 1}, exc))
        blur 'motion' takes no option 'foo'; its options: length, angle, border, noise, shot, quantize, jpeg, seed
    """
    if "unexpected keyword argument" not in str(exc):
        return exc
    options = _options(factory)
    unknown = sorted(set(kwargs) - set(options or ()))
    if options is None or not unknown:
        return exc
    names = ", ".join(map(repr, unknown))
    return TypeError(f"{noun} {name!r} takes no option{'s' * (len(unknown) > 1)} {names}; "
                     f"its options: {', '.join(options) or '(none)'}")


def _options(factory: Any) -> list[str] | None:
    """The keyword arguments ``factory`` takes, in order: a class's ``__init__`` followed along its bases while
    each passes ``**kwargs`` on (a blur's own options, then the base class's); None when they cannot be told
    (a ``**kwargs`` that goes nowhere known, or no signature)."""
    names: list[str] = []
    targets = [vars(c)["__init__"] for c in factory.__mro__ if "__init__" in vars(c)] if isinstance(factory, type) \
        else [factory]
    for fn in targets:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return None
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and p.name not in ("self", *names)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def _blurkit_keras_objects() -> dict[str, Any] | None:
    """blurkit's own Keras-registered objects (``"blurkit>PadToMultiple"``: its layers, losses, metric),
    registered now if they are not yet, when Keras is imported already; None otherwise (blurkit registers them
    when it builds or loads a model, after any plugin imported before, and a later registration of a name
    replaces the earlier one)."""
    keras = sys.modules.get("keras")
    saving = getattr(keras, "saving", None)
    if saving is None or not hasattr(saving, "get_custom_objects"):
        return None
    # blurkit's own first (a plugin importing blurkit's layers and then registering its own class under one
    # of their names would otherwise win): Keras is imported already, so this is cheap
    import blurkit.models.layers  # noqa: F401
    from blurkit.metrics import keras as metrics_keras
    from blurkit.metrics import losses

    losses.custom_objects()
    metrics_keras.MeanMetric  # noqa: B018 - defines and registers the class
    return {k: v for k, v in saving.get_custom_objects().items() if k.startswith("blurkit>")}


def _restore_keras_objects(before: dict[str, Any] | None, label: str) -> None:
    """Put back blurkit's Keras-registered objects that importing plugin ``label`` replaced, with a warning:
    the built-ins win there as in blurkit's registries (a model file naming ``blurkit>PadToMultiple`` must
    get blurkit's layer, whatever plugins were imported)."""
    if before is None:
        return
    import keras

    objects = keras.saving.get_custom_objects()
    changed = sorted(k for k, v in before.items() if objects.get(k) is not v)
    for key in changed:
        objects[key] = before[key]
    if changed:
        warnings.warn(f"plugin {label} registered Keras objects under blurkit's own names ({', '.join(changed)}); "
                      "blurkit's are kept", PluginWarning, stacklevel=4)


def _plugin_order(ep: metadata.EntryPoint) -> tuple[str, str, str]:
    dist = getattr(ep, "dist", None)
    name = (dist.metadata["Name"] or "") if dist is not None else ""
    return name.lower(), ep.name, ep.value


def _describe(obj: Any) -> tuple[str, str | None, int | None]:
    module = getattr(obj, "__module__", None) or "?"
    try:
        target = inspect.unwrap(obj)
        file = inspect.getsourcefile(target)
        line = inspect.getsourcelines(target)[1]
    except (TypeError, OSError):
        file, line = None, None
    return module, file, line


class Registry:
    """A named collection of components with lazy built-ins and entry-point plugins.

    Args:
        kind: What the registry holds, plural (``"blurs"``), as in ``repr``.
        group: The entry-point group scanned for plugins (``"blurkit.blurs"``), or None for none.
        builtins: Modules whose import registers the built-in components; imported on first use.
        check: Tells what is wrong with a plugin's entry-point object (``"not a class"``), or None when it is a
            component of this kind; an entry point that fails it is skipped with a :class:`PluginWarning` (it
            would otherwise fail later, far from the plugin that caused it).
        noun: One component, for the messages that name one (``"unknown blur 'gaussain'"``); default
            ``kind`` without its final "s" (give it for a plural such as ``"losses"``).
        name_attr: The attribute of a component that must hold the name it is registered under (blurs'
            ``name``: a saved model records that attribute, and is rebuilt from the component registered
            under it), or None. It is also the default name of a component registered without one.
    """

    def __init__(
        self,
        kind: str,
        group: str | None = None,
        builtins: Iterable[str] = (),
        check: Callable[[Any], str | None] | None = None,
        noun: str | None = None,
        name_attr: str | None = None,
    ) -> None:
        self.kind = kind
        self.name_attr = name_attr
        self.noun = noun or (kind[:-1] if kind.endswith("s") else kind)
        self.group = group
        self._builtins = tuple(builtins)
        self._check = check
        self._entries: dict[str, Entry] = {}
        self._failed: list[Failure] = []  # entry points that could not be loaded, in the order tried
        self._overridden: set[str] = set()  # names registered with override=True in another component's place
        self._builtins_loaded = not self._builtins
        self._plugins_loaded = group is None
        self._lock = threading.RLock()

    # -- registration -------------------------------------------------------------------------
    @overload
    def register(self, name: _C, obj: None = None, *, override: bool = False, source: str | None = None) -> _C: ...

    @overload
    def register(self, name: str | None = None, obj: None = None, *, override: bool = False,
                 source: str | None = None) -> Callable[[_C], _C]: ...

    @overload  # a registry of anything (a user's own Registry): any object, returned as it is
    def register(self, name: str | None, obj: _T, *, override: bool = False, source: str | None = None) -> _T: ...

    def register(
        self, name: Any = None, obj: Any = None, *, override: bool = False, source: str | None = None
    ) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator.

        Args:
            name: Registry name; defaults to the object's ``__name__`` (a blur's ``name``). ``register`` is a
                decorator with or without it: ``@register_metric("mae")`` or ``@register_metric``.
            obj: The component. Omit to use ``register`` as a decorator.
            override: Replace an existing entry of the same name instead of raising. Not needed to take the
                name of a plugin (an entry-point component): that one is replaced silently, as it is skipped
                when the plugins are scanned after this registration.
            source: Where the component comes from; defaults to ``"built-in"`` for blurkit's own modules
                and ``"user"`` otherwise.

        Returns:
            The object itself (so decorated definitions are unchanged), or a decorator.

        Raises:
            DuplicateComponentError: ``name`` is taken, not by a plugin, and ``override`` is False.
            TypeError: ``obj`` is not a component of this registry's kind (a blur that is not a ``Blur``
                subclass, a metric that is not callable), as for a plugin's entry point.
            ValueError: No usable name, or a blur whose ``name`` is not the name it is registered under.
        """
        if obj is None and name is not None and not isinstance(name, str):  # the bare decorator
            name, obj = None, name
        if obj is None:
            return lambda o: self.register(name, o, override=override, source=source)
        # an empty name is refused, not replaced by the object's own: register_blur("", Cls) took Cls.name
        key = name if name is not None else (getattr(obj, self.name_attr, None) if self.name_attr else None) \
            or getattr(obj, "__name__", None)
        if not key or not isinstance(key, str):
            raise ValueError(f"{self.kind}: a component needs a non-empty string name, got {key!r}")
        wrong = self._check(obj) if self._check is not None else None
        if wrong is not None:
            raise TypeError(f"{self.noun} {key!r}: {wrong}")
        wrong = self._misnamed(key, obj)
        if wrong is not None:
            raise ValueError(f"{self.noun} {key!r}: {wrong}")
        module, file, line = _describe(obj)
        if source is None:
            source = BUILTIN if module.split(".")[0] == "blurkit" else "user"
        if source != BUILTIN:
            # Load the built-ins first, so that taking a built-in's name needs override=True here
            # (instead of succeeding now and making the built-in module fail to import later).
            self._load_builtins()
        with self._lock:
            old = self._entries.get(key)
            # A plugin's name may be taken silently by anything but another plugin: a later entry-point scan
            # skips taken names the same way, so who wins does not depend on whether the plugins were scanned.
            plugin_taken = old is not None and _is_plugin(old.source) and not _is_plugin(source)
            if old is not None and not override and old.obj is not obj and not plugin_taken:
                raise DuplicateComponentError(
                    f"{self.noun} {key!r} is already registered (from {old.source}, {old.module}); "
                    "pass override=True to replace it"
                )
            self._entries[key] = Entry(key, obj, source, module, file, line)
            if override and old is not None and old.obj is not obj:
                self._overridden.add(key)  # an explicit choice over another component: the user's, kept as such
            else:
                self._overridden.discard(key)
        return obj

    def _misnamed(self, key: str, obj: Any) -> str | None:
        """What is wrong with registering ``obj`` as ``key`` when its :attr:`name_attr` says otherwise, or None."""
        if self.name_attr is None:
            return None
        own = getattr(obj, self.name_attr, None)
        if own == key:
            return None
        return (f"its {self.name_attr} is {own!r} ({_what(obj)}); it must be the name it is registered under, "
                f"since a saved model records the {self.name_attr} and is rebuilt from the {self.noun} of that name")

    def unregister(self, name: str) -> None:
        """Remove ``name`` (mainly for tests)."""
        with self._lock:
            self._entries.pop(name, None)
            self._overridden.discard(name)

    # -- lazy loading ---------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        with self._lock:
            if self._builtins_loaded:
                return
            self._builtins_loaded = True
            for mod in self._builtins:
                importlib.import_module(mod)

    def _load_plugins(self) -> None:
        self._load_builtins()
        if self._plugins_loaded:
            return
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
            if self.group is None:
                return
            # In the order of their distributions' names, so that which of two plugins of one name wins (the
            # first) is the same on every machine, not the order the installed packages happen to be found in.
            for ep in sorted(metadata.entry_points(group=self.group), key=_plugin_order):
                self._load_entry_point(ep)

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = getattr(ep, "dist", None)
        label = f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value
        if ep.name in self._entries:
            # Built-ins, anything registered explicitly (silently: the user chose it) and the first plugin win
            # over later plugins of the name.
            old = self._entries[ep.name]
            if old.source == BUILTIN:
                message = "which is built in; the built-in wins (register it with override=True to replace it)"
            elif _is_plugin(old.source):
                message = f"which {old.source} ({old.module}) provides already; that one is kept"
            else:
                # registered by the user: kept silently, unless it is this entry point's very object (a plugin
                # whose module registers it with the decorator too, imported before the scan): then it is the
                # plugin's, as when the scan imports the module first (saved files record where it came from).
                # Not where the user put it in another component's place with override=True: their choice.
                if ep.module in sys.modules and ep.name not in self._overridden:  # loading it runs no plugin code
                    try:
                        mine = ep.load() is old.obj
                    except Exception:  # noqa: BLE001 - an attribute it lacks: not this object
                        mine = False
                    if mine:
                        self._entries[ep.name] = Entry(ep.name, old.obj, f"plugin {label}", old.module, old.file,
                                                       old.line)
                return
            warnings.warn(f"plugin {label} provides {self.noun} {ep.name!r}, {message}", PluginWarning,
                          stacklevel=3)
            return
        keras_objects = _blurkit_keras_objects()
        try:
            obj = ep.load()
            wrong = self._check(obj) if self._check is not None else None
            wrong = wrong or self._misnamed(ep.name, obj)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must never break blurkit
            # SystemExit too: a plugin module calling sys.exit() at import would end `blurkit list`.
            wrong = f"{type(exc).__name__}: {exc}"
        finally:
            _restore_keras_objects(keras_objects, label)
        if wrong is None:
            try:
                self.register(ep.name, obj, source=f"plugin {label}")
                return
            except (DuplicateComponentError, TypeError, ValueError) as exc:
                # its own import registered another object under the name (register_metric in its module, say)
                wrong = str(exc)
        # remembered, so that asking for the name later says why it is missing (the warning is shown once,
        # and not at all where warnings are filtered)
        self._failed.append(Failure(ep.name, f"plugin {label}", ep.value, wrong))
        warnings.warn(f"blurkit could not load plugin {self.noun} {ep.name!r} ({ep.value}) from {label}: {wrong}",
                      PluginWarning, stacklevel=3)

    def reload_plugins(self) -> None:
        """Forget loaded plugins and scan the entry points again (after installing one at run time)."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if _is_plugin(e.source)]:
                del self._entries[key]
            self._failed = []
            self._plugins_loaded = self.group is None

    # -- lookup -------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """Return the component registered as ``name``.

        Raises:
            UnknownComponentError: No built-in or plugin has that name; the message lists the available
                names and the closest match.
        """
        return self.entry(name).obj

    def entry(self, name: str) -> Entry:
        """Return the :class:`Entry` (object and provenance) of ``name``.

        Raises:
            UnknownComponentError: No built-in or plugin has that name; for an installed plugin that could not
                be loaded, the message names it and says why.
        """
        self._load_builtins()
        if name not in self._entries:
            self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            failed = [f for f in self._failed if f.name == name]
            if failed:
                why = " and by ".join(f"{f.source} ({f.value}) but could not be loaded: {f.reason}" for f in failed)
                raise UnknownComponentError(f"{self.noun} {name!r} is provided by {why}") from None
            names = sorted(self._entries)
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownComponentError(
                f"unknown {self.noun} {name!r}{hint or '.'} Available: {', '.join(names) or '(none)'}"
            ) from None

    def create(self, name: str, **kwargs: Any) -> Any:
        """Call the component registered as ``name`` with ``kwargs`` (build a class or a model).

        Raises:
            TypeError: An option the component does not take; the message names it and lists those it takes.
        """
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.noun} {name!r} is not callable: {factory!r}")
        try:
            return factory(**kwargs)
        except TypeError as exc:
            raise options_error(self.noun, name, factory, kwargs, exc) from None

    def list(self, pattern: str = "*") -> list[str]:
        """Names matching the fnmatch ``pattern``, sorted (plugins included)."""
        self._load_plugins()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self, pattern: str = "*") -> builtins.list[Entry]:
        """Entries matching ``pattern``, sorted by name."""
        return [self._entries[n] for n in self.list(pattern)]

    def failures(self, pattern: str = "*") -> builtins.list[Failure]:
        """The installed plugin entry points matching ``pattern`` that could not be loaded (their module failed
        to import, their object is not a component of this kind, ...), sorted by name; each gave a
        :class:`PluginWarning` when the plugins were loaded."""
        self._load_plugins()
        # a name registered since (by the user, say) is no longer missing
        return sorted((f for f in self._failed if fnmatch.fnmatchcase(f.name, pattern) and f.name not in self._entries),
                      key=lambda f: f.name)

    def find(self, name: str) -> dict[str, Any]:
        """Where ``name`` is defined: ``{"name", "source", "module", "file", "line"}``."""
        e = self.entry(name)
        return {"name": e.name, "source": e.source, "module": e.module, "file": e.file, "line": e.line}

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.entry(name)
        except UnknownComponentError:
            return False
        return True

    def __iter__(self):
        return iter(self.list())

    def __len__(self) -> int:
        return len(self.list())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, group={self.group!r})"


def _check_blur(obj: Any) -> str | None:
    from blurkit.blurs.base import Blur

    if isinstance(obj, type) and issubclass(obj, Blur):
        return None
    return f"not a subclass of blurkit.blurs.Blur ({_what(obj)})"


def _check_callable(obj: Any) -> str | None:
    return None if callable(obj) else f"not callable ({_what(obj)})"


def _what(obj: Any) -> str:
    return f"{'class' if isinstance(obj, type) else type(obj).__name__} {getattr(obj, '__qualname__', repr(obj))}"


BLURS = Registry(
    "blurs",
    "blurkit.blurs",
    builtins=["blurkit.blurs.gaussian", "blurkit.blurs.motion", "blurkit.blurs.average", "blurkit.blurs.defocus"],
    check=_check_blur,
    noun="blur",
    name_attr="name",
)
MODELS = Registry(
    "models",
    "blurkit.models",
    builtins=["blurkit.models.autoencoder", "blurkit.models.unet", "blurkit.models.nafnet", "blurkit.models.wiener"],
    check=_check_callable,
    noun="model",
)
METRICS = Registry(
    "metrics", "blurkit.metrics", builtins=["blurkit.metrics.functional"], check=_check_callable,
    noun="metric",
)


@overload
def register_blur(name: _C, obj: None = None, *, override: bool = False) -> _C: ...


@overload
def register_blur(name: str | None = None, obj: None = None, *, override: bool = False) -> Callable[[_C], _C]: ...


@overload
def register_blur(name: str | None, obj: _C, *, override: bool = False) -> _C: ...


def register_blur(name: Any = None, obj: Any = None, *, override: bool = False) -> Any:
    """Register a blur generator class (decorator). See :meth:`Registry.register` and docs/plugins.md.

    Example:
        >>> import numpy as np
        >>> from blurkit import BLURS, register_blur
        >>> from blurkit.blurs.base import Blur, check_range, jsonable
        >>> @register_blur
        ... class VerticalBlur(Blur):
        ...     name = "vertical"
        ...     version = 1
        ...     def __init__(self, half=(1, 4), **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.half = check_range("half", half, minimum=0, integer=True)
        ...     def sample_kernel(self, rng):
        ...         low, high = self.half if isinstance(self.half, tuple) else (self.half, self.half)
        ...         return {"half": int(rng.integers(low, high + 1))}
        ...     def kernel(self, params):
        ...         n = 2 * params["half"] + 1
        ...         return np.full((n, 1), 1.0 / n)
        ...     def get_config(self):
        ...         return {"half": jsonable(self.half), **super().get_config()}
        >>> out = BLURS.create("vertical", half=1)(np.eye(3), seed=0)  # reflect border by default
        >>> out["kernel"].shape, out["params"]["half"], out["image"].round(3)[1].tolist()
        ((3, 1), 1, [0.333, 0.333, 0.333])
        >>> BLURS.unregister("vertical")
    """
    return BLURS.register(name, obj, override=override)


@overload
def register_model(name: _C, obj: None = None, *, override: bool = False) -> _C: ...


@overload
def register_model(name: str | None = None, obj: None = None, *, override: bool = False) -> Callable[[_C], _C]: ...


@overload
def register_model(name: str | None, obj: _C, *, override: bool = False) -> _C: ...


def register_model(name: Any = None, obj: Any = None, *, override: bool = False) -> Any:
    """Register a model builder function (decorator). See :meth:`Registry.register` and docs/plugins.md.

    Example:
        >>> import numpy as np
        >>> from blurkit import Deblurrer, MODELS, register_model
        >>> @register_model("tiny_cnn")
        ... def tiny_cnn(channels=3, width=8):
        ...     import keras
        ...     x = keras.Input((None, None, channels))
        ...     h = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        ...     y = keras.layers.Add()([x, keras.layers.Conv2D(channels, 3, padding="same")(h)])
        ...     return keras.Model(x, y)
        >>> d = Deblurrer(model="tiny_cnn", model_options={"width": 4})
        >>> d.predict(np.zeros((20, 30, 3), np.uint8)).shape
        (20, 30, 3)
        >>> MODELS.unregister("tiny_cnn")
    """
    return MODELS.register(name, obj, override=override)


@overload
def register_metric(name: _C, obj: None = None, *, override: bool = False) -> _C: ...


@overload
def register_metric(name: str | None = None, obj: None = None, *, override: bool = False) -> Callable[[_C], _C]: ...


@overload
def register_metric(name: str | None, obj: _C, *, override: bool = False) -> _C: ...


def register_metric(name: Any = None, obj: Any = None, *, override: bool = False) -> Any:
    """Register a metric function ``(y_true, y_pred) -> float`` (decorator). See :meth:`Registry.register`.

    Example:
        >>> import numpy as np
        >>> from blurkit import METRICS, register_metric
        >>> from blurkit.metrics.functional import prepare
        >>> @register_metric("mae")
        ... def mae(y_true, y_pred):
        ...     t, p = prepare(y_true, y_pred)  # blurkit's shape check and scaling ([0, 255] -> [0, 1])
        ...     return float(np.mean(np.abs(t - p)))
        >>> METRICS.get("mae")(np.zeros((2, 2), np.uint8), np.full((2, 2), 51, np.uint8))
        0.2
        >>> METRICS.unregister("mae")
    """
    return METRICS.register(name, obj, override=override)
