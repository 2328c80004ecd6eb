"""Argument helpers shared by the CLI commands (standard library only)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blurkit.cli.main import CLIError


def parse_value(text: str, what: str = "") -> Any:
    """``"2"`` -> 2, ``"0.5:3"`` -> (0.5, 3.0), ``"[1, 2]"`` -> [1, 2], ``"reflect"`` -> "reflect".

    ``what`` (the argument, e.g. ``"--sigma"``) starts the error message of a bad range.

    Examples:
        >>> parse_value("0.5:3"), parse_value("2"), parse_value("true"), parse_value("reflect")
        ((0.5, 3.0), 2, True, 'reflect')
    """
    if ":" in text and not text.startswith(("[", "{", '"')):
        lo, _, hi = text.partition(":")
        try:
            return (float(lo), float(hi))
        except ValueError:
            raise CLIError(f"{what + ': ' if what else ''}bad range {text!r}: expected LOW:HIGH numbers") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """Parse repeated ``key=value`` arguments into keyword arguments."""
    out: dict[str, Any] = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CLIError(f"{what} must look like key=value, got {item!r}")
        out[key.replace("-", "_")] = parse_value(value, f"{what} {key}")
    return out


def parse_sigma(text: str) -> float | tuple[float, float]:
    """``--sigma``: a number (``"2"`` -> 2.0) or a range (``"0.5:3"`` -> (0.5, 3.0)); anything else is an error.

    Examples:
        >>> parse_sigma("2"), parse_sigma("0.5:3")
        (2.0, (0.5, 3.0))
    """
    value = parse_value(text, "--sigma")
    if isinstance(value, tuple):
        return float(value[0]), float(value[1])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise CLIError(f"--sigma: expected a number like 2 or a range like 0.5:3, got {text!r}")


def parse_blur_options(args: Any) -> dict[str, Any]:
    """The blur options of ``--blur-option KEY=VALUE`` (repeatable) and ``--sigma`` (short for sigma=...)."""
    options = parse_options(args.blur_option, "--blur-option")
    if args.sigma:
        if "sigma" in options:  # one would silently win over the other
            raise CLIError("give sigma either with --sigma or with --blur-option sigma=..., not both")
        options["sigma"] = parse_sigma(args.sigma)
    return options


def error_text(exc: BaseException) -> str:
    """An exception's message (a KeyError's without the quotes ``str`` adds around it).

    Examples:
        >>> error_text(KeyError("unknown preset 'x'")), error_text(ValueError("got 'abc'"))
        ("unknown preset 'x'", "got 'abc'")
    """
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])
    return str(exc)


def shown(name: Any) -> str:
    r"""A path or file name printable whatever the terminal's encoding: the bytes of a name that is not UTF-8
    (which Python decodes with ``surrogateescape``) as ``\xNN``; printing it raw fails on a strict stream.

    A lone surrogate that is not such a byte (an invalid UTF-16 name from Windows) is written as ``\udNNN``.

    Examples:
        >>> shown("caf\udce9.png"), shown("été.png"), shown("a\ud800.png")
        ('caf\\xe9.png', 'été.png', 'a\\ud800.png')
    """
    text = str(name)
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate surrogateescape cannot turn back into a byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def file_id(path: str | os.PathLike) -> tuple[int, int] | None:
    """A file's or folder's identity (device and inode; Windows: volume and file index), None if none is
    there. One file under two names (a link, a bind mount, another letter case on a file system that ignores
    it) has one identity, and a file that blurkit writes again (a new file renamed over it) a new one."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def add_max_pixels(parser: Any, verb: str = "skip") -> None:
    """Add a command's ``--max-pixels N`` to ``parser``, defaulting to the library's limit: ``verb`` (skip,
    refuse) the images over it.

    Examples:
        >>> import argparse
        >>> p = argparse.ArgumentParser()
        >>> add_max_pixels(p, "refuse")
        >>> p.parse_args([]).max_pixels, p.parse_args(["--max-pixels", "9"]).max_pixels
        (178956970, 9)
    """
    from blurkit._limits import DEFAULT_MAX_PIXELS

    side = round(DEFAULT_MAX_PIXELS**0.5, -3)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help=f"{verb} images of more than N pixels, checked before decoding them "
                        f"(decompression-bomb guard; default {DEFAULT_MAX_PIXELS}, about {side:.0f}x{side:.0f})")


def flag_reason(why: str) -> str:
    """A library message as the CLI prints it: naming ``--max-pixels`` where it names the ``max_pixels`` of
    ``read_image`` or a Deblurrer method (the advice to pass a larger one is about the flag on the command line).

    Examples:
        >>> flag_reason("image is 9 pixels, more than max_pixels=4; pass a larger max_pixels (or "
        ...             "max_pixels=None) to read_image if you trust this file")
        'image is 9 pixels, more than --max-pixels 4; pass a larger --max-pixels if you trust this file'
        >>> flag_reason("a.png: image is 9 pixels, more than max_pixels=4; pass a larger max_pixels (or "
        ...             "max_pixels=None) to Deblurrer.fit if you trust this file")
        'a.png: image is 9 pixels, more than --max-pixels 4; pass a larger --max-pixels if you trust this file'
    """
    import re

    from blurkit.data.io import _TOO_BIG_ADVICE

    why = why.replace("more than max_pixels=", "more than --max-pixels ")
    why = why.replace("(pass resume=True to continue that run)", "(--resume would have continued that run)")
    return re.sub(re.escape(_TOO_BIG_ADVICE).replace("read_image", r"(read_image|Deblurrer\.\w+)"),
                  "pass a larger --max-pixels", why)


def check_output(path: Any, arg: str, *, folder: bool = False, stream: bool = True) -> Path:
    """Check, before any work, that ``path`` can be written as a file (or a ``folder``): neither it nor a
    parent is in the way (a file where a folder must be, or a folder where the file must be), and the
    nearest existing folder it goes in takes a new file (a temporary one is made and removed: a read-only
    folder or file system, or no permission, fails here, not after hours of work). A pipe, a device or an
    open descriptor's name (``/dev/stdout``) is written into as it is (see ``atomic_open``) where ``stream``,
    and refused otherwise (a model file, a zip archive written whole).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> root = Path(tempfile.mkdtemp()); _ = (root / "notes").write_text("x")
        >>> check_output(root / "out" / "m.keras", "--out").name
        'm.keras'
        >>> check_output(root / "notes" / "m.keras", "--out")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        blurkit.cli.main.CLIError: --out .../notes/m.keras: .../notes is a file, not a folder
    """
    from blurkit.data.io import blocking_file, is_special_file, open_descriptor

    path = Path(path)
    if not folder and (open_descriptor(path) is not None or is_special_file(path)):
        # /dev/stdout, /dev/null, a FIFO, a shell's >(...): written into as they are (see atomic_open)
        if not stream:
            raise CLIError(f"{arg} {path}: not a regular file (a pipe, a device or a descriptor): a model file "
                           "is a zip archive written whole; give a file name")
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:  # a closed descriptor's /dev/fd/N
            raise CLIError(f"{arg} {path}: cannot write to it ({exc.strerror or exc})") from None
        if stat.S_ISSOCK(mode):
            raise CLIError(f"{arg} {path}: is a socket, not a file to write")
        if not os.access(path, os.W_OK):
            raise CLIError(f"{arg} {path}: cannot write to it (no permission)")
        return path
    if folder and path.exists() and not path.is_dir():
        raise CLIError(f"{arg} {path}: is a file, not a folder")
    if not folder and path.is_dir():
        raise CLIError(f"{arg} {path}: is a folder, not a file name")
    blocker = blocking_file(path)
    if blocker is not None:
        raise CLIError(f"{arg} {path}: {blocker} is a file, not a folder")
    where = next((p for p in ([path] if folder else []) + list(path.absolute().parents) if p.is_dir()), None)
    if where is not None:
        try:
            fd, probe = tempfile.mkstemp(prefix=".blurkit-write-check-", dir=where)
        except OSError as exc:
            raise CLIError(f"{arg} {path}: cannot write in {where} ({exc.strerror or exc})") from None
        os.close(fd)
        os.unlink(probe)
    return path


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1.

    Examples:
        >>> count(1, "epoch"), count(8, "image")
        ('1 epoch', '8 images')
    """
    return f"{n} {noun}{'s' * (n != 1)}"


def progress_shown() -> bool:
    """Whether to show progress of a command's long work: yes, unless there is no stderr (``2>&-``, pythonw).
    The bars become plain lines (one every 30 s at most, on stderr) when stderr is no terminal (a pipe, a log
    file, a CI job: there a bar is its frames joined by carriage returns, and nothing at all left a long run
    silent until its summary) or the terminal asks for plain text (:func:`plain_text`)."""
    from blurkit import _progress

    if sys.stderr is None:
        return False
    _progress.log_lines(not on_terminal() or plain_text())
    return True


def plain_text() -> bool:
    """Whether the terminal asks for plain text: ``NO_COLOR`` set (https://no-color.org) or ``TERM=dumb``
    (Emacs' shell): no colour codes, no bar redrawn with backspaces and carriage returns."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


def on_terminal(stream: Any = None) -> bool:
    r"""Whether ``stream`` (default: stderr, where the progress bars go) is a terminal.

    The commands draw a progress bar only on a terminal: in a pipe or a log file a bar is its frames joined
    by ``\r`` (a line of text for every redraw). A stream that is missing or closed is no terminal.

    Args:
        stream: A file object; None for ``sys.stderr`` as it is at the call.

    Returns:
        True if ``stream`` is an open terminal.

    Examples:
        >>> import io
        >>> on_terminal(io.StringIO())
        False
    """
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no stream (pythonw), or a closed one
        return False


def add_threads(p: argparse.ArgumentParser) -> None:
    """The ``--threads`` option of the commands that run a model."""
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for TensorFlow's operations and OpenCV (default: all cores); 1 leaves the "
                   "rest of a laptop free, at the cost of time")


def apply_threads(n: int | None) -> None:
    """Limit TensorFlow's two thread pools (operations, and operations run side by side) and OpenCV's to ``n``
    threads, before TensorFlow starts (``TF_NUM_INTRAOP_THREADS`` and ``TF_NUM_INTEROP_THREADS``: the first
    alone still used two cores). Nothing for None."""
    if n is None:
        return
    if n < 1:
        raise CLIError(f"--threads must be at least 1, got {n}")
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(n)
    if "tensorflow" in sys.modules:  # started already (in the same process as a test): set while it can be
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # its runtime is running: the threads are set for good
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
    import cv2

    cv2.setNumThreads(n)


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up log lines hidden, unless the user has asked for them.

    As it starts, TensorFlow writes about ten lines to the process's stderr (oneDNN, CPU instructions, "Could
    not find cuda drivers", and on a machine without a GPU "failed call to cuInit: ... CUDA error"), most of
    them before its logging is set up, so ``TF_CPP_MIN_LOG_LEVEL`` alone cannot hide them (TensorFlow 2.21
    writes them even with it set to 3). Unless that variable asks for messages (0 or 1: then nothing changes,
    ``TF_CPP_MIN_LOG_LEVEL=0 blurkit ...`` shows every line), the CLI sets it to 3 if it is unset, and imports
    TensorFlow, and lists its devices, with file descriptor 2 sent to a temporary file. If the import fails, what TensorFlow wrote is
    printed before the error, so nothing that explains it is lost (not when it is interrupted: Ctrl-C or SIGTERM).
    """
    # TensorFlow's default CPU allocator gives memory back to the system after each operation, and takes it
    # again: a quarter of a deblur's CPU time went to page faults. The BFC allocator (GPUs') keeps it; the same
    # output bit for bit, 11 % less time for a 3-MP photo (benchmarks/README.md). A user's own setting wins.
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
    if not _hiding():
        return
    captured = _Captured()
    try:
        with _stderr_captured(captured):
            import tensorflow

            # the devices too: finding none, CUDA writes its "failed call to cuInit" error then (at the first
            # operation, after this capture, were TF_CPP_MIN_LOG_LEVEL 2: errors are shown at 2)
            tensorflow.config.list_physical_devices()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) while it starts: what it wrote explains nothing
        raise
    except BaseException:
        _write_stderr(captured.text)
        raise


@contextlib.contextmanager
def plugins_quiet() -> Iterator[None]:
    """Run the body (a registry lookup that may load plugins) with TensorFlow's start-up lines hidden, should
    it import TensorFlow: a plugin whose module imports Keras does. Unlike :func:`quiet_tensorflow` it does not
    import TensorFlow itself, and it passes on everything else the body writes to stderr (a plugin's
    ``PluginWarning``) once the body is done. Nothing is hidden when ``TF_CPP_MIN_LOG_LEVEL`` asks for
    messages, as there."""
    if not _hiding():
        yield
        return
    captured = _Captured()
    try:
        with _stderr_captured(captured):
            yield
    finally:
        text = captured.text
        if "tensorflow" in sys.modules:
            text = "".join(line for line in text.splitlines(keepends=True) if not _TF_LINE.match(line))
        _write_stderr(text)


def _write_stderr(text: str) -> None:
    """Write to ``sys.stderr`` if there is one (``pythonw``, a service or ``2>&-`` may give none)."""
    if text and sys.stderr is not None:
        sys.stderr.write(text)
        sys.stderr.flush()


# TensorFlow's start-up lines: absl's "I0000 00:00:1796609403.929213   18823 port.cc:153] ...", its preamble, and
# the second line of the CPU-instructions message
_TF_LINE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called|[IWEF]\d{4} [\d:.]+ +\d+ "
                      r"\S+:\d+\] |To enable the following instructions: .* rebuild TensorFlow")


def _hiding() -> bool:
    """Whether TensorFlow's start-up lines are to be hidden: it is not imported yet, and the user has not asked
    for its messages (``TF_CPP_MIN_LOG_LEVEL`` unset, 2 or 3: 2, the usual way to quiet TensorFlow, showed its
    start-up lines, a CUDA "error" on every CPU machine among them). Sets the level to 3 when it is unset."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip()
    if "tensorflow" in sys.modules or level not in ("", "2", "3"):
        return False
    if not level:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return True


class _Captured:
    text = ""  # what was written to file descriptor 2, set when the capture ends


@contextlib.contextmanager
def _stderr_captured(captured: _Captured) -> Iterator[None]:
    """File descriptor 2 (C libraries' stderr as well as Python's) sent to a temporary file for the body;
    ``captured.text`` is what was written there, once the body is done. Without a temporary file (no
    writable temporary folder) nothing is captured: the body runs as it is."""
    try:
        log = tempfile.TemporaryFile()
        saved = os.dup(2)
    except OSError:  # no temporary folder, or no file descriptor 2 (`2>&-`, pythonw)
        yield
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    with log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            captured.text = log.read().decode(errors="replace")


def check_sigma(d: Any, sigma: float, arg: str) -> None:
    """Check, before any image is read, that the Deblurrer ``d`` can be given the known blur ``sigma``
    (``Deblurrer.predict(x, sigma=...)``); a usage error naming ``arg`` if not."""
    try:
        d._sigma_param(sigma, arg)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def load_named(name: str | None):
    """A Deblurrer from ``name``: a model file (a name ending in ``.keras`` or ``.h5``, or an existing path:
    :meth:`~blurkit.Deblurrer.load` says what a folder or a legacy file is), else a shipped preset's name; the
    default preset for None."""
    from blurkit.presets import list_presets

    # a preset's name is the preset, unless a file of that name is there (a folder, say an earlier
    # `deblur -o gaussian-v1/`, is not); any other existing path is a model argument, said for what it is
    is_file = name is not None and (name.lower().endswith((".keras", ".h5", ".hdf5")) or Path(name).is_file()
                                    or (Path(name).exists() and name not in list_presets()))
    return load_deblurrer(name if is_file else None, None if is_file else name)


def load_deblurrer(model: str | None, preset: str | None = None, options: dict[str, str] | None = None,
                   given: frozenset[str] = frozenset()):
    """A Deblurrer from a model file, or from a shipped preset (the default one when both are None).

    A missing file or an unknown preset name is refused before TensorFlow is imported (seconds). The settings
    of a file that loading changes (:class:`~blurkit.deblurrer.FileSettingWarning`) are said in the command's
    terms: never its seed (no command draws with a file's seed: train gives its ``--seed``, the others draw
    with none or their own), not when the command's options set them all (``given``, the settings they set),
    and with the option that sets them (``options``: setting -> option) rather than the Deblurrer."""
    from blurkit.deblurrer import Deblurrer, ModelFileError  # light: TensorFlow comes with the model
    from blurkit.presets import DEFAULT_PRESET

    check_model(model, preset)
    try:
        if not model:  # a preset: its settings are in range (and no warnings swapped while threads may warn)
            quiet_tensorflow()
            return Deblurrer.from_preset(preset or DEFAULT_PRESET)
        quiet_tensorflow()
        with _file_settings_said(options or {}, given):
            return Deblurrer.load(model)
    except (ModelFileError, KeyError) as exc:
        raise CLIError(error_text(exc)) from None


def check_model(model: str | None, preset: str | None = None, metadata: bool = False) -> None:
    """Refuse, before TensorFlow is imported (seconds), a model file that is not there or an unknown preset's
    name (the default preset for both None); with ``metadata``, also a file whose blurkit metadata cannot be
    read (not a model file, a damaged one): for a command that finds it has no image to restore, and so does
    not load the model, which would have said so."""
    from blurkit.deblurrer import Deblurrer, ModelFileError
    from blurkit.presets import DEFAULT_PRESET, list_presets, preset_path

    if model and not Path(model).exists():
        shipped = model in list_presets()
        raise CLIError(f"model file not found: {model}" + (f" (a preset's name: --preset {model})" if shipped else ""))
    try:
        if not model:
            preset_path(preset or DEFAULT_PRESET)
        elif metadata:
            Deblurrer.read_metadata(model)
    except (ModelFileError, KeyError) as exc:
        raise CLIError(error_text(exc)) from None


@contextlib.contextmanager
def _file_settings_said(options: dict[str, str], given: frozenset[str]) -> Iterator[None]:
    """Say the :class:`~blurkit.deblurrer.FileSettingWarning` of the load in it as :func:`load_deblurrer`
    tells; other warnings pass as they were (shown when it ends)."""
    import warnings

    from blurkit.deblurrer import FileSettingWarning

    said: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as said:
            # recorded, not raised (under -W error), so that those the command leaves out are left out: those
            # said pass the user's filters below; and said when the load then fails too
            warnings.simplefilter("always", FileSettingWarning)
            yield
    finally:
        for w in said:
            m = w.message
            if not isinstance(m, FileSettingWarning):
                warnings.warn_explicit(m, w.category, w.filename, w.lineno, source=w.source)
            elif "seed" not in m.settings and not m.settings <= given:
                sets: dict[str, list[str]] = {}
                for setting in sorted(m.settings & set(options)):
                    sets.setdefault(options[setting], []).append(setting)
                advice = "; ".join(f"{option} sets {' and '.join(names)}" for option, names in sets.items())
                warnings.warn_explicit(f"{m.text} ({advice})" if advice else m.text, UserWarning, w.filename,
                                       w.lineno)
