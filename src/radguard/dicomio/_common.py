"""Shared pieces of the bounded reader: constants of PS3.5 encoding, the walk state, value decoding."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from radguard.dicomio.limits import ReadLimits
from radguard.dicomio.result import PixelInfo, Problem, ValueRef
from radguard.dicomio.vr import TEXT_VRS

__all__ = ["ENCAPSULATED_DOCUMENT", "HEAD", "ITEM", "ITEM_DELIM", "MAX_COLLECTED_VALUE", "MAX_REFS",
           "PIXEL_DATA", "SEQ_DELIM", "TRAILING_PADDING", "UNDEFINED", "Stop", "WalkState",
           "decode_value"]

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

class Stop(Exception):
    """Internal: the walk cannot go on (limit or structural error already recorded)."""


@dataclass
class WalkState:
    limits: ReadLimits
    deadline: float
    elements: int = 0
    max_depth: int = 0
    problems: list[Problem] = field(default_factory=list)
    refs: list[ValueRef] = field(default_factory=list)
    values: dict[int, str] = field(default_factory=dict)
    pixel: PixelInfo | None = None
    inflated: bool = False


def decode_value(vr: bytes, raw: bytes, little: bool) -> str:
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
