"""The bounded reader: the one door for untrusted DICOM bytes (DESIGN.md, invariant 3).

:func:`walk` goes through a PS3.10 file element by element (PS3.5 chapter 7) without trusting any
length: every length is checked against the bytes that remain and against :class:`ReadLimits`; values
are skipped, not loaded, except for a few small identity and geometry attributes and the first bytes of
values worth a closer look. Pixel data is never loaded. Every problem is a :class:`Problem` with a byte
offset; the walk itself never raises for bad input.
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from typing import IO

from radguard.dicomio.limits import ReadLimits
from radguard.dicomio.result import PixelInfo, Problem, ValueRef, WalkResult
from radguard.dicomio.source import ByteSource, MemorySource, StreamSource
from radguard.dicomio.vr import LONG_LENGTH_VRS, TEXT_VRS, VALID_VRS, implicit_vr, transfer_syntax

__all__ = ["COLLECTED_TAGS", "walk"]

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIM = 0xFFFEE00D
SEQ_DELIM = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
ENCAPSULATED_DOCUMENT = 0x00420011
TRAILING_PADDING = 0xFFFCFFFC
HEAD = 64
MAX_REFS = 4096
MAX_COLLECTED_VALUE = 4096

COLLECTED_TAGS = frozenset(
    {
        0x00080005,  # Specific Character Set
        0x00080016,  # SOP Class UID
        0x00080018,  # SOP Instance UID
        0x00080020,  # Study Date
        0x00080021,  # Series Date
        0x00080022,  # Acquisition Date
        0x00080023,  # Content Date
        0x00080030,  # Study Time
        0x00080050,  # Accession Number
        0x00080060,  # Modality
        0x00081030,  # Study Description
        0x00100010,  # Patient's Name
        0x00100020,  # Patient ID
        0x00100021,  # Issuer of Patient ID
        0x00100030,  # Patient's Birth Date
        0x00100040,  # Patient's Sex
        0x0020000D,  # Study Instance UID
        0x0020000E,  # Series Instance UID
        0x00200010,  # Study ID
        0x00200011,  # Series Number
        0x00200013,  # Instance Number
        0x00280002,  # Samples per Pixel
        0x00280008,  # Number of Frames
        0x00280010,  # Rows
        0x00280011,  # Columns
        0x00280100,  # Bits Allocated
        0x00420012,  # MIME Type of Encapsulated Document
        0x00041130,  # File-set ID
    }
)
"""Top-level attributes whose values :func:`walk` decodes (small values only)."""


_REF_VRS = frozenset((b"UN", b"OB", b"OW", b"OD", b"OF", b"OL", b"OV"))
_SPECIAL_TAGS = frozenset((PIXEL_DATA, ENCAPSULATED_DOCUMENT, TRAILING_PADDING))


class _Stop(Exception):
    """Internal: the walk cannot go on (limit or structural error already recorded)."""


@dataclass
class _State:
    limits: ReadLimits
    deadline: float
    elements: int = 0
    max_depth: int = 0
    problems: list[Problem] = field(default_factory=list)
    refs: list[ValueRef] = field(default_factory=list)
    values: dict[int, str] = field(default_factory=dict)
    pixel: PixelInfo | None = None
    inflated: bool = False


def _decode(vr: bytes, raw: bytes, little: bool) -> str:
    if vr in TEXT_VRS:
        return raw.decode("latin-1").rstrip("\x00 ").strip()
    fmt = "<" if little else ">"
    if vr == b"US" and len(raw) >= 2:
        return str(struct.unpack(fmt + "H", raw[:2])[0])
    if vr == b"UL" and len(raw) >= 4:
        return str(struct.unpack(fmt + "I", raw[:4])[0])
    if vr == b"SS" and len(raw) >= 2:
        return str(struct.unpack(fmt + "h", raw[:2])[0])
    return raw.hex()


class _Walker:
    """Walks one data set encoding; one instance per (source, encoding)."""

    def __init__(self, src: ByteSource, state: _State, *, explicit: bool, little: bool, end: int):
        self.src = src
        self.st = state
        self.explicit = explicit
        self.little = little
        self.end = end
        self.hdr = struct.Struct("<HH" if little else ">HH")
        self.u16 = struct.Struct("<H" if little else ">H")
        self.u32 = struct.Struct("<I" if little else ">I")
        self.buf: bytes | None = src.data if isinstance(src, MemorySource) else None
        self.fast_header = struct.Struct("<HH2sH" if little else ">HH2sH").unpack_from

    # -- helpers -------------------------------------------------------------------------------
    def _problem(self, code: str, message: str, offset: int | None, **details: object) -> None:
        self.st.problems.append(Problem(code, message, offset, self.st.inflated, details))

    def _tick(self, offset: int) -> None:
        self.st.elements += 1
        self._tick_slow(offset)

    def _tick_slow(self, offset: int) -> None:
        """Check the element count and, every 1024 elements, the time limit."""
        st = self.st
        if st.elements > st.limits.max_elements:
            self._problem("limit-exceeded", f"more than {st.limits.max_elements} data elements "
                          "(element bomb)", offset, limit="max_elements")
            raise _Stop
        if st.elements & 0x3FF == 0 and time.monotonic() > st.deadline:
            self._problem("limit-exceeded", f"walking took longer than {st.limits.max_seconds} s",
                          offset, limit="max_seconds")
            raise _Stop

    # -- data sets ----------------------------------------------------------------------------
    def dataset(self, pos: int, end: int, depth: int, *, top: bool, undefined: bool) -> int:
        """Walk elements from ``pos``; return the offset after the last one walked.

        ``end`` is the enclosing limit (file end or item end); with ``undefined`` the data set ends
        at an Item Delimitation Item (PS3.5 7.5.2).
        """
        st = self.st
        if depth > st.max_depth:
            st.max_depth = depth
        if depth > st.limits.max_depth:
            self._problem("limit-exceeded", f"sequences nested deeper than {st.limits.max_depth} "
                          "levels (nesting bomb)", pos, limit="max_depth")
            raise _Stop
        last_tag = -1
        last_value = (0, 0)
        group_end: tuple[int, int, int] | None = None  # (group, declared end, offset of length)
        # Hot loop: locals and inlined header parsing (the walk is most of a scan's cost).
        buf = self.buf
        read_at = self.src.read_at
        hdr_unpack = self.hdr.unpack_from
        u16_unpack = self.u16.unpack_from
        u32_unpack = self.u32.unpack_from
        explicit = self.explicit
        limits = st.limits
        max_elements = limits.max_elements
        max_value_length = limits.max_value_length
        fast = self.fast_header if (buf is not None and explicit) else None
        mem: bytes = buf if buf is not None else b""
        buf_len = len(mem)
        while pos < end:
            if end - pos < 8:
                if top:
                    return pos  # leftovers become trailing data
                self._problem("truncated", "element header cut short by the end of the item", pos)
                raise _Stop
            if fast is not None:
                # Explicit VR in memory: group, element, VR and short length in one unpack.
                group, elem, vr, length = fast(mem, pos)
                tag = (group << 16) | elem
                if group != 0xFFFE:
                    if vr in LONG_LENGTH_VRS:
                        length = u32_unpack(mem, pos + 8)[0] if pos + 12 <= buf_len else -1
                        vpos = pos + 12
                    elif vr in VALID_VRS:
                        vpos = pos + 8
                    else:
                        if top:
                            return pos
                        self._problem("invalid-vr", "element with an invalid value representation "
                                      "inside a sequence item", pos)
                        raise _Stop
                else:
                    vr = b""
                    length = u32_unpack(mem, pos + 4)[0]
                    vpos = pos + 8
            else:
                raw = buf[pos : pos + 12] if buf is not None else read_at(pos, 12)
                group, elem = hdr_unpack(raw, 0)
                tag = (group << 16) | elem
            if fast is not None:
                pass
            elif group == 0xFFFE or not explicit:
                vr = b"" if group == 0xFFFE else implicit_vr(tag)
                length = u32_unpack(raw, 4)[0]
                vpos = pos + 8
            else:
                vr = raw[4:6]
                if vr not in VALID_VRS:
                    if top:
                        return pos
                    self._problem("invalid-vr", "element with an invalid value representation "
                                  "inside a sequence item", pos)
                    raise _Stop
                if vr in LONG_LENGTH_VRS:
                    length = u32_unpack(raw, 8)[0] if len(raw) >= 12 else -1
                    vpos = pos + 12
                else:
                    length = u16_unpack(raw, 6)[0]
                    vpos = pos + 8
            if group == 0xFFFE:
                if tag == ITEM_DELIM:
                    if undefined:
                        return vpos
                    self._problem("malformed", "item delimiter outside an undefined-length item", pos)
                    raise _Stop
                if top:
                    return pos
                self._problem("malformed", f"unexpected delimiter ({group:04X},{elem:04X}) in a data "
                              "set", pos)
                raise _Stop
            if tag <= last_tag:
                if top and group < 0x0008 and last_tag >> 16 >= 0x0008:
                    return pos  # something that looks like a new data set: trailing data
                self._disorder(tag, last_tag, last_value, vpos, length, pos)
            if group == 0x0002 and not top:
                self._problem("malformed", "File Meta Information element inside a data set", pos)
            st.elements += 1
            if st.elements > max_elements or st.elements & 0x3FF == 0:
                self._tick_slow(pos)
            if group_end is not None and group != group_end[0]:
                self._check_group(group_end, pos)
                group_end = None
            if tag > last_tag:
                last_tag = tag
            last_value = (vpos, length)
            if length == UNDEFINED:
                pos = self._undefined(tag, vr, vpos, end, depth, pos)
                continue
            if length < 0 or vpos + length > end:
                limit_is_file = end >= self.src.size if not st.inflated else top
                code = "value-past-eof" if limit_is_file else "value-past-item"
                where = "end of file" if limit_is_file else "end of its item"
                self._problem(code, f"({group:04X},{elem:04X}) claims {length} bytes, "
                              f"past the {where} ({max(0, end - vpos)} bytes remain)", pos,
                              tag=f"{tag:08X}", length=length)
                raise _Stop
            if length > max_value_length:
                self._problem("limit-exceeded", f"value of {length} bytes exceeds the value length "
                              "limit", pos, limit="max_value_length")
                raise _Stop
            if vr == b"SQ" or (vr == b"UN" and not explicit and length and self._looks_like_item(vpos)):
                self._items(vpos, vpos + length, depth + 1, undefined=False)
            elif group & 1 or vr in _REF_VRS or tag in _SPECIAL_TAGS or (top and tag in COLLECTED_TAGS):
                self._value(tag, vr, vpos, length, depth, top)
            if elem == 0 and top and vr == b"UL" and length == 4 and group != 0x0002:
                declared = u32_unpack(read_at(vpos, 4), 0)[0]
                group_end = (group, vpos + 4 + declared, pos)
            pos = vpos + length
        if group_end is not None:
            self._check_group(group_end, pos)
        return pos

    def _disorder(self, tag: int, last_tag: int, last_value: tuple[int, int], vpos: int,
                  length: int, pos: int) -> None:
        """Record a repeated or descending tag (PS3.5 7.1: tags ascend, each occurs once).

        A repeat with the same bytes is harmless (some real files have one); a repeat with other
        bytes, or a descending tag, means readers may disagree on the data set.
        """
        name = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if tag == last_tag:
            same = (
                length != UNDEFINED
                and length == last_value[1]
                and length <= 65536
                and self.src.read_at(vpos, length) == self.src.read_at(last_value[0], length)
            )
            if same:
                self._problem("duplicate-tag-identical", f"{name} occurs twice with the same value",
                              pos, tag=f"{tag:08X}")
            else:
                self._problem("duplicate-tag", f"{name} occurs twice with different values; "
                              "readers may disagree on which one counts", pos, tag=f"{tag:08X}")
        else:
            self._problem("tag-order", f"{name} after ({last_tag >> 16:04X},{last_tag & 0xFFFF:04X}): "
                          "tags must ascend (PS3.5 7.1)", pos, tag=f"{tag:08X}")

    def _check_group(self, group_end: tuple[int, int, int], actual: int) -> None:
        group, declared, at = group_end
        if declared != actual:
            self._problem("group-length-mismatch", f"group {group:04X} length says the group ends at "
                          f"byte {declared}, it ends at byte {actual}", at, group=f"{group:04X}")

    def _looks_like_item(self, pos: int) -> bool:
        raw = self.src.read_at(pos, 4)
        return len(raw) == 4 and self.hdr.unpack(raw) == (0xFFFE, 0xE000)

    def _value(self, tag: int, vr: bytes, vpos: int, length: int, depth: int, top: bool) -> None:
        st = self.st
        if tag == PIXEL_DATA and depth == 0:
            st.pixel = PixelInfo(offset=vpos, length=length)
            return
        if top and tag in COLLECTED_TAGS and length <= MAX_COLLECTED_VALUE:
            st.values[tag] = _decode(vr, self.src.read_at(vpos, length), self.little)
        group = tag >> 16
        interesting = (
            (group & 1 and (tag & 0xFFFF) >= 0x1000)
            or vr in (b"UN", b"OB", b"OW", b"OD", b"OF", b"OL", b"OV")
            or tag in (ENCAPSULATED_DOCUMENT, TRAILING_PADDING)
        )
        if interesting and length and len(st.refs) < MAX_REFS and group != 0x0002:
            st.refs.append(ValueRef(tag, vr.decode("ascii", "replace"), vpos, length,
                                    self.src.read_at(vpos, min(HEAD, length)), depth, st.inflated))

    def _undefined(self, tag: int, vr: bytes, vpos: int, end: int, depth: int, pos: int) -> int:
        if tag == PIXEL_DATA and depth == 0:
            return self._fragments(vpos, end, pos)
        if vr in (b"SQ", b"UN") or not self.explicit:
            if vr == b"UN" and self.explicit:
                # PS3.5 6.2.2: UN with undefined length is an Implicit VR Little Endian sequence.
                inner = _Walker(self.src, self.st, explicit=False, little=True, end=self.end)
                return inner._items(vpos, end, depth + 1, undefined=True)
            return self._items(vpos, end, depth + 1, undefined=True)
        self._problem("malformed", f"undefined length on ({tag >> 16:04X},{tag & 0xFFFF:04X}) with VR "
                      f"{vr.decode('ascii', 'replace')}", pos)
        raise _Stop

    def _items(self, pos: int, end: int, depth: int, *, undefined: bool) -> int:
        """Walk the items of a sequence (PS3.5 7.5); return the offset after the sequence."""
        st = self.st
        if depth > st.limits.max_depth:
            self._problem("limit-exceeded", f"sequences nested deeper than {st.limits.max_depth} "
                          "levels (nesting bomb)", pos, limit="max_depth")
            raise _Stop
        while pos < end:
            raw = self.src.read_at(pos, 8)
            if len(raw) < 8:
                self._problem("truncated", "sequence cut short by the end of the file", pos)
                raise _Stop
            group, elem = self.hdr.unpack_from(raw, 0)
            length = self.u32.unpack_from(raw, 4)[0]
            tag = (group << 16) | elem
            self._tick(pos)
            if tag == SEQ_DELIM:
                if not undefined:
                    self._problem("malformed", "sequence delimiter in a defined-length sequence", pos)
                return pos + 8
            if tag != ITEM:
                self._problem("malformed", f"expected an item tag (FFFE,E000), found "
                              f"({group:04X},{elem:04X})", pos)
                raise _Stop
            ipos = pos + 8
            if length == UNDEFINED:
                pos = self.dataset(ipos, end, depth, top=False, undefined=True)
            else:
                if ipos + length > end:
                    # Some writers get the last item's length wrong. If the item's content
                    # still walks exactly to the end of its sequence nothing is hidden: a
                    # minor problem. Otherwise the walk stops inside with its own problem.
                    self.dataset(ipos, end, depth, top=False, undefined=False)
                    self._problem("item-length-overrun", f"item claims {length} bytes but its "
                                  f"sequence ends {end - ipos} bytes later", pos, length=length)
                    return end
                self.dataset(ipos, ipos + length, depth, top=False, undefined=False)
                pos = ipos + length
        if undefined:
            self._problem("truncated", "undefined-length sequence has no delimiter before the end",
                          pos)
            raise _Stop
        return pos

    def _fragments(self, pos: int, end: int, start: int) -> int:
        """Walk encapsulated pixel data items (PS3.5 A.4) without reading them."""
        fragments = 0
        total = 0
        first_head = b""
        while True:
            raw = self.src.read_at(pos, 8)
            if len(raw) < 8:
                self._problem("truncated", "encapsulated pixel data has no sequence delimiter", pos)
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                raise _Stop
            group, elem = self.hdr.unpack_from(raw, 0)
            length = self.u32.unpack_from(raw, 4)[0]
            tag = (group << 16) | elem
            self._tick(pos)
            if tag == SEQ_DELIM:
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                return pos + 8
            if tag != ITEM or length == UNDEFINED:
                self._problem("malformed", f"bad item ({group:04X},{elem:04X}) in encapsulated pixel "
                              "data", pos)
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                raise _Stop
            if pos + 8 + length > end:
                self._problem("value-past-eof", f"pixel data fragment claims {length} bytes, past "
                              "the end of file", pos, length=length)
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                raise _Stop
            if fragments == 1 and length:
                first_head = self.src.read_at(pos + 8, min(HEAD, length))
            fragments += 1
            total += length
            pos += 8 + length


def _read_meta(src: ByteSource, state: _State) -> tuple[dict[int, str], int, str | None]:
    """Walk group 0002 at offset 132 (always Explicit VR Little Endian, PS3.10 7.1)."""
    meta: dict[int, str] = {}
    pos = 132
    declared_end: int | None = None
    hdr = struct.Struct("<HH")
    while pos + 8 <= src.size:
        raw = src.read_at(pos, 12)
        group, elem = hdr.unpack_from(raw, 0)
        if group != 0x0002:
            break
        vr = raw[4:6]
        if vr not in VALID_VRS:
            state.problems.append(Problem("invalid-vr", "File Meta Information element with an "
                                          "invalid VR", pos))
            break
        if vr in LONG_LENGTH_VRS:
            length = struct.unpack_from("<I", raw, 8)[0] if len(raw) >= 12 else -1
            vpos = pos + 12
        else:
            length = struct.unpack_from("<H", raw, 6)[0]
            vpos = pos + 8
        if length < 0 or length == UNDEFINED or vpos + length > src.size:
            state.problems.append(Problem("value-past-eof", f"File Meta element (0002,{elem:04X}) "
                                          f"claims {length} bytes, past the end of file", pos))
            raise _Stop
        if length > 65536:
            state.problems.append(Problem("limit-exceeded", f"File Meta element (0002,{elem:04X}) of "
                                          f"{length} bytes", pos, details={"limit": "meta"}))
            raise _Stop
        value = src.read_at(vpos, length)
        meta[0x00020000 | elem] = _decode(vr, value, True)
        if elem == 0 and length == 4:
            declared_end = vpos + 4 + struct.unpack("<I", value)[0]
        state.elements += 1
        pos = vpos + length
    if declared_end is None:
        state.problems.append(Problem("meta-no-group-length", "File Meta Information has no group "
                                      "length (0002,0000)", 132))
    elif declared_end != pos:
        state.problems.append(Problem(
            "meta-group-length-mismatch", f"(0002,0000) says File Meta Information ends at byte "
            f"{declared_end}, it ends at byte {pos}", 132, details={"declared": declared_end,
                                                                    "actual": pos}))
    ts = meta.get(0x00020010)
    return meta, pos, ts


def _sniff_raw(head: bytes) -> tuple[bool, bool] | None:
    """Guess whether a file without preamble is a raw data set: returns (explicit, little) or None."""
    if len(head) < 12:
        return None
    for little in (True, False):
        group, elem = struct.unpack_from("<HH" if little else ">HH", head, 0)
        if group in (0x0002, 0x0008) and elem < 0x0100:
            explicit = head[4:6] in VALID_VRS
            if not explicit:
                length = struct.unpack_from("<I" if little else ">I", head, 4)[0]
                if length > 1024:
                    continue
            return explicit, little
    return None


def _inflate(src: ByteSource, pos: int, state: _State) -> tuple[StreamSource, int, int]:
    """Inflate a Deflated data set (PS3.5 A.5) into a spooled file, bounded by size and ratio.

    Returns the inflated source, its size and the number of unused compressed bytes after the
    deflate stream ends (trailing data).
    """
    limits = state.limits
    out = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - closed by caller
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    consumed = 0
    offset = pos
    try:
        while offset < src.size or inflater.unconsumed_tail:
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            else:
                chunk = src.read_at(offset, 256 * 1024)
                offset += len(chunk)
                consumed += len(chunk)
            data = inflater.decompress(chunk, 1024 * 1024)
            produced += len(data)
            out.write(data)
            if produced > limits.max_inflated_size:
                state.problems.append(Problem("limit-exceeded", f"deflated data set inflates past "
                                      f"{limits.max_inflated_size} bytes (decompression bomb)", pos,
                                      details={"limit": "max_inflated_size"}))
                raise _Stop
            if consumed and produced > 1024 * 1024 and produced / consumed > limits.max_inflate_ratio:
                state.problems.append(Problem("limit-exceeded", f"deflated data set inflates more "
                                      f"than {limits.max_inflate_ratio}:1 (decompression bomb)", pos,
                                      details={"limit": "max_inflate_ratio"}))
                raise _Stop
            if inflater.eof:
                break
            if time.monotonic() > state.deadline:
                state.problems.append(Problem("limit-exceeded", "inflating took too long", pos,
                                              details={"limit": "max_seconds"}))
                raise _Stop
        if not inflater.eof:
            state.problems.append(Problem("truncated", "deflate stream ends before its final block",
                                          pos))
    except zlib.error as exc:
        out.close()
        state.problems.append(Problem("inflate-error", f"deflated data set is corrupt: {exc}", pos))
        raise _Stop from exc
    except _Stop:
        out.close()
        raise
    unused = len(inflater.unused_data) + (src.size - offset)
    if unused and unused <= 8:
        tail = src.read_at(src.size - unused, unused)
        if _benign_deflate_tail(tail, out, produced):
            unused = 0
    out.seek(0)
    return StreamSource(out, produced), produced, unused


def _benign_deflate_tail(tail: bytes, inflated: IO[bytes], size: int) -> bool:
    """True for an even-length pad byte or a gzip/zlib trailer that matches the inflated data."""
    if tail == b"\x00":
        return True
    if len(tail) not in (4, 8):
        return False
    inflated.seek(0)
    crc = 0
    adler = 1
    while chunk := inflated.read(1024 * 1024):
        crc = zlib.crc32(chunk, crc)
        adler = zlib.adler32(chunk, adler)
    if len(tail) == 8:
        return tail == struct.pack("<II", crc, size & 0xFFFFFFFF)
    return tail == struct.pack(">I", adler)


def walk(src: ByteSource, limits: ReadLimits | None = None) -> WalkResult:
    """Walk one file through the bounded reader.

    Parameters
    ----------
    src:
        The file's bytes (see :mod:`radguard.dicomio.source`).
    limits:
        Bounds to enforce; defaults to :class:`ReadLimits` ().

    Returns
    -------
    WalkResult
        ``is_dicom`` is false when the bytes are neither a PS3.10 file nor a raw data set.
        Problems carry the byte offset where they were seen (PS3.10 7.1, PS3.5 7).
    """
    limits = limits or ReadLimits()
    state = _State(limits=limits, deadline=time.monotonic() + limits.max_seconds)
    size = src.size
    head = src.read_at(0, 132)
    has_meta = len(head) == 132 and head[128:132] == b"DICM"
    preamble = head[:128] if has_meta else None
    meta: dict[int, str] = {}
    ts_uid: str | None = None
    dataset_end = 0
    trailing_offset: int | None = None
    trailing_length = 0
    trailing_head = b""
    inflated_size: int | None = None
    completed = False
    is_dicom = has_meta

    if size > limits.max_file_size:
        state.problems.append(Problem("limit-exceeded", f"file of {size} bytes exceeds the file size "
                                      "limit", 0, details={"limit": "max_file_size"}))
        return _result(src, state, has_meta, preamble, None, meta, size, None, 0, b"", False,
                       has_meta, None)
    inflated_src: StreamSource | None = None
    try:
        if has_meta:
            meta, pos, ts_uid = _read_meta(src, state)
            if ts_uid is None:
                state.problems.append(Problem("meta-missing-transfer-syntax", "File Meta Information"
                                              " has no Transfer Syntax UID (0002,0010)", 132))
                explicit = src.read_at(pos + 4, 2) in VALID_VRS
                ts_uid = "1.2.840.10008.1.2.1" if explicit else "1.2.840.10008.1.2"
        else:
            sniff = _sniff_raw(head)
            if sniff is None:
                return _result(src, state, False, None, None, meta, 0, None, 0, b"", True, False, None)
            is_dicom = True
            state.problems.append(Problem("no-file-meta", "no preamble, DICM prefix or File Meta "
                                          "Information (PS3.10 7.1)", 0))
            explicit, little = sniff
            ts_uid = ("1.2.840.10008.1.2.1" if explicit else "1.2.840.10008.1.2") if little \
                else "1.2.840.10008.1.2.2"
            pos = 0
        ts = transfer_syntax(ts_uid)
        if not ts.known:
            state.problems.append(Problem("unknown-transfer-syntax", f"unknown transfer syntax "
                                          f"{ts_uid!r}; walked as Explicit VR Little Endian", 132))
        walk_src: ByteSource = src
        if ts.deflated:
            inflated_src, inflated_size, unused = _inflate(src, pos, state)
            walk_src = inflated_src
            state.inflated = True
            if unused:
                trailing_offset = size - unused
                trailing_length = unused
                trailing_head = src.read_at(trailing_offset, HEAD)
            pos = 0
        walker = _Walker(walk_src, state, explicit=ts.explicit, little=ts.little, end=walk_src.size)
        dataset_end = walker.dataset(pos, walk_src.size, 0, top=True, undefined=False)
        completed = True
        if dataset_end < walk_src.size and not ts.deflated:
            trailing_offset = dataset_end
            trailing_length = size - dataset_end
            trailing_head = src.read_at(dataset_end, HEAD)
        elif dataset_end < walk_src.size:
            state.problems.append(Problem("trailing-data", f"{walk_src.size - dataset_end} bytes after"
                                          " the data set inside the deflate stream", dataset_end,
                                          inflated=True))
    except _Stop:
        completed = False
    finally:
        if inflated_src is not None:
            inflated_src.close()
    return _result(src, state, has_meta, preamble, ts_uid, meta, dataset_end, trailing_offset,
                   trailing_length, trailing_head, completed, is_dicom, inflated_size)


def _result(
    src: ByteSource,
    state: _State,
    has_meta: bool,
    preamble: bytes | None,
    ts_uid: str | None,
    meta: dict[int, str],
    dataset_end: int,
    trailing_offset: int | None,
    trailing_length: int,
    trailing_head: bytes,
    completed: bool,
    is_dicom: bool,
    inflated_size: int | None,
) -> WalkResult:
    return WalkResult(
        size=src.size,
        has_meta=has_meta,
        preamble=preamble,
        transfer_syntax=ts_uid,
        meta=meta,
        values=dict(state.values),
        refs=tuple(state.refs),
        pixel=state.pixel,
        dataset_end=dataset_end,
        trailing_offset=trailing_offset,
        trailing_length=trailing_length,
        trailing_head=trailing_head,
        elements=state.elements,
        max_depth=state.max_depth,
        problems=tuple(state.problems),
        completed=completed,
        is_dicom=is_dicom,
        inflated_size=inflated_size,
    )
