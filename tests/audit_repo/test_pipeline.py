"""The fast ingest path of ``audit serve``: chunks parsed in worker processes, prepared rows and
hash tails computed there, the chain continued by the writer. Nothing may change what is stored:
the same records, in arrival order, with the same validity, fields and chain as the slow path."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from tests.audit_repo.conftest import LiveRepository
from tests.audit_repo.messages import (
    BILLION_LAUGHS,
    MALFORMED,
    every_a53_message,
    rfc3881_form,
    syslog,
)

from radguard.audit.repository import Validity, parse_message, verify
from radguard.audit.repository.chain import FIELDS, GENESIS, hash_tail, record_hash
from radguard.audit.repository.pipeline import from_wire, prepare_batch, prepare_wire
from radguard.audit.repository.receivers import Received
from radguard.audit.repository.records import _sqlite_text, prepare, record_values
from radguard.audit.syslog import octet_counted
from radguard.store.models_audit import AuditRecord

NOW = datetime(2025, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def _samples() -> list[bytes]:
    msgs = every_a53_message()
    out = [syslog(m) for m in msgs.values()]
    out += [syslog(rfc3881_form(m)) for m in list(msgs.values())[:3]]
    out += [syslog(MALFORMED), syslog(BILLION_LAUGHS), b"plain text, no XML at all",
            syslog(b"<AuditMessage><EventIdentification/></AuditMessage>")]
    long_host = b"<85>1 2025-11-28T10:00:00Z " + b"h" * 300 + b" app - DICOM+RFC3881 - "
    out.append(long_host + rfc3881_form(next(iter(msgs.values()))))
    return out


def test_prepared_messages_rebuild_exactly_and_hash_as_the_chain_defines() -> None:
    for raw in _samples():
        m = parse_message(raw, transport="tcp", peer="10.0.0.9", received_at=NOW)
        p = prepare(m)
        assert p.message() == m  # the detector sees what the slow path saw
        # times stored as SQLAlchemy's SQLite DateTime text, formatted once per time
        assert p.row[0] == _sqlite_text(m.received_at)
        assert p.row[6] == _sqlite_text(m.event_time)
        assert list(p.terms) == list(dict.fromkeys(m.terms))
        # the split hash (tail in the worker, id + previous in the writer) is the chain's hash
        values = (41, *record_values(m))
        text = [b"\x00" if v is None else (v.isoformat(timespec="microseconds").encode()
                                         if isinstance(v, datetime) else str(v).encode())
                for v in values]
        expected = hashlib.sha256(GENESIS.encode() + b"\x1f".join(text) + b"\x1f"
                                  + hashlib.sha256(raw).digest()).hexdigest()
        assert record_hash(GENESIS, values, raw) == expected
        assert len(values) == len(FIELDS)


def test_two_parse_processes_store_every_message_in_order_under_back_pressure(
        live_repo: Callable[..., LiveRepository]) -> None:
    # A queue of 100 and 2 spawn workers: the sender is held back, chunks overtake each other
    # on the workers, and the writer must still append them in arrival order.
    repo = live_repo(parse_workers=2, queue_size=100, batch_size=700)
    samples = _samples()
    sent = [samples[i % len(samples)] for i in range(2400)]
    with socket.create_connection(("127.0.0.1", repo.port("tcp"))) as sock:
        sock.sendall(b"".join(octet_counted(m) for m in sent))
    assert repo.wait_stored(len(sent), timeout=60) == len(sent)
    with repo.store.read_session() as s:
        rows = s.execute(select(AuditRecord.raw, AuditRecord.validity)
                         .order_by(AuditRecord.id)).all()
    assert [r.raw for r in rows] == sent
    expected = [str(parse_message(m, transport="tcp", peer="x", received_at=NOW).validity)
                for m in sent]
    assert [r.validity for r in rows] == expected
    assert {"valid", "rfc3881", "not-xml", "refused", "invalid"} <= set(expected)
    report = verify(repo.store)
    assert report.ok and report.checked == len(sent)


def test_the_compact_form_from_the_workers_rebuilds_exactly_what_they_prepared() -> None:
    # Reads as the receivers hand them over: several messages per read, one kept in part.
    samples = _samples()
    reads = [Received(samples[:5], "tcp", "10.0.0.9", 1764331200.123456),
             Received(samples[5:], "tls", "10.0.0.7", 1764331201.5, {1: 99_999}),
             Received([b"<13>1 2025-11-28T10:00:00.5+05:00 h a - DICOM+RFC3881 - "
                       + samples[0].split(b" - ", 1)[1]], "udp", "::1", 0.0)]
    expected = prepare_batch(reads)
    rebuilt = from_wire(reads, prepare_wire(reads))
    assert rebuilt == expected
    assert [p.msg for p in rebuilt] == [p.msg for p in expected]  # types too: datetimes, enum
    assert all(type(p.msg.validity) is Validity and p.msg.received_at.tzinfo is UTC
               and (p.msg.event_time is None or p.msg.event_time.tzinfo is UTC)
               for p in rebuilt)
    assert rebuilt[6].msg.validity is Validity.TRUNCATED
    assert sum(p.msg.event_time is not None for p in rebuilt) >= len(samples) - 6


def test_hash_tail_is_the_join_of_each_value_as_the_chain_defines_it() -> None:
    # every kind of value a record holds, including text that is not valid UTF-8 once decoded
    # with surrogateescape, and a str subclass
    values = (NOW, "tcp", "10.0.0.9", "h\udcff\u00e9", None, "DICOM+RFC3881", None, "PACS1",
              "110112", "E", 8, Validity.INVALID, "why \x1f not")
    old = b"".join((b"\x1f", b"\x1f".join(
        b"\x00" if v is None else v.isoformat(timespec="microseconds").encode()
        if isinstance(v, datetime) else str(v).encode("utf-8", "surrogateescape")
        for v in values), b"\x1f", hashlib.sha256(b"raw").digest()))
    assert hash_tail(values, b"raw") == old


def test_stored_time_text_is_what_sqlalchemy_stores() -> None:
    from datetime import timedelta, timezone

    from radguard.audit.repository.records import _sqlite_text

    for when in (NOW, NOW.replace(microsecond=0), NOW.astimezone(timezone(timedelta(hours=5))),
                 datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)):
        assert _sqlite_text(when) == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert _sqlite_text(None) is None


def test_a_message_that_makes_the_parser_raise_is_kept_raw_and_the_rest_stored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The writer's fallback when a parse worker failed: a defect in parsing one message (simulated
    # by making RadGuard's own parser raise for it) must neither lose it nor the others.
    import radguard.audit.repository.pipeline as pipeline

    samples = _samples()[:4]
    poison = samples[2]
    real = pipeline.parse_message

    def flaky(data: bytes, **kw: object) -> object:
        if data == poison:
            raise RuntimeError("defect")
        return real(data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "parse_message", flaky)
    out = pipeline.prepare_each([Received(samples, "tcp", "10.0.0.9", 1764331200.0)])
    assert [p.msg.raw for p in out] == samples
    assert out[2].msg.validity is Validity.REFUSED
    assert out[2].msg.reason is not None and "RuntimeError" in out[2].msg.reason
    assert [p.msg.validity for p in out[:2]] == [Validity.VALID, Validity.VALID]
