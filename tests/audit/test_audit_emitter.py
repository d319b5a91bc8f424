"""The emitter: validate, journal (fsync'd, append-only), deliver, spool and retry."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from audit_peers import StreamReceiver, free_port, start_stream_server

from radguard.audit import AuditEmitter, builders, read_journal
from radguard.audit.message import ActiveParticipant, AuditMessage
from radguard.config import Settings
from radguard.errors import AuditError, AuditSchemaError


def _message(n: int) -> AuditMessage:
    return builders.network_entry("attach", station=f"node{n}", description=f"message {n}")


def test_journal_only(tmp_path: Path) -> None:
    emitter = AuditEmitter(tmp_path, "st1", None, None)
    messages = [_message(i) for i in range(3)]
    for m in messages:
        emitter.emit(m)
    records = list(emitter.journal_records())
    assert records == [m.to_xml() for m in messages]
    assert [AuditMessage.from_xml(r) for r in records] == messages
    [journal] = (tmp_path / "audit" / "journal").glob("*.log")
    assert journal.read_bytes().startswith(str(len(records[0])).encode() + b" <?xml")
    assert journal.stat().st_mode & 0o077 == 0
    assert emitter.flush() == 0 and emitter.pending() == []


def test_invalid_message_raises_and_records_nothing(tmp_path: Path) -> None:
    good = _message(1)
    bad = AuditMessage(
        good.event,
        (ActiveParticipant("x", False, network_access_point_type=7),),
        good.source,
    )
    emitter = AuditEmitter(tmp_path, "st1", None, None)
    with pytest.raises(AuditSchemaError):
        emitter.emit(bad)
    assert list(emitter.journal_records()) == []


def test_delivers_to_tcp_repository(tmp_path: Path, tcp_receiver: StreamReceiver) -> None:
    emitter = AuditEmitter(tmp_path, "st1", "HOSP", f"tcp://127.0.0.1:{tcp_receiver.port}")
    message = _message(1)
    emitter.emit(message)
    assert tcp_receiver.done.wait(5)
    [received] = tcp_receiver.messages()
    assert received.startswith(b"<85>1 ") and b" st1 radguard " in received
    assert received.endswith(b" DICOM+RFC3881 - " + message.to_xml())
    assert emitter.pending() == []


def test_spools_while_repository_is_down_then_retries_in_order(
    tmp_path: Path, stop_server: object
) -> None:
    port = free_port()
    emitter = AuditEmitter(tmp_path, "st1", None, f"tcp://127.0.0.1:{port}", timeout=2)

    # Given the repository is down: emit does not raise, the messages wait in the spool.
    emitter.emit(_message(1))
    emitter.emit(_message(2))
    assert len(emitter.pending()) == 2
    assert len(list(emitter.journal_records())) == 2

    # When it comes back, the next emit delivers the spool first, oldest first.
    receiver, listener = start_stream_server(port)
    stop_server(listener)  # type: ignore[operator]
    emitter.emit(_message(3))
    assert emitter.pending() == []
    bodies = [m.split(b" - ", 1)[1] for m in _wait_messages(receiver, 3)]
    assert [AuditMessage.from_xml(b).event.outcome_description for b in bodies] == [
        "message 1",
        "message 2",
        "message 3",
    ]
    assert len(list(emitter.journal_records())) == 3


def _wait_messages(receiver: StreamReceiver, count: int) -> list[bytes]:
    for _ in range(50):
        messages = receiver.messages()
        if len(messages) >= count:
            return messages
        receiver.done.wait(0.1)
    return receiver.messages()


def test_a_new_emitter_flushes_the_spool_left_by_another(
    tmp_path: Path, tcp_receiver: StreamReceiver
) -> None:
    down = AuditEmitter(tmp_path, "st1", None, f"tcp://127.0.0.1:{free_port()}", timeout=2)
    down.emit(_message(1))
    assert len(down.pending()) == 1
    up = AuditEmitter(tmp_path, "st1", None, f"tcp://127.0.0.1:{tcp_receiver.port}")
    assert up.flush() == 0
    assert len(_wait_messages(tcp_receiver, 1)) == 1


def test_torn_journal_record_is_reported(tmp_path: Path) -> None:
    emitter = AuditEmitter(tmp_path, "st1", None, None)
    message = _message(1)
    emitter.emit(message)
    [journal] = (tmp_path / "audit" / "journal").glob("*.log")
    with journal.open("ab") as f:
        f.write(b"500 <?xml")
    records = read_journal(journal)
    assert next(records) == message.to_xml()
    with pytest.raises(AuditError, match="truncated"):
        next(records)


def test_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=str(tmp_path), station="ws-7", site="HOSP", audit_syslog="udp://127.0.0.1:5514"
    )
    emitter = AuditEmitter.from_settings(settings)
    assert (emitter.station, emitter.site) == ("ws-7", "HOSP")
    assert emitter.sender is not None and emitter.sender.url == "udp://127.0.0.1:5514"
    assert emitter.journal_dir == tmp_path / "audit" / "journal"
    assert AuditEmitter.from_settings(Settings(home=str(tmp_path))).sender is None


def test_udp_delivery(tmp_path: Path, udp_socket: socket.socket) -> None:
    emitter = AuditEmitter(tmp_path, "st1", None, f"udp://127.0.0.1:{udp_socket.getsockname()[1]}")
    message = _message(1)
    emitter.emit(message)
    datagram, _ = udp_socket.recvfrom(65535)
    assert datagram.startswith(b"<85>1 ") and datagram.endswith(b" - " + message.to_xml())
