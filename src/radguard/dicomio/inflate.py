"""Bounded inflation of Deflated Explicit VR Little Endian data sets (PS3.5 A.5)."""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from typing import IO

from radguard.dicomio._common import Stop, WalkState
from radguard.dicomio.result import Problem
from radguard.dicomio.source import ByteSource, StreamSource

__all__ = ["inflate"]


def inflate(src: ByteSource, pos: int, state: WalkState) -> tuple[StreamSource, int, int]:
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
                raise Stop
            if consumed and produced > 1024 * 1024 and produced / consumed > limits.max_inflate_ratio:
                state.problems.append(Problem("limit-exceeded", f"deflated data set inflates more "
                                      f"than {limits.max_inflate_ratio}:1 (decompression bomb)", pos,
                                      details={"limit": "max_inflate_ratio"}))
                raise Stop
            if inflater.eof:
                break
            if time.monotonic() > state.deadline:
                state.problems.append(Problem("limit-exceeded", "inflating took too long", pos,
                                              details={"limit": "max_seconds"}))
                raise Stop
        if not inflater.eof:
            state.problems.append(Problem("truncated", "deflate stream ends before its final block",
                                          pos))
    except zlib.error as exc:
        out.close()
        state.problems.append(Problem("inflate-error", f"deflated data set is corrupt: {exc}", pos))
        raise Stop from exc
    except Stop:
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
