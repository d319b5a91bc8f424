"""The bounded reader: the one door for untrusted DICOM bytes (DESIGN.md, invariant 3).

:func:`walk` goes through a PS3.10 file element by element (PS3.5 chapter 7) without trusting any
length: every length is checked against the bytes that remain and against :class:`ReadLimits`; values
are skipped, not loaded, except for a few small identity and geometry attributes and the first bytes of
values worth a closer look. Pixel data is never loaded. Every problem is a :class:`Problem` with a byte
offset; the walk itself never raises for bad input.
"""

from __future__ import annotations

import struct
import time

from radguard.dicomio._common import (
    ENCAPSULATED_DOCUMENT,
    HEAD,
    ITEM,
    ITEM_DELIM,
    MAX_COLLECTED_VALUE,
    MAX_REFS,
    PIXEL_DATA,
    SEQ_DELIM,
    TRAILING_PADDING,
    UNDEFINED,
    Stop,
    WalkState,
    decode_value,
)
from radguard.dicomio.inflate import inflate
from radguard.dicomio.limits import ReadLimits
from radguard.dicomio.meta import read_meta, sniff_raw
from radguard.dicomio.result import PixelInfo, Problem, ValueRef, WalkResult
from radguard.dicomio.source import ByteSource, MemorySource, StreamSource
from radguard.dicomio.vr import LONG_LENGTH_VRS, TEXT_VRS, VALID_VRS, implicit_vr, transfer_syntax

__all__ = ["COLLECTED_TAGS", "walk"]

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
_NONE: frozenset[int] = frozenset()
_STRUCTS = {little: tuple(struct.Struct(("<" if little else ">") + fmt)
                          for fmt in ("HH", "H", "I", "HH2sH", "HHI")) for little in (True, False)}
"""Per byte order: tag, u16, u32, explicit VR header (tag, VR, short length), item header."""
_TOP_ATTENTION = COLLECTED_TAGS | _SPECIAL_TAGS
_PLAIN_VRS = VALID_VRS - _REF_VRS - {b"SQ", b"UN"}
"""VRs of values the walk skips unread unless their tag or group asks for a look."""
_VR_LONG = {vr: vr in LONG_LENGTH_VRS for vr in VALID_VRS}
_VR_TEXT = {vr: vr.decode("ascii") for vr in VALID_VRS}
"""VRs as the text ValueRef holds (decoded once, not per element)."""
"""Explicit VR header shape: True 4-byte length (PS3.5 7.1.2), False 2-byte; absent: invalid VR."""


class _Walker:
    """Walks one data set encoding; one instance per (source, encoding)."""

    def __init__(self, src: ByteSource, state: WalkState, *, explicit: bool, little: bool, end: int):
        self.src = src
        self.st = state
        self.explicit = explicit
        self.little = little
        self.end = end
        self.hdr, self.u16, self.u32, fast_header, item_header = _STRUCTS[little]
        self.buf: bytes | None = src.data if isinstance(src, MemorySource) else None
        self.fast_header = fast_header.unpack_from
        self.item_header = item_header.unpack_from

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
            raise Stop
        if st.elements & 0x3FF == 0 and time.monotonic() > st.deadline:
            self._problem("limit-exceeded", f"walking took longer than {st.limits.max_seconds} s",
                          offset, limit="max_seconds")
            raise Stop

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
            raise Stop
        last_tag = -1
        last_vpos = last_length = 0
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
        collected = COLLECTED_TAGS if top else _NONE
        attention = _TOP_ATTENTION if top else _SPECIAL_TAGS
        values = st.values
        little = self.little
        buf_len = len(mem)
        vr_long = _VR_LONG.get
        while pos < end:
            if end - pos < 8:
                if top:
                    return pos  # leftovers become trailing data
                self._problem("truncated", "element header cut short by the end of the item", pos)
                raise Stop
            if fast is not None:
                # Explicit VR in memory: group, element, VR and short length in one unpack.
                group, elem, vr, length = fast(mem, pos)
                if group == 0xFFFE:
                    vr = b""
                    length = u32_unpack(mem, pos + 4)[0]
                    vpos = pos + 8
                else:
                    long_length = vr_long(vr)
                    if long_length:
                        length = u32_unpack(mem, pos + 8)[0] if pos + 12 <= buf_len else -1
                        vpos = pos + 12
                    elif long_length is not None:
                        vpos = pos + 8
                    else:
                        if top:
                            return pos
                        self._problem("invalid-vr", "element with an invalid value representation "
                                      "inside a sequence item", pos)
                        raise Stop
                tag = (group << 16) | elem
            else:
                raw = buf[pos : pos + 12] if buf is not None else read_at(pos, 12)
                group, elem = hdr_unpack(raw, 0)
                tag = (group << 16) | elem
                if group == 0xFFFE or not explicit:
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
                        raise Stop
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
                    raise Stop
                if top:
                    return pos
                self._problem("malformed", f"unexpected delimiter ({group:04X},{elem:04X}) in a data "
                              "set", pos)
                raise Stop
            if tag > last_tag:
                last_tag = tag
            else:
                if top and group < 0x0008 and last_tag >> 16 >= 0x0008:
                    return pos  # something that looks like a new data set: trailing data
                self._disorder(tag, last_tag, (last_vpos, last_length), vpos, length, pos)
            if group == 0x0002 and not top:
                self._problem("malformed", "File Meta Information element inside a data set", pos)
            count = st.elements + 1
            st.elements = count
            if count > max_elements or not count & 0x3FF:
                self._tick_slow(pos)
            if group_end is not None and group != group_end[0]:
                self._check_group(group_end, pos)
                group_end = None
            last_vpos = vpos
            last_length = length
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
                raise Stop
            if length > max_value_length:
                self._problem("limit-exceeded", f"value of {length} bytes exceeds the value length "
                              "limit", pos, limit="max_value_length")
                raise Stop
            if vr in _PLAIN_VRS and not group & 1 and tag not in attention:
                pass  # most elements: a value nobody needs, skipped unread
            elif vr == b"SQ" or (vr == b"UN" and not explicit and length
                                 and self._looks_like_item(vpos)):
                self._items(vpos, vpos + length, depth + 1, undefined=False)
            elif tag in collected and vr not in _REF_VRS:
                # A top-level identity/geometry value (most of the values a walk reads): decode it
                # here; nothing else is done with it (see _value, which handles the rest).
                if length <= MAX_COLLECTED_VALUE:
                    raw = mem[vpos : vpos + length] if buf is not None else read_at(vpos, length)
                    if vr in TEXT_VRS:
                        values[tag] = raw.decode("latin-1").rstrip("\x00 ").strip()
                    elif vr == b"US" and length >= 2:  # Rows, Columns, Bits Allocated...
                        values[tag] = str(u16_unpack(raw, 0)[0])
                    else:
                        values[tag] = decode_value(vr, raw, little)
            elif group & 1 or vr in _REF_VRS or tag in _SPECIAL_TAGS or tag in collected:
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
            st.values[tag] = decode_value(vr, self.src.read_at(vpos, length), self.little)
        group = tag >> 16
        interesting = (
            (group & 1 and (tag & 0xFFFF) >= 0x1000)
            or vr in _REF_VRS
            or tag in (ENCAPSULATED_DOCUMENT, TRAILING_PADDING)
        )
        if interesting and length and len(st.refs) < MAX_REFS and group != 0x0002:
            buf = self.buf  # the source's bytes when in memory: the slice read_at would make
            head = buf[vpos : vpos + min(HEAD, length)] if buf is not None \
                else self.src.read_at(vpos, min(HEAD, length))
            st.refs.append(ValueRef(tag, _VR_TEXT.get(vr) or vr.decode("ascii", "replace"), vpos,
                                    length, head, depth, st.inflated))

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
        raise Stop

    def _items(self, pos: int, end: int, depth: int, *, undefined: bool) -> int:
        """Walk the items of a sequence (PS3.5 7.5); return the offset after the sequence."""
        st = self.st
        if depth > st.limits.max_depth:
            self._problem("limit-exceeded", f"sequences nested deeper than {st.limits.max_depth} "
                          "levels (nesting bomb)", pos, limit="max_depth")
            raise Stop
        item_header = self.item_header
        buf = self.buf
        size = self.src.size
        while pos < end:
            if pos + 8 > size:
                self._problem("truncated", "sequence cut short by the end of the file", pos)
                raise Stop
            group, elem, length = item_header(buf if buf is not None else self.src.read_at(pos, 8),
                                              pos if buf is not None else 0)
            tag = (group << 16) | elem
            count = st.elements + 1
            st.elements = count
            if count > st.limits.max_elements or not count & 0x3FF:
                self._tick_slow(pos)
            if tag == SEQ_DELIM:
                if not undefined:
                    self._problem("malformed", "sequence delimiter in a defined-length sequence", pos)
                return pos + 8
            if tag != ITEM:
                self._problem("malformed", f"expected an item tag (FFFE,E000), found "
                              f"({group:04X},{elem:04X})", pos)
                raise Stop
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
            raise Stop
        return pos

    def _fragments(self, pos: int, end: int, start: int) -> int:
        """Walk encapsulated pixel data items (PS3.5 A.4) without reading them."""
        fragments = 0
        total = 0
        first_head = b""
        item_header = self.item_header
        buf = self.buf
        size = self.src.size
        while True:
            if pos + 8 > size:
                self._problem("truncated", "encapsulated pixel data has no sequence delimiter", pos)
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                raise Stop
            group, elem, length = item_header(buf if buf is not None else self.src.read_at(pos, 8),
                                              pos if buf is not None else 0)
            tag = (group << 16) | elem
            self._tick(pos)
            if tag == SEQ_DELIM:
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                return pos + 8
            if tag != ITEM or length == UNDEFINED:
                self._problem("malformed", f"bad item ({group:04X},{elem:04X}) in encapsulated pixel "
                              "data", pos)
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                raise Stop
            if pos + 8 + length > end:
                self._problem("value-past-eof", f"pixel data fragment claims {length} bytes, past "
                              "the end of file", pos, length=length)
                self.st.pixel = PixelInfo(start, None, fragments, total, first_head)
                raise Stop
            if fragments == 1 and length:
                first_head = self.src.read_at(pos + 8, min(HEAD, length))
            fragments += 1
            total += length
            pos += 8 + length


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
    state = WalkState(limits=limits, deadline=time.monotonic() + limits.max_seconds)
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
            meta, pos, ts_uid = read_meta(src, state)
            if ts_uid is None:
                state.problems.append(Problem("meta-missing-transfer-syntax", "File Meta Information"
                                              " has no Transfer Syntax UID (0002,0010)", 132))
                explicit = src.read_at(pos + 4, 2) in VALID_VRS
                ts_uid = "1.2.840.10008.1.2.1" if explicit else "1.2.840.10008.1.2"
        else:
            sniff = sniff_raw(head)
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
            inflated_src, inflated_size, unused = inflate(src, pos, state)
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
    except Stop:
        completed = False
    finally:
        if inflated_src is not None:
            inflated_src.close()
    return _result(src, state, has_meta, preamble, ts_uid, meta, dataset_end, trailing_offset,
                   trailing_length, trailing_head, completed, is_dicom, inflated_size)


def _result(
    src: ByteSource,
    state: WalkState,
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
