"""Atomic, durable output writes of the de-identifier (DESIGN.md: temp + fsync + rename).

:func:`write_atomic` writes one file: a temporary file beside the destination, ``fdatasync`` of our
own descriptor, then a rename, so the name never points at data that are not on disk.
:class:`StagedWrites` gives the same guarantee to a batch of files with one wait instead of one per
file, and :func:`sync_dirs` makes the renames durable (an ``fsync`` per output folder). Never
``os.sync()`` or ``syncfs()``: they flush every dirty page of the machine or file system, other
programs' included.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["StagedWrites", "sync_dirs", "write_atomic"]

_MADE_DIRS: set[str] = set()
"""Output folders this process has already created (one ``mkdir`` per folder, not per file)."""
_IOV_MAX = 1024


def _write_all(fd: int, data: bytes | Sequence[bytes | memoryview]) -> None:
    """Write every byte of ``data`` to ``fd``: one ``writev`` for the pieces, then whatever a short
    write left."""
    pieces = [data] if isinstance(data, bytes) else list(data)
    total = sum(len(p) for p in pieces)
    done = os.writev(fd, pieces) if len(pieces) <= _IOV_MAX else 0
    if done < total:
        view = memoryview(b"".join(pieces))[done:]
        while view:
            view = view[os.write(fd, view):]


def _open_temporary(dst: str | os.PathLike[str]) -> tuple[int, str]:
    """A new temporary file beside ``dst`` (its folder made once per process): (fd, path)."""
    dst = os.fspath(dst)
    folder, name = os.path.split(dst)
    folder = folder or "."
    if folder not in _MADE_DIRS:
        os.makedirs(folder, exist_ok=True)
        _MADE_DIRS.add(folder)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            return os.open(tmp, flags, 0o644), tmp
        except FileNotFoundError:  # the folder went away since this process made it
            os.makedirs(folder, exist_ok=True)
            return os.open(tmp, flags, 0o644), tmp
    except FileExistsError:  # left by a killed run with the same process id: a fresh name
        return tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)


def write_atomic(data: bytes | Sequence[bytes | memoryview], dst: str | os.PathLike[str], *,
                 commit: bool = True) -> str:
    """Write ``data`` to ``dst`` via a temporary file in the same folder, ``fdatasync`` it and
    rename it into place (the data are on disk before the name points at them; the folder entry
    is made durable by :func:`sync_dirs`, once per folder, by the caller).

    Only our own file is flushed (``fdatasync`` of our descriptor, never ``os.sync()``, which
    would flush every dirty page of the machine). With ``commit=False`` the temporary file is
    written and flushed but not renamed; its path is returned and the caller renames it.
    Batches use :class:`StagedWrites` instead (same guarantee, one wait per batch)."""
    fd, tmp = _open_temporary(dst)
    try:
        try:
            _write_all(fd, data)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if commit:
            os.replace(tmp, dst)
        return tmp
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Flusher:
    """This process's ``fdatasync`` threads (:data:`FLUSH_THREADS`, started on first use and again
    after a fork): they wait on the disk while the calling thread goes on de-identifying. Each
    queued file is flushed by one of them, and the result (``None`` or the ``OSError``) is handed
    back to its :class:`StagedWrites`."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.SimpleQueue[tuple[StagedWrites, list[tuple[int, str]]]] = \
            queue.SimpleQueue()
        for i in range(FLUSH_THREADS):
            threading.Thread(target=self._run, name=f"radguard-fdatasync-{i}", daemon=True).start()

    def _run(self) -> None:
        while True:
            owner, group = self.queue.get()
            results: list[tuple[str, OSError | None]] = []
            if _WRITEBACK is not None:  # start every file's write-back (and block allocation)
                for fd, _ in group:     # first, so one journal commit covers the whole group
                    with contextlib.suppress(OSError):
                        os.posix_fadvise(fd, 0, 0, _WRITEBACK)
            for fd, tmp in group:
                try:
                    os.fdatasync(fd)
                    results.append((tmp, None))
                except OSError as exc:
                    results.append((tmp, exc))
                except BaseException as exc:  # never leave a waiting commit without an answer
                    results.append((tmp, OSError(errno.EIO, f"fdatasync failed: {type(exc).__name__}")))
            owner._flushed(results)


_WRITEBACK = getattr(os, "POSIX_FADV_DONTNEED", None)
"""``posix_fadvise`` advice that starts write-back of a file's dirty pages on Linux (a hint)."""
FLUSH_THREADS = 2
"""``fdatasync`` threads per process: concurrent calls share the file system's journal commits."""
FLUSH_GROUP = 4
"""Staged files handed to the flusher at a time (one thread wake-up per group, not per file)."""
_FLUSHER: list[_Flusher] = []


def _flusher() -> _Flusher:
    """This process's :class:`_Flusher` (a forked worker starts its own: threads do not fork)."""
    if not _FLUSHER or _FLUSHER[0].pid != os.getpid():
        _FLUSHER[:] = [_Flusher()]
    return _FLUSHER[0]


class StagedWrites:
    """The outputs of one batch, each made durable before it is named: same guarantee as
    :func:`write_atomic`, without the caller waiting on the disk file by file.

    :meth:`stage` writes a temporary file and queues it (in groups of :data:`FLUSH_GROUP`) to
    this process's ``fdatasync`` threads (:class:`_Flusher`), so the disk works while the caller
    de-identifies the next files.
    :meth:`commit` waits until every staged file has been flushed (the guarantee: each file's data
    are on disk), and only then renames the flushed ones into place. A file is reported done only
    after :meth:`commit` says it is durable and named; the folders are fsynced by
    :func:`sync_dirs`. Never ``os.sync()`` or ``syncfs()``: they would flush other programs' data
    too.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[int, str, str | os.PathLike[str]]] = []
        self._group: list[tuple[int, str]] = []
        self._done: dict[str, OSError | None] = {}
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._staged)

    def stage(self, data: bytes | Sequence[bytes | memoryview],
              dst: str | os.PathLike[str]) -> str:
        """Write ``data`` to a temporary file beside ``dst`` and queue it to be flushed; returns
        its path (not yet known durable, not yet renamed). Raises ``OSError`` (nothing left
        behind) when it cannot be written."""
        fd, tmp = _open_temporary(dst)
        try:
            _write_all(fd, data)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._staged.append((fd, tmp, dst))
        self._group.append((fd, tmp))
        if len(self._group) >= FLUSH_GROUP:
            self._hand_over()
        return tmp

    def _hand_over(self) -> None:
        if self._group:
            group, self._group = self._group, []
            _flusher().queue.put((self, group))

    def _flushed(self, results: list[tuple[str, OSError | None]]) -> None:
        with self._cond:
            self._done.update(results)
            self._cond.notify_all()

    def _wait(self, staged: list[tuple[int, str, str | os.PathLike[str]]]) -> dict[str, OSError | None]:
        """Wait until the flusher is done with every staged descriptor; close them."""
        self._hand_over()
        with self._cond:
            self._cond.wait_for(lambda: len(self._done) >= len(staged))
            done, self._done = self._done, {}
        for fd, _, _ in staged:
            with contextlib.suppress(OSError):
                os.close(fd)
        return done

    def commit(self) -> dict[str, OSError]:
        """Wait for every staged file to be flushed, then rename the flushed ones into place;
        returns the error of each temporary file that could not be made durable or renamed (it
        is removed)."""
        staged, self._staged = self._staged, []
        try:
            done = self._wait(staged)
        except BaseException:  # interrupted while waiting: abort() can still remove them
            self._staged = staged + self._staged
            raise
        errors = {tmp: exc for tmp, exc in done.items() if exc is not None}
        for _, tmp, dst in staged:
            if tmp not in errors:
                try:
                    os.replace(tmp, dst)
                except OSError as exc:
                    errors[tmp] = exc
            if tmp in errors:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return errors

    def abort(self) -> None:
        """Remove every staged temporary file (nothing is renamed); waits for the flusher to let
        go of their descriptors first."""
        staged, self._staged = self._staged, []
        self._wait(staged)
        for _, tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def sync_dirs(folders: Iterable[Path]) -> None:
    """``fsync`` each folder so the renames into it survive a crash (once per folder per run)."""
    for folder in set(folders):
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
