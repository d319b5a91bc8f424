"""Replaying a file of audit messages through rules (``radguard audit rules test RULE FILE``).

:func:`split_messages` accepts the forms such files come in: an RFC 6587 octet-counted stream or
RadGuard's journal (``LEN SP MSG`` records, LF between them allowed), one message per line (with
or without an RFC 5424 header), or a single XML document. :func:`replay` parses every message as
the repository would and feeds it to a :class:`.detect.Detector`, record ids being the message's
position in the file (1-based). Time-driven rules (silence) are checked after each message at
that message's time, so a replay gives the alerts live traffic would have given.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from radguard.audit.repository.detect import Alert, Detector
from radguard.audit.repository.errors import RepositoryError
from radguard.audit.repository.parse import ParsedMessage, parse_message

__all__ = ["replay", "split_messages"]


def split_messages(data: bytes, max_message: int = 16 * 1024 * 1024) -> list[bytes]:
    """Cut a file's bytes into messages (see the module docstring).

    Raises
    ------
    RepositoryError
        An octet-counted file is malformed (the offset is named).
    """
    head = data.lstrip()
    if head[:1].isdigit():
        out: list[bytes] = []
        pos = 0
        while True:
            while pos < len(data) and data[pos] in b" \r\n\x00":
                pos += 1
            if pos >= len(data):
                return out
            space = data.find(b" ", pos, pos + 12)
            length = data[pos:space] if space > 0 else b""
            if not length.isdigit() or int(length) > max_message or \
                    space + 1 + int(length) > len(data):
                raise RepositoryError("malformed octet-counted record", subject=f"offset {pos}",
                                      remedy="write one message per line, or LEN SP MSG records")
            out.append(data[space + 1 : space + 1 + int(length)])
            pos = space + 1 + int(length)
    if head.startswith((b"<?xml", b"<AuditMessage")) and head.count(b"<AuditMessage") == 1:
        return [head]
    return [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]


def parse_all(messages: Iterable[bytes]) -> list[ParsedMessage]:
    now = datetime.now(UTC)
    return [parse_message(m, transport="file", peer="file", received_at=now) for m in messages]


def replay(detector: Detector, messages: Iterable[ParsedMessage]) -> list[Alert]:
    """Feed ``messages`` in order; return every alert raised."""
    alerts: list[Alert] = []
    for index, msg in enumerate(messages, start=1):
        alerts.extend(detector.observe(msg, index))
        alerts.extend(detector.tick(msg.time))
    return alerts
