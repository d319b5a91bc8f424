"""Just enough DER/BER (X.690) to stream a CMS envelope whose content does not fit in memory.

asn1crypto encodes and parses the small structures (recipient infos, algorithm identifiers); the
outer SEQUENCE headers and the encrypted content, whose length is known before a byte of it is
produced (CBC with PKCS#7 padding, RFC 5652 6.3), are written and read here so that a file of any
size is enveloped with bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from radguard.export.errors import EnvelopeError

__all__ = ["Header", "encode_header", "read_header", "tlv"]

INDEFINITE = -1


def encode_header(tag: int, length: int) -> bytes:
    """Identifier octet ``tag`` (single byte: class, constructed bit and number < 31) and a DER
    definite length (X.690 8.1.3)."""
    if length < 0x80:
        return bytes((tag, length))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(body))) + body


def tlv(tag: int, value: bytes) -> bytes:
    """A complete DER element."""
    return encode_header(tag, len(value)) + value


@dataclass(frozen=True, slots=True)
class Header:
    """An identifier and length read from a stream; ``length`` is -1 for BER indefinite form."""

    tag: int
    length: int
    size: int  # bytes taken by identifier + length octets

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)


def _read_exact(fp: BinaryIO, n: int, what: str) -> bytes:
    data = fp.read(n)
    if len(data) != n:
        raise EnvelopeError(f"truncated CMS object while reading {what}",
                            remedy="the file is damaged or was not written completely")
    return data


def read_header(fp: BinaryIO, what: str, limit: int) -> Header:
    """Read one identifier + length; refuse multi-byte tags and lengths above ``limit``."""
    first = _read_exact(fp, 2, what)
    tag, lb = first[0], first[1]
    if tag & 0x1F == 0x1F:
        raise EnvelopeError(f"unsupported high tag number in {what}")
    if lb < 0x80:
        return Header(tag, lb, 2)
    if lb == 0x80:
        if not tag & 0x20:
            raise EnvelopeError(f"indefinite length on a primitive element in {what}")
        return Header(tag, INDEFINITE, 2)
    n = lb & 0x7F
    if n > 8:
        raise EnvelopeError(f"length of {what} takes {n} octets")
    length = int.from_bytes(_read_exact(fp, n, what), "big")
    if length > limit:
        raise EnvelopeError(f"{what} claims {length} bytes, more than the {limit} allowed")
    return Header(tag, length, 2 + n)


def read_value(fp: BinaryIO, header: Header, what: str) -> bytes:
    """The value of a definite-length element (already bounded by :func:`read_header`)."""
    if header.length == INDEFINITE:
        raise EnvelopeError(f"{what} uses indefinite length where a definite one is required")
    return _read_exact(fp, header.length, what)
