"""The per-file work of an export: walk, judge, (de-identify), envelope, keep the record values.

:func:`prepare` runs on the engine's process pool (:func:`radguard.engine.run_shared`, one process
per core), one input file per call:

1. the file is opened once (:func:`radguard.dicomio.open_path`: read into memory up to the bounded
   reader's threshold) and walked by the bounded reader (DESIGN invariant 3);
2. :func:`radguard.export.selection.judge` decides whether it may be exported;
3. the **same bytes** that were walked are streamed through AES-256-CBC into their CMS envelope
   (PS3.15 D.1, :func:`radguard.export.cms.envelope`), or re-encoded by the de-identification
   engine first (in memory, never written in plain) and walked again: what is checked is what is
   exported, and the file is read from disk once;
4. the DICOMDIR record values (:data:`radguard.export.dicomdir.RECORD_TAGS`) come from that walk,
   so the header is never parsed a second time; only leaf types other than IMAGE keep a pydicom
   header (their records need sequences the walk does not collect).

Where the stored bytes go (ciphertext only, unless the user asked for an unencrypted medium): for a
folder target one file per input (0600, fsynced, renamed into the medium's tree later); for an ISO
image **straight into the image being built**: the envelope's length is known before encryption
(:class:`radguard.export.cms.EnvelopeHead`), so the worker reserves its extent
(:func:`radguard.export.iso9660.reserve`) and ``pwrite`` s the envelope there. Each byte is read
once, encrypted once, hashed once (the stored SHA-256 of the signed manifest) and written once.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from radguard.dicomio import ByteSource, MemorySource, ReadLimits, WalkResult, open_path, walk
from radguard.export.cms import CHUNK, Digests, EnvelopeHead, Recipients, envelope, envelope_body
from radguard.export.dicomdir import record_tail, record_tail_halves, record_values
from radguard.export.errors import ExportError
from radguard.export.iso9660 import ExtentWriter, reserve
from radguard.export.policy import record_types
from radguard.export.selection import SelectedFile, Skipped, judge

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["FileJob", "Prepared", "Staged", "close_image", "image_fd", "prepare", "stage_bytes"]

_KEYS = (0x0020000D, 0x0020000E, 0x00080018)  # Study, Series, SOP Instance UID


@dataclass(frozen=True)
class FileJob:
    """What every call of :func:`prepare` shares (built once, inherited by the workers)."""

    stage: str
    limits: ReadLimits
    recipients: Recipients | None
    image: str | None  # ISO target: the image being built, envelopes go straight into it
    deid: Callable[[Dataset], Dataset] | None = None


@dataclass(frozen=True, slots=True)
class Staged:
    """Where a file's stored bytes (envelope, or plain copy) wait: ``name`` in the stage folder,
    from ``offset`` for ``digests.stored_size`` bytes."""

    name: str
    offset: int
    digests: Digests

    def __reduce__(self) -> tuple[type[Staged], tuple[object, ...]]:
        return Staged, (self.name, self.offset, self.digests)


@dataclass(frozen=True, slots=True)
class Prepared:
    """The outcome for input number ``index``: skipped, or selected with its staged bytes and the
    values of its DICOMDIR records."""

    index: int
    outcome: SelectedFile | Skipped
    staged: Staged | None = None
    values: dict[int, str] | None = None
    transfer_syntax: str = ""
    tail: bytes | None = None
    header: Dataset | None = None
    halves: tuple[bytes, bytes | None] | None = None

    def __reduce__(self) -> tuple[type[Prepared], tuple[object, ...]]:
        """Unpickled by the constructor (a frozen slots dataclass otherwise restores its
        fields through ``dataclasses.fields``, ~20 us per object, in the parent of the
        workers)."""
        return Prepared, (self.index, self.outcome, self.staged, self.values,
                          self.transfer_syntax, self.tail, self.header, self.halves)


class _SourceReader:
    """``read(n)`` over a :class:`ByteSource`, so the walked bytes are the bytes enveloped; views
    into an in-memory source rather than copies of it."""

    def __init__(self, src: ByteSource):
        self.src, self.pos = src, 0
        self.view = memoryview(src.data) if isinstance(src, MemorySource) else None

    def read(self, n: int = CHUNK) -> bytes | memoryview:
        data = (self.view[self.pos:self.pos + n] if self.view is not None
                else self.src.read_at(self.pos, n))
        self.pos += len(data)
        return data


def _copy(src: BinaryIO | _SourceReader, size: int, dst: BinaryIO | ExtentWriter) -> Digests:
    sha, n = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        sha.update(chunk)
        dst.write(chunk)
        n += len(chunk)
    if n != size:
        raise ExportError(f"expected {size} bytes, read {n}",
                          remedy="the file changed during the export; run it again")
    return Digests(sha.hexdigest(), n, sha.hexdigest(), n)


_IMAGES: dict[tuple[int, str], int] = {}


def image_fd(path: str) -> int:
    """This process's own descriptor of the image being built (``flock`` in
    :func:`radguard.export.iso9660.reserve` needs one open file description per process)."""
    key = (os.getpid(), path)
    if key not in _IMAGES:
        _IMAGES[key] = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    return _IMAGES[key]


def close_image(path: str) -> None:
    """Close this process's descriptor of the image ``path``, if open."""
    fd = _IMAGES.pop((os.getpid(), path), None)
    if fd is not None:
        os.close(fd)


def stage_bytes(job: FileJob, name: str, src: BinaryIO | _SourceReader, size: int) -> Staged:
    """Envelope (or copy, unencrypted) ``size`` bytes of ``src``: straight into the image at an
    extent reserved for its exact length (ISO target), or into a file of the stage folder."""
    if job.image is not None:
        fd = image_fd(job.image)
        if job.recipients is None:
            offset = reserve(fd, size)
            digests = _copy(src, size, ExtentWriter(fd, offset))
        else:
            head = EnvelopeHead.new(size, job.recipients)
            offset = reserve(fd, head.length)
            digests = envelope_body(head, src, ExtentWriter(fd, offset))  # type: ignore[arg-type]
        return Staged(os.path.basename(job.image), offset, digests)
    fd = os.open(os.path.join(job.stage, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb", buffering=CHUNK) as dst:
        if job.recipients is None:
            digests = _copy(src, size, dst)
        else:
            digests = envelope(src, size, dst, job.recipients)  # type: ignore[arg-type]
        dst.flush()
        os.fsync(dst.fileno())
    return Staged(name, 0, digests)


def _deidentified(job: FileJob, src: ByteSource, path: str) -> tuple[bytes, WalkResult]:
    import pydicom

    assert job.deid is not None
    data = src.data if isinstance(src, MemorySource) else Path(path).read_bytes()
    ds = job.deid(pydicom.dcmread(io.BytesIO(data)))
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    out = buf.getvalue()
    return out, walk(MemorySource(out), job.limits)


def _header(content: ByteSource, path: str) -> Dataset:
    import pydicom

    if isinstance(content, MemorySource):
        return pydicom.dcmread(io.BytesIO(content.data), stop_before_pixels=True)
    return pydicom.dcmread(path, stop_before_pixels=True)  # large file, read on demand


def prepare(job: FileJob, item: tuple[int, str]) -> Prepared:
    """Walk, judge and stage input ``item`` = (index, path); see the module docstring.

    Raises
    ------
    ExportError, EnvelopeError
        The file changed while it was read (the export stops: it is all or nothing).
    """
    index, path = item
    try:
        src = open_path(path)
    except OSError as exc:
        return Prepared(index, Skipped(path, f"cannot be read: {exc.strerror}"))
    try:
        result = walk(src, job.limits)
        outcome = judge(Path(path), result)
        if isinstance(outcome, Skipped):
            return Prepared(index, outcome)
        content: ByteSource = src
        if job.deid is not None:
            data, result = _deidentified(job, src, path)
            content = MemorySource(data)
        values = record_values(result.values, [(r.tag, r.vr, r.depth) for r in result.refs
                                               if r.tag in result.values])
        values.setdefault(0x00080016, outcome.sop_class)
        if not all(values.get(t) for t in _KEYS):
            raise ExportError("the de-identified data set lacks a Study, Series or SOP Instance "
                              "UID", subject=path, remedy="check the de-identification options")
        table, default = record_types()
        rtype = table.get(values[0x00080016], default)
        header, tail, halves = None, None, None
        if rtype != "IMAGE":
            header = _header(content, path)
            if header.get("InstanceNumber"):
                tail, header = record_tail(header, rtype), None
            elif (halves := record_tail_halves(header, rtype)) is not None:
                header = None  # the writer puts the invented number between the halves
        staged = stage_bytes(job, f"{index:07d}", _SourceReader(content), content.size)
        return Prepared(index, outcome, staged, values, result.meta.get(0x00020010, ""), tail,
                        header, halves)
    finally:
        src.close()
