"""The DICOMDIR of an export (PS3.10 8, PS3.3 Annex F), encoded directly with explicit offsets.

Records are PATIENT -> STUDY -> SERIES -> leaf (IMAGE, or the type ``record_types.json`` gives the
SOP Class, PS3.3 F.4), in depth-first order in the Directory Record Sequence. Offsets (0004,1200),
(0004,1202), (0004,1400) and (0004,1420) count bytes from the first byte of the file (the preamble),
PS3.3 F.3.2.2. Every offset is UL, so the encoded lengths do not depend on the offsets: records are
encoded once, their positions summed, and the offsets patched in place.

The values of PATIENT, STUDY, SERIES and IMAGE records come from the bounded reader's walk of the
very bytes that go on the medium (:data:`RECORD_TAGS`, a subset of
:data:`radguard.dicomio.reader.COLLECTED_TAGS`) and are copied **as encoded in the file** (same
bytes, same Specific Character Set), Explicit VR Little Endian (PS3.5 7.1.2), padded to even length
(PS3.5 6.2: UI with NUL, text with SPACE). Only the rarer leaf types (RT DOSE, SR DOCUMENT,
WAVEFORM...) need attributes the walk does not collect (sequences such as the Concept Name Code
Sequence); their records are made by pydicom's ``DIRECTORY_RECORDERS`` from the header data set.

Type 1 record attributes the instance lacks (F.5) are *invented* as DCMTK's ``dcmgpdir +I`` does:
Study ID = the study's index, Study Date/Time from the series/content date or ``19000101``/``000000``,
Series Number and Instance Number = indexes, Modality = ``OT``, Patient ID = ``UNKNOWN``.
"""

from __future__ import annotations

import copy
import struct
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from radguard import __version__

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["RECORD_TAGS", "Leaf", "build_dicomdir", "display", "record_tail", "record_tail_halves",
           "record_values"]

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_NEXT_HEADER = b"\x04\x00\x00\x14UL\x04\x00"  # (0004,1400) UL, length 4
_LOWER_HEADER = b"\x04\x00\x20\x14UL\x04\x00"  # (0004,1420) UL, length 4
IMPLEMENTATION_CLASS_UID = "2.25.35901264747746386631434543079302577920"
"""Implementation Class UID of RadGuard's DICOMDIR writer: a UUID-derived UID (PS3.5 B.2)."""

CHARSET = 0x00080005
SOP_CLASS, SOP_INSTANCE = 0x00080016, 0x00080018
STUDY_DATE, SERIES_DATE, ACQUISITION_DATE, CONTENT_DATE = 0x00080020, 0x00080021, 0x00080022, 0x00080023
STUDY_TIME, ACCESSION, MODALITY, STUDY_DESCRIPTION = 0x00080030, 0x00080050, 0x00080060, 0x00081030
PATIENT_NAME, PATIENT_ID = 0x00100010, 0x00100020
STUDY_UID, SERIES_UID, STUDY_ID, SERIES_NUMBER, INSTANCE_NUMBER = (
    0x0020000D, 0x0020000E, 0x00200010, 0x00200011, 0x00200013)
RECORD_TAGS = frozenset({
    CHARSET, SOP_CLASS, SOP_INSTANCE, STUDY_DATE, SERIES_DATE, ACQUISITION_DATE, CONTENT_DATE,
    STUDY_TIME, ACCESSION, MODALITY, STUDY_DESCRIPTION, PATIENT_NAME, PATIENT_ID, STUDY_UID,
    SERIES_UID, STUDY_ID, SERIES_NUMBER, INSTANCE_NUMBER})
"""Top-level attributes a record needs (PS3.3 F.5.1-F.5.3, F.5.5), from the walk's values."""

_VR = {CHARSET: b"CS", STUDY_DATE: b"DA", STUDY_TIME: b"TM", ACCESSION: b"SH", MODALITY: b"CS",
       STUDY_DESCRIPTION: b"LO", PATIENT_NAME: b"PN", PATIENT_ID: b"LO", STUDY_UID: b"UI",
       SERIES_UID: b"UI", STUDY_ID: b"SH", SERIES_NUMBER: b"IS", INSTANCE_NUMBER: b"IS",
       0x00041430: b"CS", 0x00041500: b"CS", 0x00041510: b"UI", 0x00041511: b"UI",
       0x00041512: b"UI", 0x00041130: b"CS"}
_TEXT_VRS = frozenset((b"CS", b"DA", b"TM", b"SH", b"LO", b"PN", b"UI", b"IS", b"AE", b"DS"))
_PACK_TAG = struct.Struct("<HH2sH")
_OFFSETS = (  # (0004,1400) UL 0, (0004,1410) US FFFFH (record in use), (0004,1420) UL 0
    _NEXT_HEADER + b"\0\0\0\0" + b"\x04\x00\x10\x14US\x02\x00\xff\xff" + _LOWER_HEADER + b"\0\0\0\0")


def record_values(values: Mapping[int, str], refs: Sequence[tuple[int, str, int]] = ()) -> dict[int, str]:
    """The :data:`RECORD_TAGS` of a walk's ``values``, each as the latin-1 text of its bytes.

    ``refs`` are ``(tag, vr, depth)`` of the walk's value references: a record attribute the file
    encodes with VR UN/OB (seen in the wild) was collected as hex and is turned back into its bytes.
    """
    out = {t: v for t, v in values.items() if t in RECORD_TAGS}
    for tag, vr, depth in refs:
        if depth == 0 and tag in out and vr.encode("ascii", "replace") not in _TEXT_VRS:
            try:
                out[tag] = bytes.fromhex(out[tag]).decode("latin-1").rstrip("\x00 ").strip()
            except ValueError:
                del out[tag]
    return out


def display(values: Mapping[int, str], tag: int) -> str:
    """The text of a record value for people (README.TXT of an unencrypted medium), decoded with
    the file's Specific Character Set (PS3.5 6.1)."""
    raw = values.get(tag, "").encode("latin-1", "replace")
    if not raw:
        return ""
    from pydicom.charset import convert_encodings, decode_bytes

    terms = [t.strip() for t in values.get(CHARSET, "").split("\\")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return decode_bytes(raw, convert_encodings([t or "ISO_IR 6" for t in terms]),
                            {0x5E, 0x3D} if tag == PATIENT_NAME else set())


@dataclass(frozen=True)
class Leaf:
    """One file of the medium: its file ID components, the record values of its header (the text
    of the bytes, :func:`record_values`), its transfer syntax, and for leaf types other than IMAGE
    the encoded :func:`record_tail`; when the record needs an invented Instance Number, the
    :func:`record_tail_halves` (or else the header, no pixel data)."""

    file_id: tuple[str, ...]
    values: Mapping[int, str]
    transfer_syntax: str
    tail: bytes | None = None
    header: Dataset | None = None
    halves: tuple[bytes, bytes | None] | None = None


def _element(tag: int, value: str, vr: bytes | None = None) -> bytes:
    vr = vr or _VR[tag]
    raw = value.encode("latin-1", "replace")
    if len(raw) & 1:
        raw += b"\0" if vr == b"UI" else b" "
    if len(raw) > 0xFFFF:
        raw = raw[:0xFFFE]
    return _PACK_TAG.pack(tag >> 16, tag & 0xFFFF, vr, len(raw)) + raw


def _record(rtype: str, values: Mapping[int, str], items: Sequence[tuple[int, str]],
            head: Sequence[tuple[int, str]] = ()) -> bytes:
    """A record's elements: offsets, type, ``head`` (group 0004), character set, ``items``."""
    parts = [_OFFSETS, _element(0x00041430, rtype)]
    parts += [_element(t, v) for t, v in head]
    if CHARSET in values:
        parts.append(_element(CHARSET, values[CHARSET]))
    parts += [_element(t, v) for t, v in sorted(items)]
    return b"".join(parts)


def _or(values: Mapping[int, str], tag: int, default: str) -> str:
    return values.get(tag) or default


def _patient(v: Mapping[int, str]) -> bytes:
    return _record("PATIENT", v, [(PATIENT_NAME, v.get(PATIENT_NAME, "")),
                                  (PATIENT_ID, _or(v, PATIENT_ID, "UNKNOWN"))])


def _study(v: Mapping[int, str], index: int) -> bytes:
    date = next((v[t] for t in (STUDY_DATE, SERIES_DATE, CONTENT_DATE, ACQUISITION_DATE)
                 if v.get(t)), "19000101")
    return _record("STUDY", v, [
        (STUDY_DATE, date), (STUDY_TIME, _or(v, STUDY_TIME, "000000")),
        (STUDY_DESCRIPTION, v.get(STUDY_DESCRIPTION, "")), (STUDY_UID, v[STUDY_UID]),
        (STUDY_ID, _or(v, STUDY_ID, str(index))), (ACCESSION, v.get(ACCESSION, ""))])


def _series(v: Mapping[int, str], index: int) -> bytes:
    return _record("SERIES", v, [(MODALITY, _or(v, MODALITY, "OT")), (SERIES_UID, v[SERIES_UID]),
                                 (SERIES_NUMBER, _or(v, SERIES_NUMBER, str(index)))])


def _references(leaf: Leaf) -> list[tuple[int, str]]:
    return [(0x00041500, "\\".join(leaf.file_id)), (0x00041510, leaf.values[SOP_CLASS]),
            (0x00041511, leaf.values[SOP_INSTANCE]), (0x00041512, leaf.transfer_syntax)]


def record_tail(header: Dataset, rtype: str) -> bytes | None:
    """The elements after group 0004 of a ``rtype`` leaf record (RT DOSE, SR DOCUMENT...) made by
    pydicom's recorder from ``header``, or ``None`` if the instance lacks one of that record's
    Type 1 keys (then an IMAGE record is written). Runs where the header was read (a worker)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.fileset import DIRECTORY_RECORDERS
    from pydicom.filewriter import write_dataset

    with warnings.catch_warnings():  # source values pydicom finds non-conformant
        warnings.simplefilter("ignore", UserWarning)
        try:
            record = DIRECTORY_RECORDERS[rtype](header)
        except (ValueError, KeyError, AttributeError):
            return None
        if "SpecificCharacterSet" in header:
            record.SpecificCharacterSet = header.SpecificCharacterSet
        for elem in [e.tag for e in record if e.tag.group == 0x0004]:
            del record[elem]
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_dataset(fp, record)
    return bytes(fp.getvalue())


_LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
                       b"UT", b"UV"))


def _find_element(data: bytes, tag: int) -> tuple[int, int] | None:
    """Start and end of the top-level element ``tag`` in ``data`` (Explicit VR Little Endian,
    elements in tag order, as pydicom's writer makes a record): ``None`` if absent, or if an
    element of undefined length comes first."""
    pos = 0
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        if data[pos + 4:pos + 6] in _LONG_VRS:
            head, length = 12, int.from_bytes(data[pos + 8:pos + 12], "little")
        else:
            head, length = 8, int.from_bytes(data[pos + 6:pos + 8], "little")
        here = group << 16 | elem
        if here == tag:
            return pos, pos + head + length
        if here > tag or length == 0xFFFFFFFF:
            return None
        pos += head + length
    return None


def record_tail_halves(header: Dataset, rtype: str) -> tuple[bytes, bytes | None] | None:
    """:func:`record_tail` for an instance without an Instance Number, made where the header was
    read (a worker): the Instance Number is invented from the leaf's position in its series,
    which only the layout of all files gives, so the tail is made with a placeholder and split
    around it. ``(before, after)``: the number goes between; ``(tail, None)``: the record has no
    Instance Number; ``None``: not done here (the caller keeps the header)."""
    filled = copy.copy(header)
    filled.InstanceNumber = 1
    tail = record_tail(filled, rtype)
    if tail is None:
        return None
    span = _find_element(tail, INSTANCE_NUMBER)
    if span is None:
        return None if tail.find(b"\x20\x00\x13\x00") >= 0 else (tail, None)
    return tail[:span[0]], tail[span[1]:]


def _leaf(leaf: Leaf, rtype: str, index: int) -> bytes:
    tail = leaf.tail
    if rtype != "IMAGE" and tail is None and leaf.halves is not None:
        before, after = leaf.halves  # Instance Number invented, as for IMAGE records
        tail = before if after is None else before + _element(INSTANCE_NUMBER, str(index)) + after
    elif rtype != "IMAGE" and tail is None and leaf.header is not None:
        filled = copy.copy(leaf.header)
        filled.InstanceNumber = index  # invented, as for IMAGE records
        tail = record_tail(filled, rtype)
    if rtype != "IMAGE" and tail is not None:
        return b"".join([_OFFSETS, _element(0x00041430, rtype),
                         *(_element(t, v) for t, v in _references(leaf)), tail])
    return _record("IMAGE", leaf.values, [(INSTANCE_NUMBER, _or(leaf.values, INSTANCE_NUMBER,
                                                                 str(index)))],
                   head=_references(leaf))


@dataclass
class _Node:
    record: bytes
    children: list[_Node] = field(default_factory=list)
    keys: dict[object, _Node] = field(default_factory=dict)


def _tree(leaves: Sequence[Leaf], record_types: Mapping[str, str], default: str) -> list[_Node]:
    root = _Node(b"")
    studies = 0
    for leaf in leaves:
        v = leaf.values
        pkey = (v.get(PATIENT_ID, ""), v.get(PATIENT_NAME, ""))
        patient = root.keys.get(pkey)
        if patient is None:
            patient = root.keys[pkey] = _Node(_patient(v))
            root.children.append(patient)
        study = patient.keys.get(v[STUDY_UID])
        if study is None:
            studies += 1
            study = patient.keys[v[STUDY_UID]] = _Node(_study(v, studies))
            patient.children.append(study)
        series = study.keys.get(v[SERIES_UID])
        if series is None:
            series = study.keys[v[SERIES_UID]] = _Node(_series(v, len(study.children) + 1))
            study.children.append(series)
        rtype = record_types.get(v[SOP_CLASS], default)
        series.children.append(_Node(_leaf(leaf, rtype, len(series.children) + 1)))
    return root.children


def _flatten(nodes: list[_Node], out: list[tuple[_Node, _Node | None]]) -> None:
    """Depth-first order, each node with its next sibling (identity, not equality)."""
    for i, node in enumerate(nodes):
        out.append((node, nodes[i + 1] if i + 1 < len(nodes) else None))
        _flatten(node.children, out)


def _ul(tag: int, value: int) -> bytes:
    return _PACK_TAG.pack(tag >> 16, tag & 0xFFFF, b"UL", 4) + value.to_bytes(4, "little")


def _head() -> bytes:
    """Preamble, ``DICM`` and File Meta Information (PS3.10 7.1) of a new DICOMDIR."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MEDIA_STORAGE_DIRECTORY)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = f"RADGUARD_{__version__}"[:16]
    mfp = DicomBytesIO()
    mfp.is_little_endian, mfp.is_implicit_VR = True, False
    write_file_meta_info(mfp, meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + mfp.getvalue()


def build_dicomdir(leaves: Sequence[Leaf], fileset_id: str = "RADGUARD") -> bytes:
    """The bytes of a DICOMDIR (PS3.10 file, Explicit VR Little Endian) listing ``leaves``."""
    from radguard.export.policy import record_types

    table, default = record_types()
    roots = _tree(leaves, table, default)
    order: list[tuple[_Node, _Node | None]] = []
    _flatten(roots, order)
    head = _head()
    fileset = _element(0x00041130, fileset_id[:16])
    consistency = _PACK_TAG.pack(0x0004, 0x1212, b"US", 2) + b"\0\0"
    top_len = len(fileset) + 2 * 12 + len(consistency)
    start = len(head) + top_len + 12  # + (0004,1220) SQ header with explicit length
    encoded = [bytearray(node.record) for node, _ in order]
    position: dict[int, int] = {}
    pos = start
    for (node, _), rec in zip(order, encoded, strict=True):
        position[id(node)] = pos
        pos += 8 + len(rec)
    for (node, following), rec in zip(order, encoded, strict=True):
        # (0004,1400) and (0004,1420) are the record's first and third elements (explicit VR LE, UL)
        assert rec[0:8] == _NEXT_HEADER and rec[22:30] == _LOWER_HEADER
        if following is not None:
            rec[8:12] = position[id(following)].to_bytes(4, "little")
        if node.children:
            rec[30:34] = position[id(node.children[0])].to_bytes(4, "little")
    first = position[id(roots[0])] if roots else 0
    last = position[id(roots[-1])] if roots else 0
    top = fileset + _ul(0x00041200, first) + _ul(0x00041202, last) + consistency
    items = b"".join(b"\xfe\xff\x00\xe0" + len(r).to_bytes(4, "little") + r for r in encoded)
    seq = b"\x04\x00\x20\x12SQ\x00\x00" + len(items).to_bytes(4, "little")
    return head + top + seq + items
