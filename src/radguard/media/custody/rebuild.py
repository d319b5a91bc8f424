"""Content disarm and reconstruction of one DICOM file (media.md "Sanitising"; PS3.10 7.1).

:func:`rebuild` takes bytes that passed the bounded walk and writes a *new* PS3.10 file: a 128-byte
zero preamble, fresh File Meta Information (RadGuard's Implementation Class UID and Version Name,
the data set's own SOP Class/Instance UIDs, the original transfer syntax), the data set without
trailing bytes, without Data Set Trailing Padding (FFFC,FFFC), without group length elements, and with
private elements kept only by policy (``none``, ``safe`` = PS3.15 Table E.3.10-1, ``all``). Values are
copied as encoded (pixel data is never decoded). :func:`validate` walks the output again.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID

from radguard.dicomio import ReadLimits, WalkResult, walk
from radguard.dicomio.source import MemorySource
from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from radguard.errors import MediaError

__all__ = ["PrivatePolicy", "RebuildFailed", "Rebuilt", "rebuild", "safe_private_table",
           "validate"]

PrivatePolicy = Literal["none", "safe", "all"]
SAFE_TABLE = "safe-private-2023b.csv"
_TAG = re.compile(r"^\(([0-9A-Fa-f]{4}),xx([0-9A-Fa-f]{2})\)$")


class _QuotedValues(logging.Filter):
    """Drop pydicom's "Invalid value for VR" records: they quote values, which may be PHI."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Invalid value")


logging.getLogger("pydicom").addFilter(_QuotedValues())


class RebuildFailed(MediaError):
    """A file could not be rebuilt or the rebuilt file did not validate."""


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """A rebuilt file and what changed."""

    data: bytes
    changes: tuple[str, ...]
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax: str


@functools.cache
def safe_private_table() -> frozenset[tuple[int, str, int]]:
    """(group, private creator, element byte) of PS3.15 2023b Table E.3.10-1 (safe private)."""
    text = resources.files("radguard.data.custody").joinpath(SAFE_TABLE).read_text("utf-8")
    rows = set()
    for row in csv.DictReader(io.StringIO(text)):
        m = _TAG.match(row["Data Element"].strip())
        if m:
            rows.add((int(m.group(1), 16), row["Private Creator"].strip(), int(m.group(2), 16)))
    return frozenset(rows)


def _private_pass(ds: Dataset, policy: PrivatePolicy, safe: frozenset[tuple[int, str, int]]) -> int:
    """Remove private elements not kept by ``policy`` from ``ds`` and its sequences; count them."""
    removed = 0
    creators: dict[tuple[int, int], str] = {}
    for elem in ds:
        tag = elem.tag
        if tag.is_private and 0x10 <= tag.element <= 0xFF:
            creators[(tag.group, tag.element)] = str(elem.value).strip()
    kept_blocks: set[tuple[int, int]] = set()
    doomed = []
    for elem in ds:
        tag = elem.tag
        if elem.VR == "SQ" and (not tag.is_private or policy != "none"):
            for item in elem.value:
                removed += _private_pass(item, policy, safe)
        if not tag.is_private or tag.element < 0x1000:
            continue
        block = (tag.group, tag.element >> 8)
        keep = policy == "all" or (
            policy == "safe" and (tag.group, creators.get(block, ""), tag.element & 0xFF) in safe)
        if keep:
            kept_blocks.add(block)
        else:
            doomed.append(tag)
    for tag in (t for t in list(ds.keys()) if t.is_private and 0x10 <= t.element <= 0xFF):
        if (tag.group, tag.element) not in kept_blocks:
            doomed.append(tag)
    for tag in list(ds.keys()):
        if tag.is_private and tag.element < 0x10 and policy != "all":
            doomed.append(tag)  # odd-group elements outside any private block
    for tag in set(doomed):
        del ds[tag]
    return len(set(doomed)) + removed


def _structural_pass(ds: Dataset) -> int:
    """Remove group lengths, trailing padding and command/meta groups, recursively."""
    doomed = [e.tag for e in ds if e.tag.element == 0 or e.tag == 0xFFFCFFFC or e.tag.group in (0, 2)]
    removed = len(doomed)
    for tag in doomed:
        del ds[tag]
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                removed += _structural_pass(item)
    return removed


def rebuild(data: bytes, walked: WalkResult, policy: PrivatePolicy = "none") -> Rebuilt:
    """Rebuild ``data`` (which ``walked`` describes) into a clean PS3.10 file.

    Raises
    ------
    RebuildFailed
        The walk did not complete, identity UIDs are missing, or pydicom cannot read or write it.
    """
    if not walked.completed or not walked.is_dicom:
        raise RebuildFailed("the bounded reader could not walk the whole data set")
    if walked.trailing_length and walked.inflated_size is not None:
        raise RebuildFailed("trailing bytes after a deflated data set cannot be cut safely")
    changes = ["File Meta Information rebuilt (RadGuard implementation class UID)"]
    end = len(data)
    if walked.trailing_length:
        end = walked.dataset_end
        changes.append(f"{walked.trailing_length} trailing bytes after the data set dropped")
    if walked.preamble is not None and any(walked.preamble):
        changes.append("non-zero preamble replaced by zeros")
    elif walked.preamble is None:
        changes.append("128-byte zero preamble and DICM prefix added")
    with warnings.catch_warnings():  # pydicom warnings quote values: PHI stays out of logs
        warnings.simplefilter("ignore")
        return _rebuild(data, walked, policy, changes, end)


def _rebuild(data: bytes, walked: WalkResult, policy: PrivatePolicy, changes: list[str],
             end: int) -> Rebuilt:
    try:
        ds = dcmread(io.BytesIO(data[:end]), force=not walked.has_meta)
        old_impl = str(ds.file_meta.get("ImplementationClassUID", "")) if ds.file_meta else ""
        ts = str(walked.transfer_syntax or ds.file_meta.TransferSyntaxUID)
        sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
        study, series = str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", ""))
    except (InvalidDicomError, AttributeError, ValueError, KeyError, EOFError, OSError) as exc:
        raise RebuildFailed(f"cannot read the data set for rebuilding: {exc}") from None
    if not (sop_class and sop_instance and study and series):
        raise RebuildFailed("SOP Class/Instance, Study or Series Instance UID missing")
    if old_impl:
        changes[0] = f"File Meta Information rebuilt (was implementation {old_impl})"
    structural = _structural_pass(ds)
    if structural:
        changes.append(f"{structural} group length / padding elements removed")
    private = _private_pass(ds, policy, safe_private_table()) if policy != "all" else 0
    if private:
        changes.append(f"{private} private elements removed (policy '{policy}')")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(ts)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    out = io.BytesIO()
    try:
        dcmwrite(out, ds, enforce_file_format=True)
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        raise RebuildFailed(f"cannot write the rebuilt data set: {exc}") from None
    return Rebuilt(out.getvalue(), tuple(changes), sop_class, sop_instance, study, series, ts)


def validate(rebuilt: Rebuilt, limits: ReadLimits) -> None:
    """Walk the rebuilt bytes: complete, zero preamble, no trailing data, no problems, same UID.

    Raises
    ------
    RebuildFailed
        Anything the bounded reader objects to in the output.
    """
    result = walk(MemorySource(rebuilt.data), limits)
    if not (result.completed and result.has_meta and result.preamble == b"\x00" * 128):
        raise RebuildFailed("the rebuilt file is not a complete PS3.10 file")
    if result.trailing_length:
        raise RebuildFailed("the rebuilt file has trailing bytes")
    if result.problems:
        p = result.problems[0]
        raise RebuildFailed(f"the rebuilt file has a structural problem: {p.code}: {p.message}")
    if result.value(0x00080018) != rebuilt.sop_instance_uid:
        raise RebuildFailed("the rebuilt file's SOP Instance UID differs from the original")
