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
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["StagedWrites", "sync_dirs", "write_atomic"]

_MADE_DIRS: set[Path] = set()
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


def _open_temporary(dst: Path) -> tuple[int, str]:
    """A new temporary file beside ``dst`` (its folder made once per process): (fd, path)."""
    folder = dst.parent
    if folder not in _MADE_DIRS:
        folder.mkdir(parents=True, exist_ok=True)
        _MADE_DIRS.add(folder)
    tmp = str(folder / f".{dst.name}.{os.getpid()}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        try:
            return os.open(tmp, flags, 0o644), tmp
        except FileNotFoundError:  # the folder went away since this process made it
            folder.mkdir(parents=True, exist_ok=True)
            return os.open(tmp, flags, 0o644), tmp
    except FileExistsError:  # left by a killed run with the same process id: a fresh name
        return tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=folder)


def write_atomic(data: bytes | Sequence[bytes | memoryview], dst: Path, *,
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


_WRITEBACK = getattr(os, "POSIX_FADV_DONTNEED", None)


class StagedWrites:
    """The outputs of one batch, made durable together: same guarantee as :func:`write_atomic`.

    :meth:`stage` writes a temporary file and asks the kernel to start writing it back now
    (``posix_fadvise(POSIX_FADV_DONTNEED)`` starts write-back of the dirty pages on Linux; it is a
    hint, never the guarantee), so the disk works while the next files are de-identified.
    :meth:`commit` then calls ``fdatasync`` on every temporary file (the guarantee: each file's data are
    on disk; after the first one most have nothing left to wait for, and one journal commit
    covers the batch) and only then renames them into place. A file is reported done only after
    :meth:`commit` says it is durable and named; the folders are fsynced by :func:`sync_dirs`.
    Never ``os.sync()`` or ``syncfs()``: they would flush other programs' data too.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[int, str, Path]] = []

    def __len__(self) -> int:
        return len(self._staged)

    def stage(self, data: bytes | Sequence[bytes | memoryview], dst: Path) -> str:
        """Write ``data`` to a temporary file beside ``dst``; returns its path (not yet durable,
        not yet renamed). Raises ``OSError`` (nothing left behind) when it cannot be written."""
        fd, tmp = _open_temporary(dst)
        try:
            _write_all(fd, data)
            if _WRITEBACK is not None:
                with contextlib.suppress(OSError):
                    os.posix_fadvise(fd, 0, 0, _WRITEBACK)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._staged.append((fd, tmp, dst))
        return tmp

    def commit(self) -> dict[str, OSError]:
        """Flush every staged file, then rename the flushed ones into place; returns the error of
        each temporary file that could not be made durable or renamed (it is removed)."""
        errors: dict[str, OSError] = {}
        staged, self._staged = self._staged, []
        for fd, tmp, _ in staged:
            try:
                os.fdatasync(fd)
            except OSError as exc:
                errors[tmp] = exc
            finally:
                os.close(fd)
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
        """Close and remove every staged temporary file (nothing is renamed)."""
        staged, self._staged = self._staged, []
        for fd, tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.close(fd)
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
