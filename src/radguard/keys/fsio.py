"""Durable file writes shared by the custody subsystems (keys, quarantine, packages, journals).

DESIGN invariant 1: every write is atomic (temporary file in the same folder, fsync, rename, fsync of
the folder), so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["atomic_write", "ensure_private_dir", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """fsync a folder so a rename inside it is durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_private_dir(path: Path, mode: int = 0o700) -> Path:
    """Create ``path`` (and parents) if needed; a newly created leaf gets ``mode``."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
    return path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` atomically with permissions ``mode``.

    With ``exclusive`` the file is only created if it does not exist yet (``os.link`` of the temporary
    file, which fails if the name is taken): returns ``False`` when another writer won the race.

    Raises
    ------
    OSError
        The folder is not writable or the disk is full (the temporary file is removed).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
        return True
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
