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

from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_MESSAGE", "Deframer", "Frame"]

#: Largest message kept whole (octets). RFC 5425 4.3.1 asks receivers to take at least 2,048 and
#: PS3.15 A.6 at least 32,768; audit messages naming thousands of instances are larger.
DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024
_MAX_LEN_DIGITS = 10


@dataclass(frozen=True, slots=True)
class Frame:
    """One message cut from the stream; ``length`` is its full length when ``truncated``."""

    data: bytes
    truncated: bool = False
    length: int = 0


class Deframer:
    """Incremental splitter; feed it chunks, get complete frames back."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self.mode: str | None = None  # "octet" or "lf"
        self.error: str | None = None
        self._buf = bytearray()
        self._skip = 0  # octets of an oversized message still to discard
        self._skip_to_lf = False

    def feed(self, chunk: bytes) -> list[Frame]:
        """Add ``chunk`` and return the frames it completes (possibly none)."""
        if self.error is not None:
            return []
        self._buf += chunk
        if self.mode is None and self._buf:
            self.mode = "octet" if self._buf[:1].isdigit() else "lf"
        return self._octets() if self.mode == "octet" else self._lines()

    def finish(self) -> list[Frame]:
        """The connection ended: a non-empty LF-framed tail without its LF is still a message."""
        if self.mode == "lf" and self._buf.strip(b"\r\n\x00") and not self._skip_to_lf:
            tail, self._buf = bytes(self._buf), bytearray()
            return [Frame(tail)]
        if self.mode == "octet" and self._buf and self.error is None:
            self.error = f"connection ended inside a frame ({len(self._buf)} octets pending)"
        return []

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _octets(self) -> list[Frame]:
        out: list[Frame] = []
        buf = self._buf
        pos = 0
        while True:
            if self._skip:
                n = min(self._skip, len(buf) - pos)
                pos += n
                self._skip -= n
                if self._skip:
                    break
            space = buf.find(b" ", pos, pos + _MAX_LEN_DIGITS + 1)
            if space < 0:
                if len(buf) - pos > _MAX_LEN_DIGITS:
                    self.error = "octet-counting frame does not start with MSG-LEN SP"
                break
            digits = bytes(buf[pos:space])
            if not digits.isdigit() or digits[:1] == b"0":
                self.error = f"bad octet-counting length {digits[:16]!r}"
                break
            length = int(digits)
            start = space + 1
            if length > self.max_message:
                have = min(len(buf) - start, self.max_message)
                if have < self.max_message:
                    break  # wait for the kept prefix to arrive in full
                out.append(Frame(bytes(buf[start : start + have]), True, length))
                pos = start + have
                self._skip = length - have
                continue
            end = start + length
            if end > len(buf):
                break
            out.append(Frame(bytes(buf[start:end])))
            pos = end
        del buf[:pos]
        return out

    def _lines(self) -> list[Frame]:
        out: list[Frame] = []
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
                    out.append(Frame(bytes(buf[pos : pos + self.max_message]), True,
                                     len(buf) - pos))
                    self._skip_to_lf = True
                    pos = len(buf)
                break
            line = bytes(buf[pos:nl]).rstrip(b"\r").strip(b"\x00")
            if len(line) > self.max_message:
                out.append(Frame(line[: self.max_message], True, len(line)))
            elif line:
                out.append(Frame(line))
            pos = nl + 1
        del buf[:pos]
        return out
