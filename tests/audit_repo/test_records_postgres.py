"""The record writer's PostgreSQL branch (issue 7 review): the same chain, terms and counters as on
SQLite, serialised across writers by the advisory lock.

Runs on the throwaway PostgreSQL cluster of ``tests/store/conftest.py`` (skipped, with the reason,
when the server binaries or the psycopg driver are missing).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from tests.audit_repo.messages import MALFORMED, every_a53_message, syslog
from tests.store.conftest import PgCluster, pg_cluster  # noqa: F401  (fixture re-export)

from radguard.audit.repository import (
    RecordWriter,
    SearchQuery,
    parse_message,
    read_stats,
    search,
    verify,
)
from radguard.store import Store

NOW = datetime(2025, 11, 28, 12, 0, 30, 123456, tzinfo=UTC)


def _parsed(peer: str = "10.0.0.5") -> list:
    msgs = [syslog(m) for m in every_a53_message().values()]
    msgs.append(syslog(MALFORMED))
    return [parse_message(raw, transport="tcp", peer=peer, received_at=NOW) for raw in msgs]


def test_postgres_chain_terms_and_counters_match_sqlite(pg_cluster: PgCluster,  # noqa: F811
                                                        tmp_path: Path) -> None:
    parsed = _parsed()
    heads = {}
    for name, url in (("postgresql", pg_cluster.new_database()),
                      ("sqlite", f"sqlite:///{tmp_path / 'radguard.db'}")):
        with Store.open(url) as store:
            assert store.dialect == name
            writer = RecordWriter(store)
            first = writer.append(parsed[:5], counters={("10.0.0.5", "received"): 5})
            rest = writer.append(parsed[5:], counters={("10.0.0.5", "received"): len(parsed) - 5})
            assert first + rest == list(range(1, len(parsed) + 1))
            report = verify(store)
            assert report.ok and report.checked == len(parsed), report
            heads[name] = report.head
            stats = read_stats(store)
            assert stats.total["stored"] == len(parsed) and stats.total["invalid"] == 1
            assert stats.total["received"] == len(parsed)
            accessed = search(store, SearchQuery(event_ids=("110103",)))
            assert accessed and {r.event_id for r in accessed} == {"110103"}
            alice = search(store, SearchQuery(users=("alice",)))
            # the term rows the branch inserted: exactly the messages naming the user
            assert sorted(r.id for r in alice) == [i + 1 for i, m in enumerate(parsed)
                                                    if "alice" in m.users]
            patient = search(store, SearchQuery(patients=("P-1",)))
            assert len(patient) >= 4 and all(r.validity == "valid" for r in patient)
    # the stored values hash the same on both backends (times, bytes, text round-trip)
    assert heads["postgresql"] == heads["sqlite"]


def test_postgres_tampering_is_named(pg_cluster: PgCluster) -> None:  # noqa: F811
    with Store.open(pg_cluster.new_database()) as store:
        RecordWriter(store).append(_parsed())
        with store.session() as session:
            session.execute(text("UPDATE audit_records SET outcome = 12 WHERE id = 3"))
        report = verify(store)
    assert not report.ok and report.first_broken == 3


def test_postgres_concurrent_writers_keep_one_linear_chain(pg_cluster: PgCluster) -> None:  # noqa: F811
    url = pg_cluster.new_database()
    with Store.open(url):
        pass  # migrate once
    errors: list[BaseException] = []

    def write(peer: str) -> None:
        try:
            with Store.open(url) as store:
                writer = RecordWriter(store)
                for _ in range(8):
                    writer.append(_parsed(peer)[:4])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"10.0.0.{i}",)) for i in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with Store.open(url) as store:
        report = verify(store)
        assert report.ok and report.checked == 3 * 8 * 4, report
        stats = read_stats(store)
    assert {s: v["stored"] for s, v in stats.sources.items()} == {
        "10.0.0.1": 32, "10.0.0.2": 32, "10.0.0.3": 32}
