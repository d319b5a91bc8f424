"""The syslog header of a received message: RFC 5424 section 6, with a tolerant fallback.

PS3.15 A.6/A.7 carry one audit message per syslog message, the XML as MSG. :func:`parse_header`
splits ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [BOM]MSG`` into a
:class:`SyslogHeader`; NILVALUE ``-`` becomes ``None``. Messages that are not RFC 5424 (an old BSD
RFC 3164 sender, or bare XML written straight into the repository) are still accepted: the PRI is
read if present, and the MSG starts at the first ``<`` that opens XML; ``rfc5424`` is then false.
Parsing never raises: a header problem is reported in ``problem`` and the message is kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = ["ACCEPTED_MSGIDS", "SyslogHeader", "parse_header"]

#: MSGIDs of audit messages: DICOM's (PS3.15 A.6) and IHE ATNA's spelling, plus a common variant.
ACCEPTED_MSGIDS = frozenset({"DICOM+RFC3881", "IHE+RFC-3881", "IHE+RFC3881"})

_BOM = b"\xef\xbb\xbf"
_MAX_SD = 64 * 1024


class SyslogHeader(NamedTuple):
    """The header fields of one syslog message and where its MSG starts (a named tuple: built
    once per received message, cheaper than a frozen dataclass).

    ``pri`` is the PRI value (facility * 8 + severity) or ``None``; ``msg_offset`` indexes the MSG
    in the raw bytes (after any UTF-8 BOM).
    """

    rfc5424: bool
    pri: int | None
    timestamp: datetime | None
    hostname: str | None
    app_name: str | None
    procid: str | None
    msgid: str | None
    structured_data: str | None
    msg_offset: int
    problem: str | None = None


def _nil(token: bytes) -> str | None:
    return None if token == b"-" else token.decode("ascii", "replace")


def _time(token: bytes) -> datetime | None:
    if token == b"-":
        return None
    text = token.decode("ascii", "replace")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _read_pri(raw: bytes) -> tuple[int | None, int]:
    """PRI and the offset just past ``>``; ``(None, 0)`` when there is no valid PRI."""
    if not raw.startswith(b"<"):
        return None, 0
    end = raw.find(b">", 1, 5)
    digits = raw[1:end] if end > 0 else b""
    if not digits.isdigit() or int(digits) > 191:
        return None, 0
    return int(digits), end + 1


def _skip_sd(raw: bytes, pos: int) -> int:
    """Offset just past the STRUCTURED-DATA starting at ``pos`` (``-`` or ``[...]...``), or -1."""
    if raw[pos : pos + 1] == b"-":
        return pos + 1
    limit = min(len(raw), pos + _MAX_SD)
    while pos < limit and raw[pos : pos + 1] == b"[":
        pos += 1
        quoted = False
        while pos < limit:
            ch = raw[pos]
            if quoted and ch == 0x5C:  # backslash escapes the next octet inside a value
                pos += 2
                continue
            if ch == 0x22:
                quoted = not quoted
            elif ch == 0x5D and not quoted:
                break
            pos += 1
        if pos >= limit:
            return -1
        pos += 1
    return pos


def _fallback(raw: bytes, problem: str) -> SyslogHeader:
    pri, offset = _read_pri(raw)
    start = raw.find(b"<", offset)
    msg = start if start >= 0 else offset
    return SyslogHeader(False, pri, None, None, None, None, None, None, msg, problem)


def parse_header(raw: bytes, *, full: bool = True) -> SyslogHeader:
    """Parse the syslog header of ``raw`` (one complete message, without transport framing).

    ``full=False`` leaves ``timestamp`` and ``structured_data`` as ``None`` (not decoded): what
    the repository stores does not include them, and it parses every received message."""
    pri, offset = _read_pri(raw)
    if pri is None:
        return _fallback(raw, "no syslog PRI; message kept as bare MSG")
    if raw[offset : offset + 2] != b"1 ":
        return _fallback(raw, "not an RFC 5424 message (VERSION is not 1); MSG read after PRI")
    fields = raw[offset + 2 :].split(b" ", 5)
    if len(fields) < 6:
        return _fallback(raw, "RFC 5424 header is incomplete")
    stamp, host, app, procid, msgid, rest = fields
    sd_start = len(raw) - len(rest)
    sd_end = _skip_sd(raw, sd_start)
    if sd_end < 0:
        return _fallback(raw, "RFC 5424 STRUCTURED-DATA is not terminated")
    msg = sd_end + 1 if raw[sd_end : sd_end + 1] == b" " else sd_end
    if raw[msg : msg + 3] == _BOM:
        msg += 3
    structured = raw[sd_start:sd_end]
    return SyslogHeader(
        rfc5424=True,
        pri=pri,
        timestamp=_time(stamp) if full else None,
        hostname=_nil(host),
        app_name=_nil(app),
        procid=_nil(procid),
        msgid=_nil(msgid),
        structured_data=(None if structured == b"-" or not full
                         else structured.decode("utf-8", "replace")),
        msg_offset=msg,
    )
