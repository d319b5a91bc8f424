"""Migration 0003's leaner indexes: searches on rare outcomes and validities still find exactly
the right records, and SQLite answers them from the partial indexes (not a table scan)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from radguard.audit.repository import RecordWriter, SearchQuery, Validity, search
from radguard.audit.repository.parse import ParsedMessage
from radguard.audit.repository.search import build
from radguard.store import Store

T0 = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)


def _message(i: int) -> ParsedMessage:
    validity = Validity.INVALID if i % 7 == 0 else Validity.VALID
    return ParsedMessage(
        raw=f"<85>1 - h a - DICOM+RFC3881 - <AuditMessage n='{i}'/>".encode(),
        received_at=T0 + timedelta(seconds=i), transport="tcp", peer="10.0.0.5",
        validity=validity, reason="bad" if validity is Validity.INVALID else None,
        event_id="110112", outcome=8 if i % 5 == 0 else 0, users=(f"user{i % 3}",),
        nodes=("PACS1",))


def _plan(store: Store, q: SearchQuery) -> str:
    stmt = build(q).compile(store.engine, compile_kwargs={"literal_binds": True})
    with store.engine.connect() as conn:
        rows = conn.execute(text(f"EXPLAIN QUERY PLAN {stmt}")).all()
    return " | ".join(str(r[-1]) for r in rows)


def test_rare_outcomes_and_validities_are_found_through_the_partial_indexes(
        tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'a.db'}") as store:
        RecordWriter(store).append([_message(i) for i in range(1, 101)])
        failed = search(store, SearchQuery(outcomes=(4, 8, 12), limit=1000))
        assert sorted(r.id for r in failed) == [i for i in range(1, 101) if i % 5 == 0]
        invalid = search(store, SearchQuery(validity=("invalid",), limit=1000))
        assert sorted(r.id for r in invalid) == [i for i in range(1, 101) if i % 7 == 0]
        both = search(store, SearchQuery(outcomes=(8,), users=("user2",), limit=1000))
        assert sorted(r.id for r in both) == [i for i in range(1, 101)
                                              if i % 5 == 0 and i % 3 == 2]
        # success is common: no partial index applies, and it is still answered
        assert len(search(store, SearchQuery(outcomes=(0,), limit=1000))) == 80
        assert "ix_audit_records_outcome_id" in _plan(store, SearchQuery(outcomes=(4, 8, 12)))
        assert "ix_audit_records_validity_id" in _plan(store, SearchQuery(validity=("invalid",)))
