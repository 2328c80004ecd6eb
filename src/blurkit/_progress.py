"""Progress bars: tqdm's on a terminal; in a log (a pipe, a file, a CI job, cron) a plain line now and then.

Off a terminal a bar is its frames joined by carriage returns, so the commands drew none there, and a long
run printed nothing until its summary: CI services stop a job that is silent for ten minutes. With
:func:`log_lines` on (the CLI turns it on when stderr is not a terminal), the bars made by :func:`bar` print
one plain line every :data:`LOG_INTERVAL` seconds at most, and one when they close; a run shorter than that
prints none. ``blurkit train`` in a log (Keras' one line per epoch) prints a line during an epoch at the same
pace (:func:`blurkit.training._log_steps`, on stdout with the epoch lines).

Examples:
    >>> import io
    >>> out = io.StringIO()
    >>> lines = _Lines(out)
    >>> _ = lines.write("\\rdeblur:  50%|#####     | 1/2")
    >>> _ = lines.write("\\rdeblur:  50%|#####     | 1/2")  # the same frame again: not repeated
    >>> _ = lines.write("\\n")
    >>> out.getvalue()
    'deblur:  50%|#####     | 1/2\\n'
"""

from __future__ import annotations

import sys
from typing import IO, Any

#: Seconds between two lines of a bar in a log.
LOG_INTERVAL = 30.0

_log = False


def log_lines(on: bool = True) -> None:
    """Draw the bars of :func:`bar` as plain lines (on stderr, the first after :data:`LOG_INTERVAL` seconds,
    then at most one every that many, and the last one when the bar closes) instead of redrawn frames; a
    large photo's tile bar is left out."""
    global _log
    _log = bool(on)


def logging() -> bool:
    """Whether the bars are drawn as log lines (see :func:`log_lines`)."""
    return _log


class _Lines:
    """A stream for tqdm that writes each frame as a line: the carriage returns dropped, a frame that repeats
    the last one (tqdm's at closing) not written again."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream, self.last = stream, ""

    def write(self, text: str) -> int:
        frame = text.replace("\r", "").strip()
        if frame and frame != self.last:
            self.stream.write(frame + "\n")
            self.last = frame
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar (``tqdm(iterable, **kwargs)``), drawn as log lines when :func:`logging`."""
    from tqdm.auto import tqdm

    if _log and not kwargs.get("disable"):
        # miniters=1: a line when LOG_INTERVAL has passed at an update, however slow the updates are
        kwargs.update(file=_Lines(sys.stderr), delay=LOG_INTERVAL, mininterval=LOG_INTERVAL,
                      maxinterval=LOG_INTERVAL, miniters=1, ascii=True, ncols=100, dynamic_ncols=False, leave=True)
    return tqdm(iterable, **kwargs)
