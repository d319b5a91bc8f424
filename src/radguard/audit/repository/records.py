"""Appending parsed messages to the store: one transaction per batch, hash chained, counted.

:class:`RecordWriter` is the repository's only writer of ``audit_records``. Each
:meth:`RecordWriter.append` runs in one transaction that first takes the store's write lock
(``BEGIN IMMEDIATE`` on SQLite, a transaction-level advisory lock on PostgreSQL), reads the chain
head, and then inserts the batch with ids and hashes that follow it. Several processes may append
(``radguard audit serve`` and RadGuard's own emitter writing straight into a local store): the
lock serialises them, so the chain stays linear.

Counter deltas (received, stored, invalid, dropped...) are added in the same transaction, so the
health numbers agree with the records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.orm import Session

from radguard.audit.repository.chain import FIELDS, GENESIS, record_hash
from radguard.audit.repository.parse import ParsedMessage, Validity
from radguard.store import Store
from radguard.store.models_audit import AuditCounter, AuditRecord, AuditTerm

__all__ = ["RecordWriter", "add_counters"]

_PG_LOCK = 0x52474155  # "RGAU": serialises chain appends on PostgreSQL


def add_counters(session: Session, deltas: Mapping[tuple[str, str], int]) -> None:
    """Add ``{(source, name): delta}`` to ``audit_counters`` (rows created as needed)."""
    table: Table = AuditCounter.__table__  # type: ignore[assignment]
    for (source, name), delta in deltas.items():
        if not delta:
            continue
        done = session.execute(
            update(table).where(table.c.source == source[:255], table.c.name == name)
            .values(value=table.c.value + delta)
        )
        if getattr(done, "rowcount", 0) == 0:
            session.execute(insert(table).values(source=source[:255], name=name, value=delta))


class RecordWriter:
    """Appends :class:`ParsedMessage` batches to ``store`` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(
        self,
        messages: Sequence[ParsedMessage],
        counters: Mapping[tuple[str, str], int] | None = None,
    ) -> list[int]:
        """Store ``messages`` in order and return their record ids.

        Raises
        ------
        StoreError
            The database refused; nothing of the batch is stored.
        """
        deltas = dict(counters or {})
        for m in messages:
            source = m.peer
            deltas[(source, "stored")] = deltas.get((source, "stored"), 0) + 1
            if m.validity not in (Validity.VALID, Validity.RFC3881):
                deltas[(source, "invalid")] = deltas.get((source, "invalid"), 0) + 1
        records: Table = AuditRecord.__table__  # type: ignore[assignment]
        with self.store.session() as session:
            if self.store.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            head = session.execute(
                select(records.c.id, records.c.hash).order_by(records.c.id.desc()).limit(1)
            ).first()
            last_id, previous = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            rows: list[dict[str, Any]] = []
            terms: list[dict[str, Any]] = []
            ids: list[int] = []
            for m in messages:
                last_id += 1
                values: dict[str, Any] = {
                    "id": last_id, "received_at": m.received_at, "transport": m.transport,
                    "peer": m.peer[:255], "hostname": _cut(m.hostname, 255),
                    "app_name": _cut(m.app_name, 64), "msgid": _cut(m.msgid, 64),
                    "event_time": m.event_time, "source_id": m.source_id,
                    "event_id": _cut(m.event_id, 64), "action": m.action,
                    "outcome": m.outcome, "validity": str(m.validity), "reason": m.reason,
                }
                previous = record_hash(previous, tuple(values[f] for f in FIELDS), m.raw)
                values["raw"] = m.raw
                values["hash"] = previous
                rows.append(values)
                terms.extend({"kind": k, "value": v, "record_id": last_id}
                             for k, v in dict.fromkeys(m.terms))
                ids.append(last_id)
            if self.store.dialect == "sqlite":
                _sqlite_insert(session, rows, terms)
            else:
                if rows:
                    session.execute(insert(records), rows)
                if terms:
                    session.execute(insert(AuditTerm), terms)
            add_counters(session, deltas)
        return ids


_COLUMNS = (*FIELDS, "raw", "hash")
_INSERT_RECORDS = "INSERT INTO audit_records ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(_COLUMNS), ", ".join("?" * len(_COLUMNS)))
_INSERT_TERMS = "INSERT INTO audit_terms (kind, value, record_id) VALUES (?, ?, ?)"


def _sqlite_time(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite ``DateTime`` stores (naive UTC), for driver-level inserts."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_insert(session: Session, rows: list[dict[str, Any]],
                   terms: list[dict[str, Any]]) -> None:
    """Bulk insert through the driver: the same rows, without per-row ORM/Core overhead (the
    ingest path of ``audit serve`` spends most of its time here)."""
    connection = session.connection()
    if rows:
        connection.exec_driver_sql(_INSERT_RECORDS, [
            tuple(_sqlite_time(r[c]) if c in ("received_at", "event_time") else r[c]
                  for c in _COLUMNS) for r in rows])
    if terms:
        connection.exec_driver_sql(_INSERT_TERMS, [
            (t["kind"], t["value"], t["record_id"]) for t in terms])


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None
