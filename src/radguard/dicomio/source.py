"""Random-access byte sources for the bounded reader.

A source is read with :meth:`ByteSource.read_at`; it never loads more than asked. Small files are held in
memory (one read serves hashing and parsing); large files are read with ``pread`` so memory stays flat
whatever the file size.
"""

from __future__ import annotations

import hashlib
import os
from typing import IO, Protocol

__all__ = ["ByteSource", "FileSource", "MemorySource", "StreamSource", "open_path"]

MEMORY_THRESHOLD = 8 * 1024 * 1024
CHUNK = 1024 * 1024


class ByteSource(Protocol):
    """What the reader needs of a file: its size and bytes at an offset."""

    size: int

    def read_at(self, offset: int, length: int) -> bytes: ...

    def sha256(self) -> str: ...

    def close(self) -> None: ...


class MemorySource:
    """Bytes already in memory."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)

    def read_at(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def close(self) -> None:
        self.data = b""


class FileSource:
    """An open file descriptor read with ``os.pread``; hashing streams it in 1 MiB chunks."""

    def __init__(self, fd: int, size: int):
        self.fd = fd
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        if length <= 0 or offset >= self.size:
            return b""
        return os.pread(self.fd, min(length, self.size - offset), offset)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        offset = 0
        while True:
            n = os.preadv(self.fd, [buf], offset)
            if n <= 0:
                break
            digest.update(view[:n])
            offset += n
        return digest.hexdigest()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StreamSource:
    """A seekable binary stream (a file inside an ISO image, a spooled temporary file)."""

    def __init__(self, stream: IO[bytes], size: int):
        self.stream = stream
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        if length <= 0 or offset >= self.size:
            return b""
        self.stream.seek(offset)
        return self.stream.read(min(length, self.size - offset))

    def sha256(self) -> str:
        digest = hashlib.sha256()
        self.stream.seek(0)
        while True:
            chunk = self.stream.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
        return digest.hexdigest()

    def close(self) -> None:
        self.stream.close()


def open_path(path: str | os.PathLike[str], *, memory_threshold: int = MEMORY_THRESHOLD) -> ByteSource:
    """Open a regular file without following a final symbolic link.

    Files up to ``memory_threshold`` bytes are read at once; larger ones are read on demand.

    Raises
    ------
    OSError
        The file cannot be opened (the caller turns this into a finding).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        size = os.fstat(fd).st_size
        if size <= memory_threshold:
            chunks = []
            remaining = size
            offset = 0
            while remaining > 0:
                chunk = os.pread(fd, remaining, offset)
                if not chunk:
                    break
                chunks.append(chunk)
                offset += len(chunk)
                remaining -= len(chunk)
            os.close(fd)
            return MemorySource(b"".join(chunks))
        return FileSource(fd, size)
    except BaseException:
        os.close(fd)
        raise
