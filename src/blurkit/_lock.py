"""Exclusive locks held by a run on what it writes, so that a second process writing the same output is refused
instead of both writing it.

A lock is an advisory lock on a small hidden file (``flock`` on POSIX, ``msvcrt.locking`` on Windows), taken
without waiting: the operating system releases it when the process ends, however it ends (a ``kill -9`` or a
power cut leaves no stale lock: the file left behind is free, and the next run takes it). The file holds the
holder's process id and what it is (``4242 blurkit train``), for the refusal to name. A run removes its lock
file when it lets go; one that is killed leaves it (hidden, a few bytes).

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from blurkit._lock import Busy, Lock, beside
    >>> out = Path(tempfile.mkdtemp()) / "model.keras"
    >>> with Lock(beside(out), out, "blurkit train"):
    ...     try:
    ...         Lock(beside(out), out, "blurkit train").acquire()
    ...     except Busy as exc:
    ...         print(str(exc).split(" (pid")[0])
    another blurkit train
    >>> beside(out).exists()  # removed when released
    False
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["Busy", "Lock", "beside", "holder"]

# the byte locked (Windows' locks are mandatory: the holder's id is written after it, where others may read)
_LOCKED = 1
# the lock file of a folder with no name (the root of a file system), inside it
_NAMELESS = ".blurkit.lock"
# the longest file name (bytes) most file systems take: a longer lock name is shortened
_NAME_MAX = 255
# how long acquire tries again before it gives up (seconds): holder() takes a free lock for an instant to look
_RETRIES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}


class Busy(OSError):
    """Another process holds the lock: ``lock_file`` is its file, ``pid`` the holder's process id (None when
    it could not be read), ``owner`` what the holder said it is."""

    def __init__(self, message: str, lock_file: Path, pid: int | None, owner: str) -> None:
        super().__init__(message)
        self.lock_file, self.pid, self.owner = lock_file, pid, owner


def beside(target: str | os.PathLike) -> Path:
    """The lock file of ``target``: hidden, in the same folder (``out/.model.keras.lock``), as an absolute path.

    The folder is resolved (``.``, ``..`` and links), so that every spelling of one target has one lock file: a
    folder named ``.`` or ``a/..`` is locked as ``PARENT/.NAME.lock`` of its real name, and a folder with no
    name (``/``) inside itself (``/.blurkit.lock``). A name too long for a lock file beside it (file names stop
    at 255 bytes) is shortened, with a hash of the whole, as the atomic writes' temporary names are
    (:func:`blurkit.data.io.temp_stem`).
    """
    raw = os.fspath(target)
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    stripped = raw.rstrip("/" + os.sep) or raw  # "out/" is the folder out; "/" stays "/"
    name = os.path.basename(stripped)
    if name in ("", ".", ".."):  # a folder spelt without its name: the name of the folder it is
        real = Path(os.path.realpath(stripped))
        if not real.name:  # the root of a file system: no folder to put the lock beside it in
            return real / _NAMELESS
        folder, name = real.parent, real.name
    else:
        folder = Path(os.path.realpath(os.path.dirname(stripped) or "."))
    lock_name = f".{name}.lock"
    if len(os.fsencode(lock_name)) > _NAME_MAX:
        from blurkit.data.io import temp_stem

        lock_name = f".{temp_stem(name)}.lock"
    return folder / lock_name


class Lock:
    """An exclusive lock on the file ``path``, that a run writing ``target`` holds (``owner`` says what the run
    is, e.g. ``"blurkit train"``). Use it as a context manager, or call :meth:`acquire` and :meth:`release`.
    """

    def __init__(self, path: str | os.PathLike, target: str | os.PathLike, owner: str) -> None:
        self.path = Path(os.fspath(path))
        self.target = Path(os.fspath(target))
        self.owner = owner
        self._fd: int | None = None
        self._made: list[Path] = []  # the folders acquire made, outermost first (release removes them, if empty)

    def acquire(self) -> Lock:
        """Take the lock; the lock file (and its folder) are made if missing. A lock another process holds is
        tried again for a moment (about 0.2 s: :func:`holder` takes a free lock for an instant to look) and
        then refused, without waiting for it.

        Raises:
            Busy: Another process holds it (the message names the target, the holder and its pid).
            OSError: The lock file cannot be made or opened (a read-only folder), or something else is in its
                place (a link, a hard link, a FIFO), naming it.
        """
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this Lock")
        retries = iter(_RETRIES)
        try:
            while True:
                self._made += _makedirs(self.path.parent)
                try:
                    fd = _open(self.path, os.O_CREAT)
                except FileNotFoundError:  # the folder, made by another run's lock, removed as it let go
                    pause = next(retries, None)
                    if pause is None:
                        raise
                    time.sleep(pause)  # that run's next folder removal is over by then
                    continue
                try:
                    _lock(fd)
                except OSError as exc:
                    if exc.errno not in _HELD:
                        os.close(fd)
                        raise
                    pause = next(retries, None)
                    if pause is not None:  # held for an instant by holder(), or by a run ending now
                        os.close(fd)
                        time.sleep(pause)
                        continue
                    pid, owner = _read(fd)
                    os.close(fd)
                    raise self._busy(pid, owner) from None
                # the holder before may have removed the file as it let go, after this process opened it: the
                # lock is on the file at the path, so lock that one (another process may have made it anew)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if same:
                    break
                _unlock(fd)
                os.close(fd)
        except BaseException:
            self._remove_made()
            raise
        try:
            os.ftruncate(fd, _LOCKED)
            os.lseek(fd, _LOCKED, os.SEEK_SET)
            os.write(fd, f"{os.getpid()} {self.owner}\n".encode())
        except OSError:  # a full disk: the lock holds all the same, only the refusal cannot name the holder
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock and remove its file, and the folders :meth:`acquire` made for it when they are
        empty (a run that fails or writes nothing leaves no folder it was not asked for); nothing when not
        held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if os.name == "posix":  # removed while held: a process that opened it meanwhile finds it gone, and retries
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    os.unlink(self.path)
            os.close(fd)
        else:
            with contextlib.suppress(OSError):
                _unlock(fd)
            os.close(fd)
            with contextlib.suppress(OSError):  # Windows refuses while another process has it open: theirs
                os.unlink(self.path)
        self._remove_made()

    def _remove_made(self) -> None:
        """Remove the folders this lock made, deepest first, as long as they are empty."""
        made, self._made = self._made, []
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:  # not empty: the run wrote there (or another run's lock is in it)
                return

    def _busy(self, pid: int | None, owner: str) -> Busy:
        who = f"another {owner or self.owner}" + (f" (pid {pid})" if pid else "")
        return Busy(f"{who} is writing {self.target} (it holds the lock {self.path})", self.path, pid,
                    owner or self.owner)

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def holder(path: str | os.PathLike) -> tuple[int | None, str] | None:
    """``(pid, owner)`` of the process holding the lock file ``path`` (pid None when unreadable), or None when
    it is free or missing. Makes and removes nothing: to look, it takes a free lock for an instant (the only way
    ``flock`` tells), which :meth:`Lock.acquire` in another process, starting at that instant, waits out."""
    try:
        fd = _open(Path(os.fspath(path)))
    except OSError:  # missing (no run), a link, or not a file this process may open: no lock it can take either
        return None
    try:
        try:
            _lock(fd)
        except OSError as exc:
            if exc.errno in _HELD:
                return _read(fd)
            return None
        _unlock(fd)
        return None
    finally:
        os.close(fd)


def _open(path: Path, create: int = 0) -> int:
    """A descriptor of the lock file ``path`` (made with ``create=os.O_CREAT``), which must be a regular file
    and not a symbolic link: the lock file is written (the holder's id), and it sits in output folders that may
    be shared or received from others, where a link planted in its place (``.model.keras.lock -> ~/thesis.tex``)
    would have that file overwritten; so would a hard link (a file with another name); a FIFO in its place is
    not waited on.

    Raises:
        OSError: ``path`` is a link, a hard link or not a regular file (naming it), or cannot be opened.
    """
    flags = os.O_RDWR | create | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():  # O_NOFOLLOW's refusal (Windows: no such flag)
            raise OSError(exc.errno or errno.ELOOP, f"{path} is a symbolic link, not a lock file of blurkit's: "
                                                    "remove it", str(path)) from None
        raise
    info = os.fstat(fd)
    if path.is_symlink() or not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path} is not a regular file, not a lock file of blurkit's: remove it",
                      str(path))
    if info.st_nlink > 1:  # another name of the same file (0: removed since, as its holder let go: retried)
        os.close(fd)
        raise OSError(errno.EMLINK, f"{path} is a hard link (one file with {info.st_nlink} names), not a lock "
                                    "file of blurkit's: remove it", str(path))
    return fd


def _makedirs(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    made = []
    for each in reversed(missing):
        try:
            each.mkdir()
        except FileExistsError:  # made by another process meanwhile: theirs
            continue
        made.append(each)
    return made


def _read(fd: int) -> tuple[int | None, str]:
    """The holder's pid and owner, as written in the lock file."""
    try:
        os.lseek(fd, _LOCKED, os.SEEK_SET)
        text = os.read(fd, 4096).decode(errors="replace").strip()
    except OSError:
        return None, ""
    pid, _, owner = text.partition(" ")
    return (int(pid) if pid.isdigit() else None), owner.strip()


if sys.platform == "win32":  # pragma: no cover - tested on POSIX only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, _LOCKED)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, _LOCKED)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
