"""DICOM audit messages (PS3.15 A.5) and their delivery (PS3.15 A.6/A.7, IHE ATNA).

Build a message with a function of :mod:`radguard.audit.builders` (one per PS3.15 A.5.3 message),
hand it to :meth:`AuditEmitter.emit`, which validates it (:mod:`.schema`), journals it locally and
sends it to the audit repository by syslog (:mod:`.syslog`). Codes come from the versioned table
``radguard/data/audit/dcm-codes.json`` (:mod:`.codes`).

Modules depend downwards only: ``emitter`` -> ``syslog``, ``schema``, ``builders`` -> ``codes`` ->
``message`` -> ``_xml``.
"""

from __future__ import annotations

from radguard.audit import builders, codes
from radguard.audit.emitter import AuditEmitter, read_journal
from radguard.audit.message import (
    ActionCode,
    ActiveParticipant,
    AuditMessage,
    AuditSource,
    CodedValue,
    EventIdentification,
    Outcome,
    ParticipantObject,
    SOPClass,
)
from radguard.audit.schema import is_valid, validate
from radguard.audit.syslog import (
    SyslogSender,
    SyslogUnavailable,
    TcpSender,
    TlsSender,
    UdpSender,
    frame,
)

__all__ = [
    "ActionCode",
    "ActiveParticipant",
    "AuditEmitter",
    "AuditMessage",
    "AuditSource",
    "CodedValue",
    "EventIdentification",
    "Outcome",
    "ParticipantObject",
    "SOPClass",
    "SyslogSender",
    "SyslogUnavailable",
    "TcpSender",
    "TlsSender",
    "UdpSender",
    "builders",
    "codes",
    "frame",
    "is_valid",
    "read_journal",
    "validate",
]
