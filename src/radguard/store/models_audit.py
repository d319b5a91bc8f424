"""Tables of the audit record repository (PS3.15 A.5, IHE ATNA): records, search terms, alerts,
counters. Created by migration ``0002_audit_repository``; indexes made leaner by ``0003``.

- ``audit_records``: one row per received message, append-only. ``raw`` is the message exactly as
  received (syslog header included); ``hash`` chains every row to the previous one (see
  :mod:`radguard.audit.repository.chain`). The indexed columns are derived from ``raw``.
- ``audit_terms``: ``(kind, value, record_id)`` for the multi-valued search keys (user, node,
  patient, study, type); the primary key is the search index.
- ``audit_alerts``: one row per alert of a detection rule, linked to its finding.
- ``audit_counters``: health counters per source (received, stored, invalid, dropped, alerted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from radguard.store.models import Base, JSONType, UTCDateTime

__all__ = ["AuditAlert", "AuditCounter", "AuditRecord", "AuditTerm"]

_ID = BigInteger().with_variant(Integer(), "sqlite")

#: Conditions of the partial indexes on ``audit_records`` (migration ``0003``).
FAILED_CONDITION = "outcome <> 0"
NOT_VALID_CONDITION = "validity <> 'valid'"


class AuditRecord(Base):
    """One received audit message (see the module docstring)."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index(None, "received_at"),
        Index(None, "event_time"),
        Index(None, "event_id", "id"),
        # Partial: only the rare values are indexed (search states the same condition).
        Index(None, "outcome", "id", sqlite_where=text(FAILED_CONDITION),
              postgresql_where=text(FAILED_CONDITION)),
        Index(None, "validity", "id", sqlite_where=text(NOT_VALID_CONDITION),
              postgresql_where=text(NOT_VALID_CONDITION)),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    transport: Mapped[str] = mapped_column(String(8))
    peer: Mapped[str] = mapped_column(String(255))
    hostname: Mapped[str | None] = mapped_column(String(255), nullable=True)
    app_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    msgid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str | None] = mapped_column(String(1), nullable=True)
    outcome: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    validity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    hash: Mapped[str] = mapped_column(String(64))


class AuditTerm(Base):
    """A search key of a record: ``kind`` is user, node, patient, study or type. On SQLite a
    ``WITHOUT ROWID`` table: the primary key is the search index and the only B-tree."""

    __tablename__ = "audit_terms"
    __table_args__ = ({"sqlite_with_rowid": False},)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    record_id: Mapped[int] = mapped_column(
        _ID, ForeignKey("audit_records.id", ondelete="CASCADE"), primary_key=True
    )


class AuditAlert(Base):
    """An alert raised by a detection rule; ``record_ids`` are the records that triggered it."""

    __tablename__ = "audit_alerts"
    __table_args__ = (Index(None, "fired_at"), Index(None, "rule_id", "fired_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(128))
    rule_version: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(Text)
    record_ids: Mapped[list[Any]] = mapped_column(JSONType)
    finding_id: Mapped[int | None] = mapped_column(
        ForeignKey("findings.id", ondelete="SET NULL"), nullable=True
    )


class AuditCounter(Base):
    """A health counter of the repository for one source (peer address, ``local``, ``udp:...``)."""

    __tablename__ = "audit_counters"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
