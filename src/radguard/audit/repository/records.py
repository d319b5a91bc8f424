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
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Table, insert, select, text, update
from sqlalchemy.orm import Session

from radguard.audit.repository.chain import FIELDS, GENESIS, chain_hash, hash_tail
from radguard.audit.repository.parse import ParsedMessage, Validity
from radguard.store import Store
from radguard.store.models_audit import AuditCounter, AuditRecord, AuditTerm

__all__ = ["Prepared", "RecordWriter", "add_counters", "prepare", "record_values"]

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


class Prepared(NamedTuple):
    """A parsed message made ready for the writer by a parse worker (:func:`prepare`).

    ``row`` holds the SQLite column values of :data:`_COLUMNS` between ``id`` and ``hash`` (times
    as SQLite text, validity as text, cut to the column sizes); ``tail`` the id-independent part
    of the hash input (:func:`.chain.hash_tail`); ``msg`` the :class:`ParsedMessage` itself (a
    named tuple: it shares ``raw`` and the strings with ``row``, which pickle sends once).
    """

    row: tuple[Any, ...]
    tail: bytes
    msg: ParsedMessage

    def message(self) -> ParsedMessage:
        return self.msg

    @property
    def terms(self) -> list[tuple[str, str]]:
        """The distinct ``(kind, value)`` search keys (user, node, patient, study, type); each
        kind's values are distinct already (:func:`.parse._uniq`)."""
        m = self.msg
        return [*(("user", v) for v in m.users), *(("node", v) for v in m.nodes),
                *(("patient", v) for v in m.patients), *(("study", v) for v in m.studies),
                *(("type", v) for v in m.type_codes)]


_TERM_KINDS = tuple((kind, ParsedMessage._fields.index(field)) for kind, field in (
    ("user", "users"), ("node", "nodes"), ("patient", "patients"), ("study", "studies"),
    ("type", "type_codes")))
"""``(kind, ParsedMessage index)`` of the search terms, in the order :attr:`Prepared.terms`
lists them (tuple indexes: the writer's loop runs once per stored message)."""


def record_values(m: ParsedMessage) -> tuple[Any, ...]:
    """The stored values of :data:`.chain.FIELDS` after ``id``, as the hash covers them."""
    return (m.received_at, m.transport, m.peer[:255], _cut(m.hostname, 255),
            _cut(m.app_name, 64), _cut(m.msgid, 64), m.event_time, m.source_id,
            _cut(m.event_id, 64), m.action, m.outcome, str(m.validity), m.reason)


def prepare(m: ParsedMessage) -> Prepared:
    """Everything about ``m`` the writer needs that does not depend on its place in the chain
    (runs in the parse workers).

    Each time is formatted once: the hash input takes ``isoformat(timespec="microseconds")``
    (what :func:`.chain.hash_tail` does with a datetime, so passing the text hashes the same
    octets) and, for a UTC time of a four-digit year, the stored SQLite text is the same digits
    with a space for the ``T`` and without the offset (:func:`_sqlite_text`)."""
    values = record_values(m)
    received, event = _iso_time(values[0]), values[6]
    event_iso = None if event is None else event.isoformat(timespec="microseconds")
    row = (received[1], *values[1:6], _sqlite_from_iso(event, event_iso), *values[7:], m.raw)
    return Prepared(row, hash_tail((received[0], *values[1:6], event_iso, *values[7:]), m.raw),
                    m)


def _sqlite_from_iso(value: datetime | None, iso: str | None) -> str | None:
    if value is None or iso is None:
        return None
    if value.tzinfo is UTC and value.year >= 1000:
        return f"{iso[:10]} {iso[11:26]}"
    return _sqlite_text(value)


@lru_cache(maxsize=1024)
def _iso_time(value: datetime) -> tuple[str, str | None]:
    """``(hash text, SQLite text)`` of an arrival time (cached: a read's messages share it)."""
    return value.isoformat(timespec="microseconds"), _sqlite_text(value)


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
        return self.append_prepared([prepare(m) for m in messages], counters)

    def append_prepared(
        self,
        batch: Sequence[Prepared],
        counters: Mapping[tuple[str, str], int] | None = None,
    ) -> list[int]:
        """Store prepared messages (:func:`prepare`) in order and return their record ids: one
        transaction, the chain continued from the stored head in one tight hashing loop."""
        deltas = dict(counters or {})
        for p in batch:
            source, validity = p.row[2], p.row[11]
            deltas[(source, "stored")] = deltas.get((source, "stored"), 0) + 1
            if validity not in _READABLE_OK:
                deltas[(source, "invalid")] = deltas.get((source, "invalid"), 0) + 1
        records: Table = AuditRecord.__table__  # type: ignore[assignment]
        with self.store.session() as session:
            if self.store.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            head = session.execute(
                select(records.c.id, records.c.hash).order_by(records.c.id.desc()).limit(1)
            ).first()
            last_id, previous = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            first = last_id + 1
            hashes: list[str] = []
            for p in batch:
                last_id += 1
                previous = chain_hash(previous, last_id, p.tail)
                hashes.append(previous)
            ids = list(range(first, last_id + 1))
            if self.store.dialect == "sqlite":
                connection = session.connection()
                for pragma in _PRAGMAS:
                    connection.exec_driver_sql(pragma)
                if batch:
                    connection.exec_driver_sql(_INSERT_RECORDS, [
                        (rid, *p.row, h) for rid, p, h in zip(ids, batch, hashes, strict=True)])
                    terms: list[tuple[str, str, int]] = []
                    add = terms.append
                    for rid, p in zip(ids, batch, strict=True):
                        m = p.msg
                        for kind, index in _TERM_KINDS:
                            values: tuple[str, ...] = m[index]  # type: ignore[assignment]
                            for v in values:
                                add((kind, v, rid))
                    if terms:  # an empty list would run the statement once without values
                        connection.exec_driver_sql(_INSERT_TERMS, terms)
            elif batch:
                rows: list[dict[str, Any]] = []
                for rid, p, h in zip(ids, batch, hashes, strict=True):
                    m = p.message()
                    rows.append({**dict(zip(FIELDS, (rid, *record_values(m)), strict=True)),
                                 "raw": m.raw, "hash": h})
                session.execute(insert(records), rows)
                term_rows = [{"kind": k, "value": v, "record_id": rid}
                             for rid, p in zip(ids, batch, strict=True) for k, v in p.terms]
                if term_rows:
                    session.execute(insert(AuditTerm), term_rows)
            add_counters(session, deltas)
        return ids


#: Writer connection settings (SQLite, on top of the store's WAL + synchronous=NORMAL): a 64 MiB
#: page cache keeps the six record indexes and the term index hot as the table grows, and a WAL
#: checkpoint every ~40 MB instead of ~4 MB writes pages back less often. Neither changes
#: durability (each committed transaction is in the WAL either way). Measured: -13% writer CPU
#: per message at 80k-240k records, one run each (bench/results/audit.md).
_PRAGMAS: tuple[str, ...] = ("PRAGMA cache_size = -65536", "PRAGMA wal_autocheckpoint = 10000")
_READABLE_OK = frozenset({str(Validity.VALID), str(Validity.RFC3881)})
_COLUMNS = (*FIELDS, "raw", "hash")
_INSERT_RECORDS = "INSERT INTO audit_records ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(_COLUMNS), ", ".join("?" * len(_COLUMNS)))
_INSERT_TERMS = "INSERT INTO audit_terms (kind, value, record_id) VALUES (?, ?, ?)"


def _sqlite_text(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite ``DateTime`` stores (naive UTC), for driver-level inserts:
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (``isoformat`` is cheaper than ``strftime``; the same text
    for four-digit years, ``strftime`` itself for the others)."""
    if value is None:
        return None
    utc = value.astimezone(UTC)
    if utc.year >= 1000:
        return utc.isoformat(" ", "microseconds")[:26]
    return utc.strftime("%Y-%m-%d %H:%M:%S.%f")


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None
