"""Assembling one ISO image of an export (:mod:`radguard.export.iso9660` does the format).

For a single medium the image the workers wrote the envelopes into *is* the medium: only the small
files (DICOMDIR, README.TXT, INDEX.HTM, MANIFEST.*) and the directories are added. When an export
is split, each medium gets an image of its own and its envelopes are copied in by extent
(``copy_file_range``: in the kernel, no user-space copy).

:func:`publish` makes an image durable and visible atomically: fsync of the file, a no-replace
hard link to the target name (``os.link`` fails if the target appeared meanwhile: never an
overwrite; ``rename`` after a check on file systems without hard links), fsync of the folder.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from radguard.export.cms import Digests, EnvelopeHead, Recipients, envelope_body
from radguard.export.errors import ExportError, TargetExists
from radguard.export.iso9660 import SECTOR, ExtentWriter, IsoFile, reserve

__all__ = ["add_bytes", "add_envelope", "beside", "blank", "copy_extent", "publish"]

_BLOCK = 1024 * 1024


def add_bytes(fd: int, rel: str, data: bytes) -> IsoFile:
    """Write ``data`` at a new extent of the image."""
    offset = reserve(fd, len(data))
    ExtentWriter(fd, offset).write(data)
    return IsoFile(rel, offset // SECTOR, len(data))


def add_envelope(fd: int, rel: str, data: bytes, recipients: Recipients) -> tuple[IsoFile,
                                                                                  Digests]:
    """Envelope ``data`` (PS3.15 D.1) straight into a new extent of the image."""
    head = EnvelopeHead.new(len(data), recipients)
    offset = reserve(fd, head.length)
    digests = envelope_body(head, io.BytesIO(data), ExtentWriter(fd, offset))  # type: ignore[arg-type]
    return IsoFile(rel, offset // SECTOR, head.length), digests


def copy_extent(src: int, offset: int, dst: int, rel: str, length: int) -> IsoFile:
    """Copy ``length`` bytes of image ``src`` from ``offset`` to a new extent of image ``dst``."""
    at = reserve(dst, length)
    done = 0
    while done < length:
        n = os.copy_file_range(src, dst, length - done, offset + done, at + done)
        if n == 0:
            raise OSError(errno.EIO, "short copy between images")
        done += n
    return IsoFile(rel, at // SECTOR, length)


def blank(fd: int, offset: int, length: int) -> None:
    """Overwrite an extent with zeros (a dropped duplicate's envelope stays off the medium)."""
    zeros = bytes(min(length, _BLOCK))
    end = offset + length
    while offset < end:
        offset += os.pwrite(fd, zeros[: end - offset], offset)


@contextlib.contextmanager
def beside(work: Callable[[], None]) -> Iterator[None]:
    """Run ``work`` in a forked child process while the ``with`` body runs in this one, and wait
    for it when the body ends (used to write an image's directories while the DICOMDIR and the
    manifest are made: both cores busy instead of one). ``work`` must only write to descriptors
    (``pwrite``); nothing it changes in memory comes back.

    Raises
    ------
    ExportError
        ``work`` failed or its process died (after the body completed without an error).
    """
    if not hasattr(os, "fork"):
        work()
        yield
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no cleanup handlers, no buffers flushed, only os._exit
        code = 0
        try:
            os.close(r)
            work()
        except BaseException as exc:
            code = 1
            with contextlib.suppress(BaseException):
                os.write(w, f"{type(exc).__name__}: {exc}".encode()[:4000])
        finally:
            os._exit(code)
    os.close(w)
    try:
        yield
    finally:
        with os.fdopen(r, "rb") as fh:
            message = fh.read(4000).decode(errors="replace")
        status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) != 0:
        raise ExportError("writing the image's directories failed"
                          + (f": {message}" if message else f" (status {status})"),
                          remedy="run the export again; report it if it persists")


def publish(fd: int, tmp: Path, target: Path) -> None:
    """fsync ``tmp`` and give it the name ``target`` without ever replacing an existing file."""
    os.fsync(fd)
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise TargetExists("the output appeared while exporting; RadGuard never overwrites",
                           subject=str(target), remedy="choose a new --out path") from None
    except OSError as exc:  # no hard links here (FAT, some network file systems)
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if target.exists() or target.is_symlink():
            raise TargetExists("the output appeared while exporting; RadGuard never "
                               "overwrites", subject=str(target),
                               remedy="choose a new --out path") from None
        os.rename(tmp, target)
    else:
        tmp.unlink()
    dfd = os.open(target.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(dfd)
    finally:
        os.close(dfd)
