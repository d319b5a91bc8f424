"""The DICOMDIR of an export (PS3.10 8, PS3.3 Annex F), written with explicit offsets.

Records are PATIENT -> STUDY -> SERIES -> leaf (IMAGE, or the type ``record_types.json`` gives the
SOP Class, PS3.3 F.4), in depth-first order in the Directory Record Sequence. Offsets (0004,1200),
(0004,1202), (0004,1400) and (0004,1420) count bytes from the first byte of the file (the preamble),
PS3.3 F.3.2.2. Every record value is UL so the encoded lengths do not depend on the offsets: records
are encoded once to learn their positions and a second time with the offsets filled in.

Type 1 record attributes the instance lacks (F.5) are *invented* as DCMTK's ``dcmgpdir +I`` does:
Study ID = the study's index, Study Date/Time from the series/content date or ``19000101``/``000000``,
Series Number and Instance Number = indexes, Modality = ``OT``, Patient ID = ``UNKNOWN``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import DIRECTORY_RECORDERS
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from radguard import __version__
from radguard.export.policy import record_types

__all__ = ["Leaf", "build_dicomdir"]

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_NEXT_HEADER = b"\x04\x00\x00\x14UL\x04\x00"  # (0004,1400) UL, length 4
_LOWER_HEADER = b"\x04\x00\x20\x14UL\x04\x00"  # (0004,1420) UL, length 4
IMPLEMENTATION_CLASS_UID = "2.25.35901264747746386631434543079302577920"
"""Implementation Class UID of RadGuard's DICOMDIR writer: a UUID-derived UID (PS3.5 B.2)."""


@dataclass(frozen=True)
class Leaf:
    """One file of the medium: its file ID components and its header (no pixel data)."""

    file_id: tuple[str, ...]
    header: Dataset
    transfer_syntax: str


@dataclass
class _Node:
    record: Dataset
    children: list[_Node] = field(default_factory=list)
    keys: dict[str, _Node] = field(default_factory=dict)


def _text(ds: Dataset, keyword: str, default: str) -> str:
    value = ds.get(keyword)
    return str(value) if value not in (None, "") else default


def _charset(ds: Dataset, record: Dataset) -> Dataset:
    if "SpecificCharacterSet" in ds:
        record.SpecificCharacterSet = ds.SpecificCharacterSet
    return record


def _patient(ds: Dataset) -> Dataset:
    r = Dataset()
    r.PatientName = ds.get("PatientName", "")
    r.PatientID = _text(ds, "PatientID", "UNKNOWN")
    return _charset(ds, r)


def _study(ds: Dataset, index: int) -> Dataset:
    r = Dataset()
    date = next((str(ds.get(k)) for k in ("StudyDate", "SeriesDate", "ContentDate",
                                          "AcquisitionDate") if ds.get(k)), "19000101")
    r.StudyDate = date
    r.StudyTime = _text(ds, "StudyTime", "000000")
    r.StudyDescription = ds.get("StudyDescription", "")
    r.StudyInstanceUID = ds.StudyInstanceUID
    r.StudyID = _text(ds, "StudyID", str(index))
    r.AccessionNumber = ds.get("AccessionNumber", "")
    return _charset(ds, r)


def _series(ds: Dataset, index: int) -> Dataset:
    r = Dataset()
    r.Modality = _text(ds, "Modality", "OT")
    r.SeriesInstanceUID = ds.SeriesInstanceUID
    r.SeriesNumber = _text(ds, "SeriesNumber", str(index))
    return _charset(ds, r)


def _leaf(leaf: Leaf, index: int) -> Dataset:
    ds = leaf.header
    table, default = record_types()
    rtype = table.get(str(ds.SOPClassUID), default)
    record: Dataset | None = None
    if rtype != "IMAGE":
        filled = copy.copy(ds)
        if not filled.get("InstanceNumber"):
            filled.InstanceNumber = index  # invented, as for IMAGE records
        try:
            record = DIRECTORY_RECORDERS[rtype](filled)
        except (ValueError, KeyError, AttributeError):
            record = None  # the instance lacks a Type 1 key of that record: keep an IMAGE record
    if record is None:
        rtype = "IMAGE"
        record = Dataset()
        record.InstanceNumber = _text(ds, "InstanceNumber", str(index))
    record.DirectoryRecordType = rtype
    record.ReferencedFileID = list(leaf.file_id)
    record.ReferencedSOPClassUIDInFile = ds.SOPClassUID
    record.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
    record.ReferencedTransferSyntaxUIDInFile = leaf.transfer_syntax
    return _charset(ds, record)


def _tree(leaves: Sequence[Leaf]) -> list[_Node]:
    root = _Node(Dataset())
    for leaf in leaves:
        ds = leaf.header
        pkey = (str(ds.get("PatientID", "")), str(ds.get("PatientName", "")))
        patient = root.keys.get(repr(pkey))
        if patient is None:
            patient = root.keys[repr(pkey)] = _Node(_patient(ds))
            patient.record.DirectoryRecordType = "PATIENT"
            root.children.append(patient)
        study = patient.keys.get(str(ds.StudyInstanceUID))
        if study is None:
            study = patient.keys[str(ds.StudyInstanceUID)] = _Node(
                _study(ds, sum(len(p.children) for p in root.children) + 1))
            study.record.DirectoryRecordType = "STUDY"
            patient.children.append(study)
        series = study.keys.get(str(ds.SeriesInstanceUID))
        if series is None:
            series = study.keys[str(ds.SeriesInstanceUID)] = _Node(
                _series(ds, len(study.children) + 1))
            series.record.DirectoryRecordType = "SERIES"
            study.children.append(series)
        series.children.append(_Node(_leaf(leaf, len(series.children) + 1)))
    return root.children


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


def _flatten(nodes: list[_Node], out: list[tuple[_Node, _Node | None]]) -> None:
    """Depth-first order, each node with its next sibling (identity, not Dataset equality)."""
    for i, node in enumerate(nodes):
        out.append((node, nodes[i + 1] if i + 1 < len(nodes) else None))
        _flatten(node.children, out)


def build_dicomdir(leaves: Sequence[Leaf], fileset_id: str = "RADGUARD") -> bytes:
    """The bytes of a DICOMDIR (PS3.10 file, Explicit VR Little Endian) listing ``leaves``."""
    with warnings.catch_warnings():  # source values pydicom finds non-conformant (dates "1997.04.24")
        warnings.simplefilter("ignore", UserWarning)
        roots = _tree(leaves)
    order: list[tuple[_Node, _Node | None]] = []
    _flatten(roots, order)
    for node, _ in order:
        node.record.OffsetOfTheNextDirectoryRecord = 0
        node.record.RecordInUseFlag = 0xFFFF
        node.record.OffsetOfReferencedLowerLevelDirectoryEntity = 0

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MEDIA_STORAGE_DIRECTORY)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = f"RADGUARD_{__version__}"[:16]
    mfp = DicomBytesIO()
    mfp.is_little_endian, mfp.is_implicit_VR = True, False
    write_file_meta_info(mfp, meta, enforce_standard=True)
    head = b"\0" * 128 + b"DICM" + mfp.getvalue()

    top = Dataset()
    top.FileSetID = fileset_id[:16]
    top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
    top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
    top.FileSetConsistencyFlag = 0
    start = len(head) + len(_encode(top)) + 12  # + (0004,1220) SQ header with explicit length
    encoded = [bytearray(_encode(node.record)) for node, _ in order]
    position: dict[int, int] = {}
    pos = start
    for (node, _), rec in zip(order, encoded, strict=True):
        position[id(node)] = pos
        pos += 8 + len(rec)
    for (node, following), rec in zip(order, encoded, strict=True):
        # (0004,1400) and (0004,1420) are the record's first and third elements (explicit VR LE,
        # UL): patch their values in place instead of encoding every record a second time.
        assert rec[0:8] == _NEXT_HEADER and rec[22:30] == _LOWER_HEADER
        if following is not None:
            rec[8:12] = position[id(following)].to_bytes(4, "little")
        if node.children:
            rec[30:34] = position[id(node.children[0])].to_bytes(4, "little")
    if roots:
        top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = position[id(roots[0])]
        top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = position[id(roots[-1])]
    items = b"".join(b"\xfe\xff\x00\xe0" + len(r).to_bytes(4, "little") + r for r in encoded)
    seq = b"\x04\x00\x20\x12SQ\x00\x00" + len(items).to_bytes(4, "little")
    return head + _encode(top) + seq + items
