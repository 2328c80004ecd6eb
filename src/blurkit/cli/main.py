"""The ``blurkit`` command line: thin commands over the library.

Each command lives in its own module exposing ``add_parser(subparsers)``, which adds an argparse parser
and sets ``func`` to a ``run(args) -> int`` function. Command modules import only the standard library at
the top; the heavy imports (OpenCV, TensorFlow) happen inside ``run`` so ``blurkit --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import warnings
from typing import Any

# command name -> module; order is the order shown by --help
COMMANDS = {
    "list": "blurkit.cli.list_cmd",
    "make-pairs": "blurkit.cli.make_pairs",
    "shard": "blurkit.cli.shard",
    "train": "blurkit.cli.train",
    "deblur": "blurkit.cli.deblur",
    "evaluate": "blurkit.cli.evaluate",
    "export": "blurkit.cli.export",
    "demo": "blurkit.cli.demo",
}


class CLIError(Exception):
    """An error to report to the user in one line, without a traceback: exit status ``status``, 2 (a usage
    error) unless told otherwise (1: the work failed, e.g. none of the inputs could be read)."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def build_parser() -> argparse.ArgumentParser:
    from blurkit import __version__

    parser = argparse.ArgumentParser(
        prog="blurkit", description="Train, compare and apply image deblurring models."
    )
    parser.add_argument("--version", action="version", version=f"blurkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a command not written yet must not break the others
            if exc.name != module:
                raise
            continue
        mod.add_parser(sub)
    return parser


def _forgiving_streams() -> None:
    """Let stdout and stderr print any path: a character the stream's encoding lacks (a Windows console or a
    redirected file in cp1252, ``LANG=C``) or a file name that is not UTF-8 is written as a backslash escape
    instead of failing with ``UnicodeEncodeError`` after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream
                pass


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (then a broken pipe is the reader's
    choice, not a failure); True where that cannot be told (no ``poll``: Windows)."""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
    except (AttributeError, OSError, ValueError):
        return True
    poller.register(fd, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))


def _tensorflow_backend() -> None:
    """blurkit's models run on Keras' TensorFlow backend (``tf.data``, ``tf.function``, the SavedModel
    export): make it the one Keras loads, whatever ``~/.keras/keras.json`` names, and refuse a
    ``KERAS_BACKEND`` that names another (it failed with a traceback: "No module named 'jax'", or worse)."""
    import os

    backend = os.environ.get("KERAS_BACKEND", "").strip()
    if backend and backend != "tensorflow":
        raise CLIError(f"KERAS_BACKEND={backend}: blurkit runs on Keras' TensorFlow backend; unset it or set "
                       "KERAS_BACKEND=tensorflow")
    os.environ["KERAS_BACKEND"] = "tensorflow"


def main(argv: list[str] | None = None) -> int:
    _forgiving_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    shown = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None) -> str:  # not the library's file and line
        from blurkit.cli._common import flag_reason  # a library's max_pixels advice names the flag

        # PluginWarning, DeprecationWarning by name; a model file's setting changed on load is a plain warning
        kind = "warning" if category is UserWarning or category.__name__ == "FileSettingWarning" else category.__name__
        return f"blurkit {args.command}: {kind}: {flag_reason(str(message))}\n"

    warnings.formatwarning = one_line
    kept = warnings.catch_warnings()  # the filters as they were, put back when the command ends
    kept.__enter__()
    # TensorFlow's and Keras' own DeprecationWarnings (NumPy 2's __array__ copy keyword, from Keras'
    # convert_to_numpy in every model save) are theirs to mend, not the user's: under PYTHONWARNINGS=error or
    # -W error a training run ended after its first epoch with a traceback, the epoch lost
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(keras|tensorflow)(\.|$)")
    terminate = None
    try:
        terminate = _terminate_as_interrupt()
        _tensorflow_backend()
        if getattr(args, "threads", None) is not None:  # the commands that run a model (add_threads)
            from blurkit.cli._common import apply_threads

            apply_threads(args.threads)
        return int(args.func(args) or 0)
    except CLIError as exc:
        from blurkit.cli._common import flag_reason

        print(f"blurkit {args.command}: error: {flag_reason(str(exc))}", file=sys.stderr)
        return exc.status
    except BrokenPipeError as exc:
        if not _stdout_gone():  # another pipe (a FIFO given as a file, a socket): an error like any other
            print(f"blurkit {args.command}: error: {exc}", file=sys.stderr)
            return 1
        try:  # `blurkit list | head -1`: the reader has what it wanted; not an error
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit
        except (OSError, ValueError, AttributeError):
            pass
        return 0
    except OSError as exc:  # a full disk, a permission, a file where a folder must be: one line, no traceback
        print(f"blurkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return interrupt_status(exc)
    finally:
        kept.__exit__(None, None, None)
        warnings.formatwarning = shown
        if terminate is not None:
            signal.signal(signal.SIGTERM, terminate)
        from blurkit import _progress

        _progress.log_lines(False)  # a command's choice, not the process's: a later predict(progress=True) draws


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, systemd, Kubernetes) as an interruption: the commands stop as on Ctrl-C
    (atomic writes finished or dropped, a summary, the resume hint) instead of dying mid-line."""

    signum = signal.SIGTERM


def interrupt_status(exc: BaseException | None) -> int:
    """The exit status of a command stopped by ``exc``: 128 + the signal, 130 for Ctrl-C (SIGINT) and 143 for
    SIGTERM (:class:`Terminated`, or a :class:`blurkit.batch.Interrupted` that carries its signal)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _terminate_as_interrupt() -> Any:
    """Make SIGTERM raise :class:`Terminated` in the main thread; returns the handler to put back afterwards
    (the default one where the previous was not set from Python), or None when it cannot be set: not the main
    thread, or the platform has no SIGTERM handler."""

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError, AttributeError):
        return None
    return signal.SIG_DFL if previous is None else previous


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
