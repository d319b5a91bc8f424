"""Health numbers of the repository and the stored alerts, as plain values.

Counters live in ``audit_counters`` per source (the sender's address, ``local`` for RadGuard's own
emitter, ``udp:HOST:PORT`` for the kernel's drop counter of a UDP listener, ``alerts`` for the
detection engine): ``received`` (frames taken off the wire), ``stored``, ``invalid`` (stored but
not conformant or not XML), ``dropped`` (UDP datagrams lost: kernel drops read from
``/proc/net/udp`` where readable, and datagrams refused because the queue was full) and
``alerted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from radguard.store import Store
from radguard.store.models_audit import AuditAlert, AuditCounter, AuditRecord

__all__ = ["COUNTERS", "AlertOut", "Stats", "list_alerts", "read_stats"]

COUNTERS = ("received", "stored", "invalid", "dropped", "alerted")


@dataclass(frozen=True, slots=True)
class Stats:
    """Totals and per-source counters, plus the number of records and the newest record id."""

    total: dict[str, int]
    sources: dict[str, dict[str, int]]
    records: int
    last_record_id: int | None
    alerts: int

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "sources": self.sources, "records": self.records,
                "last_record_id": self.last_record_id, "alerts": self.alerts}


@dataclass(frozen=True, slots=True)
class AlertOut:
    """A stored alert (``radguard audit alerts``)."""

    id: int
    rule_id: str
    rule_version: str
    severity: str
    fired_at: datetime
    time: datetime
    subject_kind: str
    subject: str
    message: str
    record_ids: tuple[int, ...]
    finding_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "rule_id": self.rule_id, "rule_version": self.rule_version,
                "severity": self.severity, "time": self.time.isoformat(),
                "fired_at": self.fired_at.isoformat(),
                "subject": {"kind": self.subject_kind, "value": self.subject},
                "record_ids": list(self.record_ids), "message": self.message,
                "finding_id": self.finding_id}


def read_stats(store: Store) -> Stats:
    """Counters in total and per source."""
    with store.read_session() as session:
        rows = session.execute(select(AuditCounter.source, AuditCounter.name,
                                      AuditCounter.value)).all()
        last = session.scalar(select(func.max(AuditRecord.id)))
        alerts = session.scalar(select(func.count(AuditAlert.id))) or 0
    total = dict.fromkeys(COUNTERS, 0)
    sources: dict[str, dict[str, int]] = {}
    for source, name, value in rows:
        total[name] = total.get(name, 0) + int(value)
        sources.setdefault(source, dict.fromkeys(COUNTERS, 0))[name] = int(value)
    return Stats(total, dict(sorted(sources.items())), int(last or 0), last, int(alerts))


def list_alerts(store: Store, *, rule_id: str | None = None, since: datetime | None = None,
                limit: int = 100) -> list[AlertOut]:
    """Stored alerts, newest first."""
    query = select(AuditAlert).order_by(AuditAlert.id.desc()).limit(limit)
    if rule_id is not None:
        query = query.where(AuditAlert.rule_id == rule_id)
    if since is not None:
        query = query.where(AuditAlert.fired_at >= since)
    with store.read_session() as session:
        return [AlertOut(r.id, r.rule_id, r.rule_version, r.severity, r.fired_at, r.event_time,
                         r.subject_kind, r.subject, r.message, tuple(r.record_ids), r.finding_id)
                for r in session.scalars(query)]
