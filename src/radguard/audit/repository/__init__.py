"""The audit record repository (IHE ATNA Audit Record Repository for PS3.15 A.5 messages).

Receives audit messages by syslog (UDP RFC 5426, TCP RFC 6587, TLS RFC 5425: :mod:`.receivers`),
parses the RFC 5424 header (:mod:`.header`) and the XML safely, validates it against the 2023b
schema or the older RFC 3881 form (:mod:`.parse`), appends every message, valid or not, to an
append-only, hash-chained table (:mod:`.records`, :mod:`.chain`), searches it (:mod:`.search`),
and watches it with detection rules written as data (:mod:`.rules`, :mod:`.detect`) whose alerts
become findings, log lines and notifications (:mod:`.alerts`). :mod:`.service` runs the whole
pipeline for ``radguard audit serve``.

Modules depend downwards: ``service`` -> ``receivers``, ``records``, ``detect``, ``alerts`` ->
``rules`` -> ``parse`` -> ``header``/``framing``.
"""

from __future__ import annotations

from radguard.audit.repository.alerts import AlertSink
from radguard.audit.repository.chain import ChainReport, verify
from radguard.audit.repository.detect import Alert, Detector
from radguard.audit.repository.errors import ReceiverError, RepositoryError, RuleError
from radguard.audit.repository.framing import Deframer, Frame
from radguard.audit.repository.header import SyslogHeader, parse_header
from radguard.audit.repository.local import LocalRepository
from radguard.audit.repository.parse import ParsedMessage, Validity, parse_message
from radguard.audit.repository.records import RecordWriter
from radguard.audit.repository.rules import Context, Rule, RulePack, builtin_pack, load_pack
from radguard.audit.repository.search import RecordView, SearchQuery, search
from radguard.audit.repository.service import DEFAULT_PORTS, RepositoryService, ServeConfig
from radguard.audit.repository.stats import AlertOut, Stats, list_alerts, read_stats

__all__ = [
    "DEFAULT_PORTS",
    "Alert",
    "AlertOut",
    "AlertSink",
    "ChainReport",
    "Context",
    "Deframer",
    "Detector",
    "Frame",
    "LocalRepository",
    "ParsedMessage",
    "ReceiverError",
    "RecordView",
    "RecordWriter",
    "RepositoryError",
    "RepositoryService",
    "Rule",
    "RuleError",
    "RulePack",
    "SearchQuery",
    "ServeConfig",
    "Stats",
    "SyslogHeader",
    "Validity",
    "builtin_pack",
    "list_alerts",
    "load_pack",
    "parse_header",
    "parse_message",
    "read_stats",
    "search",
    "verify",
]
