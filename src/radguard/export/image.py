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
def beside(work: Callable[[], bytes]) -> Iterator[list[bytes]]:
    """Run ``work`` in a forked child process while the ``with`` body runs in this one; when the
    body ends, wait for the child and append the bytes ``work`` returned to the yielded list.
    Used to plan and write an image's directories while the DICOMDIR and the manifest are made:
    both cores busy instead of one. ``work`` gets nothing back from this process: what it
    changes in memory stays in the child, only its result and what it wrote to files count.

    Raises
    ------
    ExportError
        ``work`` failed or its process died (after the body completed without an error).
    """
    out: list[bytes] = []
    if not hasattr(os, "fork"):
        out.append(work())
        yield out
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no cleanup handlers, no buffers flushed, only os._exit
        code = 0
        try:
            os.close(r)
            _write_all(w, b"\x00" + work())
        except BaseException as exc:
            code = 1
            with contextlib.suppress(BaseException):
                _write_all(w, b"\x01" + f"{type(exc).__name__}: {exc}".encode()[:4000])
        finally:
            os._exit(code)
    os.close(w)
    try:
        yield out
    finally:
        with os.fdopen(r, "rb") as fh:  # read to the end before waiting: the child may block
            answer = fh.read(_MAX_ANSWER)
        status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) != 0 or answer[:1] != b"\x00":
        detail = answer[1:].decode(errors="replace") if answer[:1] == b"\x01" else ""
        raise ExportError("writing the image's directories failed"
                          + (f": {detail}" if detail else f" (status {status})"),
                          remedy="run the export again; report it if it persists")
    out.append(answer[1:])


_MAX_ANSWER = 64 * 1024 * 1024


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


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
