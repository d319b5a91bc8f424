"""Element spans of a Little Endian data set that already passed :func:`radguard.dicomio.walk`.

:func:`data_set` returns, for each element of a data set (PS3.5 7.1), its tag, VR, the offsets of its
header and value, its value length and where it ends, and for sequences (PS3.5 7.5) their items with
their own elements, at any depth. Nothing is decoded: callers copy the byte spans they keep and
re-encode only what they change (the de-identification fast path, :mod:`radguard.deid.fastpath`).

This module is not a second door for untrusted bytes: walk the file with the bounded reader first
(its limits on depth, element count and lengths apply) and call this only when the walk completed
without problems. It still trusts nothing: any length that leaves its container, a missing
delimiter or an unexpected tag raises :class:`ElementError`, and the caller falls back to a
general path. Explicit and Implicit VR Little Endian and Explicit VR Big Endian (Deflated data
sets are not handled here); the items of an Explicit VR ``UN`` of undefined length are read as
Implicit VR Little Endian in every transfer syntax (PS3.5 6.2.2).

VRs: in Explicit VR the two bytes of the header; in Implicit VR the data dictionary's (PS3.6), ``UN``
for unknown and private tags, ``LO`` for private creators, ``UL`` for group lengths. An element with
undefined length other than top-level Pixel Data is read as a sequence; Explicit VR ``UN`` with
undefined length holds Implicit VR Little Endian items (PS3.5 6.2.2), marked ``implicit_items``.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from radguard.dicomio.vr import implicit_vr

__all__ = ["UNDEFINED", "Element", "ElementError", "Item", "data_set", "file_meta"]

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_DELIM = 0xFFFEE00D
SEQ_DELIM = 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
MAX_DEPTH = 64

_HDR = struct.Struct("<HH").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_LE = (_HDR, _U16, _U32, struct.Struct("<HH2sH").unpack_from, struct.Struct("<HHI").unpack_from)
_BE = (struct.Struct(">HH").unpack_from, struct.Struct(">H").unpack_from,
       struct.Struct(">I").unpack_from, struct.Struct(">HH2sH").unpack_from,
       struct.Struct(">HHI").unpack_from)
"""Per byte order: tag, u16, u32, Explicit VR header (tag, VR, short length), Implicit VR header
(tag, length): one ``unpack_from`` per element header."""
_LONG = frozenset(("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"))
_VR_TEXT = {vr.encode("ascii"): vr for vr in (
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL",
    "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US",
    "UT", "UV")}


class ElementError(ValueError):
    """The bytes do not have the structure this module handles (the caller takes another path)."""


class Item(NamedTuple):
    """One sequence item: ``header`` (offset of FFFE,E000), content ``start``..``stop``, ``end``
    after the item (its delimiter included), ``undefined`` when it had undefined length."""

    header: int
    start: int
    stop: int
    end: int
    undefined: bool
    elements: tuple[Element, ...]


class Element(NamedTuple):
    """One data element: ``header`` offset of its tag, ``value`` offset of its value, ``length``
    (``UNDEFINED`` possible), ``end`` offset after it (delimiters included); ``items`` for
    sequences, ``None`` for other elements."""

    tag: int
    vr: str
    header: int
    value: int
    length: int
    end: int
    items: tuple[Item, ...] | None
    implicit_items: bool = False


_IMPLICIT: dict[int, str] = {}
"""Implicit VR of each tag seen (PS3.6 via :func:`implicit_vr`); bounded by :data:`_IMPLICIT_MAX`."""
_IMPLICIT_MAX = 65536


def _implicit(tag: int) -> str:
    vr = _IMPLICIT.get(tag)
    if vr is None:
        vr = implicit_vr(tag).decode("ascii")
        if len(_IMPLICIT) < _IMPLICIT_MAX:
            _IMPLICIT[tag] = vr
    return vr


_new_element = tuple.__new__
"""``Element`` and ``Item`` made without the named tuple's Python-level ``__new__`` (one call per element)."""


def _fragments(buf: bytes, pos: int, end: int, fmt: tuple[Any, ...]) -> int:
    """Skip encapsulated pixel data items (PS3.5 A.4); return the offset after the delimiter."""
    _HDR, _, _U32, _, _ = fmt
    while pos + 8 <= end:
        group, elem = _HDR(buf, pos)
        length = _U32(buf, pos + 4)[0]
        tag = (group << 16) | elem
        if tag == SEQ_DELIM:
            return pos + 8
        if tag != ITEM or length == UNDEFINED or pos + 8 + length > end:
            raise ElementError("bad encapsulated pixel data item")
        pos += 8 + length
    raise ElementError("encapsulated pixel data without a delimiter")


def _items(buf: bytes, pos: int, end: int, explicit: bool, depth: int,
           undefined: bool, fmt: tuple[Any, ...] = _LE) -> tuple[tuple[Item, ...], int]:
    _HDR, _, _U32, _, _ = fmt
    if depth > MAX_DEPTH:
        raise ElementError("sequences nested too deeply")
    items: list[Item] = []
    while pos < end:
        if pos + 8 > end:
            raise ElementError("sequence item header cut short")
        group, elem = _HDR(buf, pos)
        length = _U32(buf, pos + 4)[0]
        tag = (group << 16) | elem
        if tag == SEQ_DELIM:
            if not undefined:
                raise ElementError("sequence delimiter in a defined-length sequence")
            return tuple(items), pos + 8
        if tag != ITEM:
            raise ElementError("expected an item")
        start = pos + 8
        if length == UNDEFINED:
            elements, stop, after = _elements(buf, start, end, explicit, depth, True, fmt)
            items.append(_new_element(Item, (pos, start, stop, after, True, elements)))
            pos = after
        else:
            if start + length > end:
                raise ElementError("item past the end of its sequence")
            elements, stop, after = _elements(buf, start, start + length, explicit, depth,
                                              False, fmt)
            items.append(_new_element(Item, (pos, start, stop, after, False, elements)))
            pos = after
    if undefined:
        raise ElementError("undefined-length sequence without a delimiter")
    return tuple(items), pos


def _elements(buf: bytes, pos: int, end: int, explicit: bool, depth: int,
              undefined: bool, fmt: tuple[Any, ...] = _LE) -> tuple[tuple[Element, ...], int, int]:
    """Elements from ``pos``; returns (elements, end of content, end after the delimiter)."""
    _, _, _U32, explicit_header, implicit_header = fmt
    out: list[Element] = []
    append = out.append
    vr_text, long_vrs, implicit_cache = _VR_TEXT, _LONG, _IMPLICIT
    while pos < end:
        if pos + 8 > end:
            raise ElementError("element header cut short")
        if explicit:
            group, elem, vr_bytes, length = explicit_header(buf, pos)
            tag = (group << 16) | elem
            if group == 0xFFFE:
                if tag == ITEM_DELIM and undefined:
                    return tuple(out), pos, pos + 8
                raise ElementError("unexpected delimiter")
            vr = vr_text.get(vr_bytes)
            if vr is None:
                raise ElementError("invalid VR")
            if vr in long_vrs:
                if pos + 12 > end:
                    raise ElementError("element header cut short")
                length = _U32(buf, pos + 8)[0]
                vpos = pos + 12
            else:
                vpos = pos + 8
        else:
            group, elem, length = implicit_header(buf, pos)
            tag = (group << 16) | elem
            if group == 0xFFFE:
                if tag == ITEM_DELIM and undefined:
                    return tuple(out), pos, pos + 8
                raise ElementError("unexpected delimiter")
            vr = implicit_cache.get(tag) or _implicit(tag)
            vpos = pos + 8
        if length == UNDEFINED:
            if tag == PIXEL_DATA and depth == 0:
                stop = _fragments(buf, vpos, end, fmt)
                append(_new_element(Element, (tag, vr, pos, vpos, length, stop, None, False)))
            elif vr in ("SQ", "UN") or not explicit:
                implicit_items = explicit and vr == "UN"
                items, stop = _items(buf, vpos, end, explicit and not implicit_items, depth + 1,
                                     True, _LE if implicit_items else fmt)
                append(_new_element(Element, (tag, vr, pos, vpos, length, stop, items,
                                              implicit_items)))
            else:
                raise ElementError("undefined length on a value that is not a sequence")
        else:
            stop = vpos + length
            if stop > end:
                raise ElementError("value past the end of its container")
            if vr == "SQ":
                items, _ = _items(buf, vpos, stop, explicit, depth + 1, False, fmt)
                append(_new_element(Element, (tag, vr, pos, vpos, length, stop, items, False)))
            else:
                append(_new_element(Element, (tag, vr, pos, vpos, length, stop, None, False)))
        pos = stop
    if undefined:
        raise ElementError("undefined-length item without a delimiter")
    return tuple(out), pos, pos


def data_set(buf: bytes, start: int, end: int, *, explicit: bool,
             little: bool = True) -> tuple[Element, ...]:
    """The elements of the data set in ``buf[start:end]`` (see the module doc); ``little=False``
    for Explicit VR Big Endian (PS3.5 7.3: tags, lengths and binary values byte-swapped)."""
    if not little and not explicit:
        raise ElementError("Implicit VR Big Endian does not exist (PS3.5 A.1)")
    elements, _, _ = _elements(buf, start, end, explicit, 0, False, _LE if little else _BE)
    return elements


def file_meta(buf: bytes) -> tuple[tuple[Element, ...], int]:
    """Group 0002 after the preamble and ``DICM`` (PS3.10 7.1, always Explicit VR Little Endian):
    its elements and the offset where the data set starts."""
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise ElementError("no PS3.10 preamble")
    pos = 132
    out: list[Element] = []
    while pos + 8 <= len(buf) and _HDR(buf, pos)[0] == 0x0002:
        vr = _VR_TEXT.get(buf[pos + 4:pos + 6])
        if vr is None:
            raise ElementError("invalid VR in the File Meta Information")
        if vr in _LONG:
            length, vpos = _U32(buf, pos + 8)[0], pos + 12
        else:
            length, vpos = _U16(buf, pos + 6)[0], pos + 8
        if length == UNDEFINED or vpos + length > len(buf):
            raise ElementError("File Meta element past the end of the file")
        out.append(Element(0x00020000 | _HDR(buf, pos)[1], vr, pos, vpos, length, vpos + length,
                           None))
        pos = vpos + length
    return tuple(out), pos
