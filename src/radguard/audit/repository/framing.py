"""Splitting a syslog byte stream into messages: RFC 6587 octet counting and LF framing.

RFC 5425 (TLS, PS3.15 A.6) uses octet counting only, ``MSG-LEN SP SYSLOG-MSG``; plain TCP
senders use either octet counting (RFC 6587 3.4.1) or "non-transparent" framing where a LF ends
each message (3.4.2). A :class:`Deframer` decides per connection from the first octet: a digit
means octet counting, anything else LF framing (a NUL trailer is accepted too).

Untrusted input is bounded: a message longer than ``max_message`` octets is not buffered; its first
``max_message`` octets are emitted with ``truncated=True`` (so it is kept with a reason, never
silently dropped) and the rest is skipped. A malformed length prefix ends the connection with
:attr:`Deframer.error` set, after the complete messages before it.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DEFAULT_MAX_MESSAGE", "Deframer", "Frame", "Frames"]

#: Largest message kept whole (octets). RFC 5425 4.3.1 asks receivers to take at least 2,048 and
#: PS3.15 A.6 at least 32,768; audit messages naming thousands of instances are larger.
DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS = 512
"""Open TCP/TLS connections per listener: with one read buffer and one partial message each, about
512 x 4.3 MiB at worst (a hospital's senders are tens to hundreds of devices)."""
_MAX_LEN_DIGITS = 10


class Frame(NamedTuple):
    """One message cut from the stream; ``length`` is its full length when ``truncated``."""

    data: bytes
    truncated: bool = False
    length: int = 0


class Frames(NamedTuple):
    """The messages one read completed, in bulk: ``messages`` in order, and ``truncated``
    mapping the index of each message kept only in part to its full length (``None``: none)."""

    messages: list[bytes]
    truncated: dict[int, int] | None


class Deframer:
    """Incremental splitter; feed it chunks, get complete frames back.

    :meth:`feed_bulk` is the receivers' path: one pass over the buffer per read (``find`` of the
    length's space, one copy per message out of a ``memoryview``), no object per message besides
    its bytes. :meth:`feed` gives the same frames as :class:`Frame` values.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.mode: str | None = None  # "octet" or "lf"
        self.error: str | None = None
        self._buf = bytearray()
        self._skip = 0  # octets of an oversized message still to discard
        self._skip_to_lf = False

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add ``chunk`` and return the frames it completes (possibly none)."""
        return _as_frames(self.feed_bulk(chunk))

    def feed_bulk(self, chunk: bytes) -> Frames:
        """Add ``chunk`` and return the messages it completes (see :class:`Frames`)."""
        if self.error is not None:
            return Frames([], None)
        self._buf += chunk
        if self.mode is None and self._buf:
            self.mode = "octet" if self._buf[:1].isdigit() else "lf"
        return self._octets() if self.mode == "octet" else self._lines()

    def finish(self) -> list[Frame]:
        """The connection ended: a non-empty LF-framed tail without its LF is still a message."""
        return _as_frames(self.finish_bulk())

    def finish_bulk(self) -> Frames:
        """:meth:`finish` as :class:`Frames`."""
        if self.mode == "lf" and self._buf.strip(b"\r\n\x00") and not self._skip_to_lf:
            tail, self._buf = bytes(self._buf), bytearray()
            return Frames([tail], None)
        if self.mode == "octet" and self._buf and self.error is None:
            self.error = f"connection ended inside a frame ({len(self._buf)} octets pending)"
        return Frames([], None)

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _octets(self) -> Frames:
        out: list[bytes] = []
        cut: dict[int, int] | None = None
        buf = self._buf
        size = len(buf)
        view = memoryview(buf)
        find = buf.find
        limit = self.max_message
        pos = 0
        try:
            while True:
                if self._skip:
                    n = min(self._skip, size - pos)
                    pos += n
                    self._skip -= n
                    if self._skip:
                        break
                space = find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
                if space < 0:
                    if size - pos > _MAX_LEN_DIGITS:
                        self.error = "octet-counting frame does not start with MSG-LEN SP"
                    break
                digits = bytes(view[pos:space])
                if not digits.isdigit() or digits[:1] == b"0":
                    self.error = f"bad octet-counting length {digits[:16]!r}"
                    break
                length = int(digits)
                start = space + 1
                if length > limit:
                    have = min(size - start, limit)
                    if have < limit:
                        break  # wait for the kept prefix to arrive in full
                    if cut is None:
                        cut = {}
                    cut[len(out)] = length
                    out.append(bytes(view[start : start + have]))
                    pos = start + have
                    self._skip = length - have
                    continue
                end = start + length
                if end > size:
                    break
                out.append(bytes(view[start:end]))
                pos = end
        finally:
            view.release()
        del buf[:pos]
        return Frames(out, cut)

    def _lines(self) -> Frames:
        out: list[bytes] = []
        cut: dict[int, int] | None = None
        buf = self._buf
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if self._skip_to_lf:
                if nl < 0:
                    pos = len(buf)
                    break
                self._skip_to_lf = False
                pos = nl + 1
                continue
            if nl < 0:
                if len(buf) - pos > self.max_message:
                    cut = cut or {}
                    cut[len(out)] = len(buf) - pos
                    out.append(bytes(buf[pos : pos + self.max_message]))
                    self._skip_to_lf = True
                    pos = len(buf)
                break
            line = bytes(buf[pos:nl]).rstrip(b"\r").strip(b"\x00")
            if len(line) > self.max_message:
                cut = cut or {}
                cut[len(out)] = len(line)
                out.append(line[: self.max_message])
            elif line:
                out.append(line)
            pos = nl + 1
        del buf[:pos]
        return Frames(out, cut)


def _as_frames(frames: Frames) -> list[Frame]:
    cut = frames.truncated or {}
    return [Frame(data, True, cut[i]) if i in cut else Frame(data)
            for i, data in enumerate(frames.messages)]
