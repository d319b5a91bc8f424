"""De-identify one file: :func:`deidentify_file` (bounded read, de-identify, atomic write).

The source is walked by the bounded reader first (DESIGN.md invariant 3); pydicom parses it only when
the walk completed without a limit or structural problem. Non-DICOM, hostile and unreadable inputs
become a report with a finding, never an exception. The output is written to a temporary file in the
destination folder, flushed to disk and renamed into place (:mod:`.durable`; a batch stages its
outputs and flushes them together); the source is opened read-only and never written. DICOMDIR
files are not de-identified (their records point at the old files): rebuild the DICOMDIR of the
de-identified tree instead (``radguard media export`` does).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ImplicitVRLittleEndian

from radguard import __version__
from radguard.deid.dataset import deidentify_dataset
from radguard.deid.durable import StagedWrites, sync_dirs, write_atomic
from radguard.deid.options import DeidOptions
from radguard.deid.report import FileDeidReport, FileStatus
from radguard.deid.tables import load_json, parse_tag
from radguard.dicomio import MemorySource, ReadLimits, WalkResult, open_path, walk
from radguard.errors import RadGuardError
from radguard.findings import ControlRef, Evidence, Finding, Severity

__all__ = ["REFUSING_PROBLEMS", "StagedWrites", "deidentify_file", "deidentify_path", "quiet_pydicom",
           "sync_dirs", "write_atomic"]

REFUSING_PROBLEMS = frozenset({"limit-exceeded", "malformed", "truncated", "value-past-eof",
                               "item-length-overrun", "invalid-vr"})
"""Problems of the bounded walk after which RadGuard does not hand the file to pydicom."""

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_CONTROLS = (ControlRef("NIST-CSF-2.0", "PR.DS-01"), ControlRef("HIPAA", "164.514(b)"))


def _refuse(src: str, check: str, message: str, remedy: str, offset: int | None = None,
            severity: Severity = Severity.MEDIUM) -> FileDeidReport:
    finding = Finding(check, severity, message, Evidence(str(src), offset), _CONTROLS, remedy,
                      asset=str(src))
    return FileDeidReport(str(src), None, FileStatus.REFUSED, findings=(finding,), message=message)


@contextlib.contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records for the block: they quote element values."""
    logger = logging.getLogger("pydicom")
    previous = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = previous


@cache
def file_meta_removals() -> tuple[int, ...]:
    """File Meta elements that name the sending or receiving system (``rules.json``): removed."""
    return tuple(parse_tag(t) for t in load_json("rules.json")["file_meta_remove"]["tags"])


def _encode(ds: Dataset) -> io.BytesIO:
    """Encode as a PS3.10 file; on failure decode every raw element (an encoding that does not
    match the transfer syntax, e.g. implicit VR under a JPEG syntax) and try again; last, without
    enforcing the File Meta Information (a data set without SOP Class UID)."""
    attempts = 0
    while True:
        out = io.BytesIO()
        try:
            pydicom.dcmwrite(out, ds, enforce_file_format=attempts < 2)
            return out
        except (AttributeError, TypeError, ValueError):
            attempts += 1
            if attempts > 2:
                raise
            if attempts == 1:
                for elem in ds.iterall():
                    _ = elem.value


def deidentify_file(src: Path, dst: Path, options: DeidOptions,
                    limits: ReadLimits | None = None, *, commit: bool = True,
                    engine: str = "auto", staging: StagedWrites | None = None) -> FileDeidReport:
    """De-identify ``src`` into ``dst`` (or ``dst.parent/<new SOP Instance UID>.dcm`` with ``rename``).

    ``commit=False`` leaves the output in a temporary file named by ``report.pending`` (batch use,
    see :func:`write_atomic`). With ``staging`` the output is staged in that batch instead
    (``report.pending`` names the temporary file; it counts as written only after
    :meth:`StagedWrites.commit`). Never raises for bad input: the report's status is REFUSED (with a
    finding) for non-DICOM, hostile or unreadable files and FAILED when the output cannot be
    written. pydicom's warnings are silenced here: they quote values, which are PHI (DESIGN.md
    invariant 4).

    ``engine``: ``"auto"`` takes the byte-level path (:mod:`.fastpath`) when the file allows it and
    the pydicom path otherwise (the report's ``engine`` and ``fallback`` say which and why);
    ``"pydicom"`` forces the pydicom path (used to prove both give the same data sets).
    """
    with quiet_pydicom():
        return deidentify_path(os.fspath(src), os.fspath(dst), options, limits, commit=commit,
                               engine=engine, staging=staging)


def _write(data: bytes | Sequence[bytes | memoryview], dst: str, commit: bool,
           staging: StagedWrites | None) -> str | None:
    """Write the output: staged in the batch, or durable on its own; returns the temporary file
    still pending (``None`` when the output is already in place)."""
    if staging is not None:
        return staging.stage(data, dst)
    tmp = write_atomic(data, dst, commit=commit)
    return None if commit else tmp


def _fast(src: str, dst: str, data: bytes | None, result: WalkResult, options: DeidOptions,
          commit: bool, staging: StagedWrites | None) -> FileDeidReport | str:
    """The byte-level path (:mod:`.fastpath`): a report, or why this file needs the pydicom path."""
    from radguard.deid.fastpath import Fallback, deidentify_bytes

    if data is None:
        return "file read on demand (larger than the in-memory threshold)"
    try:
        out = deidentify_bytes(data, result, options)
    except Fallback as exc:
        return str(exc)
    except RadGuardError:
        raise
    except Exception as exc:  # an unexpected structure: the pydicom path decides
        return f"byte-level path failed ({type(exc).__name__})"
    if options.rename and out.sop_instance_uid:
        dst = os.path.join(os.path.dirname(dst), f"{out.sop_instance_uid}.dcm")
    try:
        tmp = _write(out.pieces, dst, commit, staging)
    except OSError as exc:
        return FileDeidReport(src, dst, FileStatus.FAILED, out.changes,
                              message=f"cannot write output: {exc.strerror}", engine="bytes")
    return FileDeidReport(src, dst, FileStatus.DEIDENTIFIED, out.changes, pending=tmp,
                          engine="bytes")


def deidentify_path(src: str, dst: str, options: DeidOptions, limits: ReadLimits | None = None,
                    *, commit: bool = True, engine: str = "auto",
                    staging: StagedWrites | None = None) -> FileDeidReport:
    """:func:`deidentify_file` on path strings, without silencing pydicom: the caller does (a
    batch wraps all its files in one :func:`quiet_pydicom`)."""
    with contextlib.suppress(OSError):  # os.stat raises when dst does not exist (the usual case)
        if os.path.samestat(os.stat(dst), os.stat(src)):
            return _refuse(src, "deid.output-is-input", "the output would overwrite the input",
                           "choose an --out folder outside the input", severity=Severity.HIGH)
    try:
        source = open_path(src)
    except OSError as exc:
        return _refuse(src, "deid.unreadable", f"cannot open: {exc.strerror}",
                       "check the path and permissions")
    try:
        result = walk(source, limits or ReadLimits())
        data = source.data if isinstance(source, MemorySource) else None
        if not result.is_dicom:
            return _refuse(src, "deid.not-dicom", "not a DICOM file: nothing written",
                           "remove it from the input or ignore this entry", severity=Severity.LOW)
        bad = [p for p in result.problems if p.code in REFUSING_PROBLEMS]
        if bad or not result.completed:
            first = bad[0] if bad else None
            return _refuse(src, "deid.unsafe-structure",
                           f"the bounded reader stopped: {first.message if first else 'incomplete'}",
                           "run 'radguard media scan' on it; de-identify only files that pass",
                           offset=first.offset if first else None, severity=Severity.HIGH)
        if result.meta.get(0x00020002) == MEDIA_STORAGE_DIRECTORY:
            return _refuse(src, "deid.dicomdir", "DICOMDIR not copied: its records name the "
                           "original patient and files", "rebuild a DICOMDIR for the output",
                           severity=Severity.INFO)
        fallback = ""
        if engine != "pydicom":
            fast = _fast(src, dst, data, result, options, commit, staging)
            if isinstance(fast, FileDeidReport):
                return fast
            fallback = fast
        try:
            ds = pydicom.dcmread(io.BytesIO(data) if data is not None else src, force=True)
        except Exception as exc:  # pydicom's many errors become one finding
            return replace(_refuse(src, "deid.unreadable", f"pydicom cannot parse it "
                                   f"({type(exc).__name__})", "run 'radguard media scan' on it"),
                           fallback=fallback)
    finally:
        source.close()
    try:
        changes = deidentify_dataset(ds, options)
        meta = ds.file_meta if isinstance(getattr(ds, "file_meta", None), FileMetaDataset) \
            else FileMetaDataset()
        if "TransferSyntaxUID" not in meta:
            meta.TransferSyntaxUID = UID(result.transfer_syntax or ImplicitVRLittleEndian)
        for tag in file_meta_removals():
            if tag in meta:
                del meta[tag]
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = f"RADGUARD_{__version__}"[:16]
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
        out = _encode(ds)
    except RadGuardError:
        raise
    except Exception as exc:  # a data set pydicom cannot encode is refused
        return replace(_refuse(src, "deid.unwritable", f"cannot encode the de-identified data set "
                               f"({type(exc).__name__}: {str(exc)[:120]})",
                               "report this file's structure"), fallback=fallback)
    if options.rename and "SOPInstanceUID" in ds:
        dst = os.path.join(os.path.dirname(dst), f"{ds.SOPInstanceUID}.dcm")
    try:
        tmp = _write(out.getvalue(), dst, commit, staging)
    except OSError as exc:
        return FileDeidReport(src, dst, FileStatus.FAILED, changes,
                              message=f"cannot write output: {exc.strerror}", engine="pydicom",
                              fallback=fallback)
    status = FileStatus.INCOMPLETE if changes.uncleaned else FileStatus.DEIDENTIFIED
    return FileDeidReport(src, dst, status, changes, pending=tmp,
                          engine="pydicom", fallback=fallback)
