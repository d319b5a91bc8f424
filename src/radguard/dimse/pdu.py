"""Upper-layer PDUs and DIMSE command sets, encoded and decoded by hand (PS3.8 9.3, PS3.7 9.3/E).

Only what a requestor needs for the bulk C-STORE path of :mod:`radguard.dimse.scu`:

- A-ASSOCIATE-RQ (PS3.8 9.3.2) with Application Context, Presentation Context and User Information
  (Maximum Length, Implementation Class UID, Implementation Version Name; PS3.7 D.3.3) items;
- A-ASSOCIATE-AC (9.3.3) / -RJ (9.3.4), P-DATA-TF (9.3.5), A-RELEASE-RQ/RP (9.3.6/7), A-ABORT (9.3.8);
- DIMSE command sets in Implicit VR Little Endian (PS3.7 6.3.1): C-STORE-RQ, C-FIND-RQ, and the
  elements of a response that the requestor reads.

Every length read from the peer is bounded by the caller (:data:`MAX_PDU_READ`); a malformed PDU is a
:class:`ValueError`, which the association turns into an abort.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "APPLICATION_CONTEXT",
    "MAX_PDU_READ",
    "Accepted",
    "associate_rq",
    "command",
    "parse_associate_ac",
    "parse_command",
    "pdu",
]

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
"""DICOM Application Context Name (PS3.7 A.2.1)."""

MAX_PDU_READ = 64 * 1024 * 1024
"""Largest PDU the requestor accepts to read from a peer (protection against a hostile length)."""

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07

_US = {0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900}
_UL = {0x0000}


def pdu(kind: int, body: bytes) -> bytes:
    """One PDU: type, reserved byte, 32-bit big-endian length, body (PS3.8 9.3.1)."""
    return struct.pack(">BBI", kind, 0, len(body)) + body


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _ae(title: str) -> bytes:
    raw = title.encode("ascii")
    if not 0 < len(raw) <= 16:
        raise ValueError(f"AE title {title!r} must be 1 to 16 characters")
    return raw.ljust(16, b" ")


def associate_rq(called: str, calling: str, contexts: list[tuple[int, str, list[str]]],
                 max_receive: int, impl_uid: str, impl_version: str) -> bytes:
    """An A-ASSOCIATE-RQ proposing ``contexts`` = (odd context id, abstract syntax, transfer
    syntaxes) (PS3.8 9.3.2, 9.3.2.2)."""
    items = [_item(0x10, APPLICATION_CONTEXT.encode("ascii"))]
    for cid, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode("ascii")) + b"".join(
            _item(0x40, ts.encode("ascii")) for ts in syntaxes)
        items.append(_item(0x20, struct.pack(">BBBB", cid, 0, 0, 0) + sub))
    user = (_item(0x51, struct.pack(">I", max_receive)) + _item(0x52, impl_uid.encode("ascii"))
            + _item(0x55, impl_version.encode("ascii")))
    items.append(_item(0x50, user))
    head = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    return pdu(A_ASSOCIATE_RQ, head + b"".join(items))


@dataclass(frozen=True, slots=True)
class Accepted:
    """What an A-ASSOCIATE-AC granted: context id -> transfer syntax, and the peer's maximum
    P-DATA-TF length (0 = no limit; PS3.8 D.1)."""

    contexts: dict[int, str]
    max_send: int


def _items(body: bytes, start: int) -> list[tuple[int, bytes]]:
    out, pos = [], start
    while pos + 4 <= len(body):
        kind, _, length = struct.unpack_from(">BBH", body, pos)
        if pos + 4 + length > len(body):
            raise ValueError("item runs past the end of the PDU")
        out.append((kind, body[pos + 4:pos + 4 + length]))
        pos += 4 + length
    return out


def parse_associate_ac(body: bytes) -> Accepted:
    """The accepted presentation contexts (result 0 only) and maximum length of an AC body."""
    if len(body) < 68:
        raise ValueError("A-ASSOCIATE-AC shorter than its fixed fields")
    contexts: dict[int, str] = {}
    max_send = 0
    for kind, value in _items(body, 68):
        if kind == 0x21 and len(value) >= 4:
            cid, result = value[0], value[2]
            subs = _items(value, 4)
            if result == 0 and subs and subs[0][0] == 0x40:
                contexts[cid] = subs[0][1].rstrip(b"\0 ").decode("ascii")
        elif kind == 0x50:
            for sub, sv in _items(value, 0):
                if sub == 0x51 and len(sv) == 4:
                    max_send = int(struct.unpack(">I", sv)[0])
    return Accepted(contexts, max_send)


def _element(tag: int, value: bytes | int | str) -> bytes:
    if isinstance(value, str):
        raw = value.encode("ascii")
        raw += b"\0" * (len(raw) % 2)  # UI values are padded to even length with NUL (PS3.5 6.2)
    elif tag in _UL:
        raw = struct.pack("<I", value)
    elif isinstance(value, int):
        raw = struct.pack("<H", value)
    else:
        raw = value
    return struct.pack("<HHI", 0x0000, tag, len(raw)) + raw


def command(fields: dict[int, int | str]) -> bytes:
    """A command set (group 0000, Implicit VR Little Endian) with its Command Group Length
    (0000,0000) computed (PS3.7 E.1); ``fields`` maps element numbers to US (int) or UI (str)."""
    body = b"".join(_element(tag, fields[tag]) for tag in sorted(fields))
    return _element(0x0000, len(body)) + body


def parse_command(data: bytes) -> dict[int, int | str]:
    """Decode a command set; US/UL elements become ``int``, the rest text (trailing NUL/space
    stripped). Elements outside group 0000 are refused."""
    out: dict[int, int | str] = {}
    pos = 0
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHI", data, pos)
        value = data[pos + 8:pos + 8 + length]
        if group != 0 or len(value) != length:
            raise ValueError("malformed DIMSE command set")
        if elem in _US and length == 2:
            out[elem] = int(struct.unpack("<H", value)[0])
        elif elem in _UL and length == 4:
            out[elem] = int(struct.unpack("<I", value)[0])
        else:
            out[elem] = value.rstrip(b"\0 ").decode("latin-1")
        pos += 8 + length
    return out
