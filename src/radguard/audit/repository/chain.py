"""The hash chain of stored audit records, and its verification.

Every record's ``hash`` is SHA-256 over the previous record's hash and the record's own content
(:func:`record_hash`): its id, arrival time, transport, peer, validity, reason, the derived fields
searched, and SHA-256 of the raw bytes. The first record chains to :data:`GENESIS`. Changing any
stored field, deleting a record or inserting one breaks the chain at that point; :func:`verify`
walks the records in id order and names the first record whose hash does not follow.

This proves integrity *within* the store; it does not stop someone who can rewrite the whole
table from recomputing every hash. Keep the head hash (``radguard audit verify`` prints it)
somewhere else to pin the chain; see docs/audit.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from radguard.store import Store
from radguard.store.models_audit import AuditCounter, AuditRecord

__all__ = ["GENESIS", "ChainReport", "chain_hash", "hash_tail", "record_hash", "verify"]

GENESIS = "0" * 64
_SEP = b"\x1f"
_BATCH = 5000


def _text(value: object) -> bytes:
    if value is None:
        return b"\x00"
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds").encode()
    return str(value).encode("utf-8", "surrogateescape")


def record_hash(previous: str, fields: tuple[object, ...], raw: bytes) -> str:
    """SHA-256 (hex) chaining ``previous`` to a record's ``fields`` (in :data:`FIELDS` order)
    and raw bytes."""
    return chain_hash(previous, fields[0], hash_tail(fields[1:], raw))


def hash_tail(values: tuple[object, ...], raw: bytes) -> bytes:
    """The part of a record's hash input after its id: ``values`` are the :data:`FIELDS` after
    ``id``. Independent of the chain, so parse workers compute it in parallel.

    Same octets as joining :func:`_text` of each value, built as one string and encoded once
    (UTF-8 with ``surrogateescape`` encodes character by character, so the result is identical;
    ``\x00`` and ``\x1f`` encode to themselves)."""
    text = "\x1f".join([
        v if type(v) is str else "\x00" if v is None
        else v.isoformat(timespec="microseconds") if isinstance(v, datetime) else str(v)
        for v in values])
    return b"".join((_SEP, text.encode("utf-8", "surrogateescape"), _SEP,
                     hashlib.sha256(raw).digest()))


def chain_hash(previous: str, record_id: object, tail: bytes) -> str:
    """The record hash from the previous hash, the record id and :func:`hash_tail` (one SHA-256
    call; the writer's tight loop)."""
    return hashlib.sha256(b"".join((previous.encode("ascii"), _text(record_id), tail))
                          ).hexdigest()


FIELDS = ("id", "received_at", "transport", "peer", "hostname", "app_name", "msgid",
          "event_time", "source_id", "event_id", "action", "outcome", "validity", "reason")
"""The columns covered by the hash besides ``raw``, in hashing order."""


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of :func:`verify`: ``ok``, how many records were checked, the head hash, and the
    first broken record (its id and why) when not ok."""

    ok: bool
    checked: int
    head: str
    first_broken: int | None = None
    problem: str | None = None
    head_id: int = 0
    """Id of the newest record verified (with ``head``: the anchor to note outside the database)."""


def verify(store: Store, progress: Callable[[int], None] | None = None, *,
           anchor: tuple[int, str] | None = None) -> ChainReport:
    """Recompute the chain over every stored record, oldest first.

    Stops at the first record whose stored hash differs from the recomputed one (content changed,
    or a record before it was removed or inserted); ids that skip a number are reported too.

    A hash chain alone cannot show that its newest records were removed. Two checks cover the tail:
    the ``stored`` counters, written in the same transaction as the records, must not count more
    records than the chain holds; and ``anchor`` (record id, hash), a head noted outside the
    database earlier (``audit verify`` prints it), must still be in the chain with that hash.
    """
    columns = [getattr(AuditRecord, name) for name in FIELDS]
    previous, last_id, checked = GENESIS, 0, 0
    with store.read_session() as session:
        # read before the walk: on PostgreSQL (READ COMMITTED) each statement has its own snapshot,
        # so a batch committed during the walk may be counted here but not walked; reading first,
        # the chain can only hold more records than counted, never fewer, unless some were removed
        counted = session.scalar(select(func.coalesce(func.sum(AuditCounter.value), 0))
                                 .where(AuditCounter.name == "stored"))
        while True:
            rows = session.execute(
                select(*columns, AuditRecord.raw, AuditRecord.hash)
                .where(AuditRecord.id > last_id).order_by(AuditRecord.id).limit(_BATCH)
            ).all()
            if not rows:
                break
            for row in rows:
                fields = tuple(row[: len(FIELDS)])
                rid = int(row[0])
                raw = row[-2]
                # a tampered row may hold text where bytes were stored: still hash, never crash
                raw = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
                expected = record_hash(previous, fields, raw)
                if expected != row[-1]:
                    gap = rid != last_id + 1
                    why = (f"record {rid} does not follow record {last_id}: records between "
                           "them were removed" if gap else
                           f"record {rid}: stored hash does not match its content or the "
                           "record before it")
                    return ChainReport(False, checked, previous, rid, why)
                previous, last_id = row[-1], rid
                checked += 1
                if anchor is not None and rid == anchor[0] and row[-1] != anchor[1]:
                    return ChainReport(False, checked, previous, rid,
                                       f"record {rid} does not have the anchored hash: the chain "
                                       "was rewritten from there on")
            if progress is not None:
                progress(checked)
    if counted is not None and int(counted) > checked:
        return ChainReport(False, checked, previous, last_id + 1,
                           f"{int(counted) - checked} record(s) counted as stored are missing "
                           f"after record {last_id}: records were removed from the end")
    if anchor is not None and anchor[0] > last_id:
        return ChainReport(False, checked, previous, anchor[0],
                           f"anchored record {anchor[0]} is missing (the chain ends at record "
                           f"{last_id}): records were removed from the end")
    return ChainReport(True, checked, previous, head_id=last_id)
