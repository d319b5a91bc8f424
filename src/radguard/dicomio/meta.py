"""File Meta Information (PS3.10 7.1) and raw data sets without it: the start of a bounded walk."""

from __future__ import annotations

import struct

from radguard.dicomio._common import UNDEFINED, Stop, WalkState, decode_value
from radguard.dicomio.result import Problem
from radguard.dicomio.source import ByteSource
from radguard.dicomio.vr import LONG_LENGTH_VRS, TEXT_VRS, VALID_VRS

__all__ = ["read_meta", "sniff_raw"]

_HEADER = struct.Struct("<HH2sH").unpack_from  # PS3.10 7.1: group 0002 is Explicit VR Little Endian
_U32 = struct.Struct("<I").unpack_from


def read_meta(src: ByteSource, state: WalkState) -> tuple[dict[int, str], int, str | None]:
    """Walk group 0002 at offset 132 (always Explicit VR Little Endian, PS3.10 7.1)."""
    meta: dict[int, str] = {}
    pos = 132
    declared_end: int | None = None
    size = src.size
    while pos + 8 <= size:
        raw = src.read_at(pos, 12)
        group, elem, vr, length = _HEADER(raw, 0)
        if group != 0x0002:
            break
        if vr not in VALID_VRS:
            state.problems.append(Problem("invalid-vr", "File Meta Information element with an "
                                          "invalid VR", pos))
            break
        if vr in LONG_LENGTH_VRS:
            length = _U32(raw, 8)[0] if len(raw) >= 12 else -1
            vpos = pos + 12
        else:
            vpos = pos + 8
        if length < 0 or length == UNDEFINED or vpos + length > size:
            state.problems.append(Problem("value-past-eof", f"File Meta element (0002,{elem:04X}) "
                                          f"claims {length} bytes, past the end of file", pos))
            raise Stop
        if length > 65536:
            state.problems.append(Problem("limit-exceeded", f"File Meta element (0002,{elem:04X}) of "
                                          f"{length} bytes", pos, details={"limit": "meta"}))
            raise Stop
        value = src.read_at(vpos, length)
        meta[0x00020000 | elem] = (value.decode("latin-1").rstrip("\x00 ").strip()
                                   if vr in TEXT_VRS else decode_value(vr, value, True))
        if elem == 0 and length == 4:
            declared_end = vpos + 4 + _U32(value, 0)[0]
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


def sniff_raw(head: bytes) -> tuple[bool, bool] | None:
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
