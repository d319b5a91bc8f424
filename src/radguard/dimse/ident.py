"""One value of a C-FIND identifier without decoding the whole data set (PS3.5 7.1, PS3.7 9.1.2).

Arrival confirmation reads thousands of identifiers and needs one attribute of each, the SOP
Instance UID. :func:`top_level_value` walks the top-level elements of an identifier in Implicit or
Explicit VR Little Endian (PS3.5 7.1.2 / 7.1.3 and Annex A.1, A.2) and returns the raw value of one
tag. It is bounded by the bytes given and raises :class:`ValueError` for anything it does not walk
(undefined lengths, a truncated element): the caller then decodes the identifier with pydicom as
before, so an unusual but valid answer costs time, never a wrong result.
"""

from __future__ import annotations

import struct

__all__ = ["top_level_value", "uid_text"]

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                       b"UR", b"UT", b"UV"})
"""Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 Table 7.1-1)."""

_UNDEFINED = 0xFFFFFFFF


def top_level_value(data: bytes, implicit: bool, tag: int) -> bytes | None:
    """The raw value of ``tag`` (group << 16 | element) at the top level of ``data``, or ``None``
    when the data set does not hold it (every element is walked: no reliance on tag order).

    Raises
    ------
    ValueError
        An undefined length, or an element that runs past the end of ``data``.
    """
    pos, end = 0, len(data)
    while pos + 8 <= end:
        group, element = struct.unpack_from("<HH", data, pos)
        current = group << 16 | element
        if implicit:
            length = int(struct.unpack_from("<I", data, pos + 4)[0])
            start = pos + 8
        elif data[pos + 4:pos + 6] in _LONG_VRS:
            if pos + 12 > end:
                raise ValueError("truncated element header")
            length = int(struct.unpack_from("<I", data, pos + 8)[0])
            start = pos + 12
        else:
            length = int(struct.unpack_from("<H", data, pos + 6)[0])
            start = pos + 8
        if length == _UNDEFINED:
            raise ValueError(f"undefined length at ({group:04X},{element:04X})")
        if start + length > end:
            raise ValueError(f"element ({group:04X},{element:04X}) runs past the end")
        if current == tag:
            return data[start:start + length]
        pos = start + length
    if pos != end:
        raise ValueError("trailing bytes after the last element")
    return None


def uid_text(value: bytes) -> str:
    """A UI value as text: ASCII, without the trailing NUL padding (PS3.5 6.2, 9.1).

    Raises
    ------
    ValueError
        Not ASCII.
    """
    return value.rstrip(b"\x00 ").decode("ascii")
