"""The repository receiving from real senders on loopback: util-linux logger (UDP, TCP with
octet counting and LF framing), rsyslog forwarding a file over TCP and TLS (client
certificates), raw sockets for bursts, oversized and hostile messages."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from tests.audit.audit_peers import Pki
from tests.audit_repo.conftest import LiveRepository
from tests.audit_repo.messages import (
    BILLION_LAUGHS,
    big_message,
    every_a53_message,
    one_line,
    syslog,
)
from tests.audit_repo.rsyslog_peer import start_rsyslog
from tests.support.peers import require

from radguard.audit.repository import SearchQuery, read_stats, search, verify
from radguard.audit.syslog import octet_counted
from radguard.store.models_audit import AuditRecord


def _validities(repo: LiveRepository) -> list[str]:
    with repo.store.read_session() as s:
        return list(s.scalars(select(AuditRecord.validity).order_by(AuditRecord.id)))


def test_logger_udp_and_tcp_octet_counting_and_lf(
        live_repo: Callable[..., LiveRepository], tmp_path: Path) -> None:
    logger = require("logger")
    repo = live_repo()
    msgs = list(every_a53_message().values())
    for i, (mode) in enumerate(["--udp", "--tcp", "--tcp"]):
        extra = ["--octet-count"] if i == 1 else []
        args = [logger, "--rfc5424", mode, *extra, "-n", "127.0.0.1", "-P",
                str(repo.port("udp" if mode == "--udp" else "tcp")), "--msgid",
                "DICOM+RFC3881", "--size", "65536", one_line(msgs[i]).decode()]
        subprocess.run(args, check=True, timeout=30)
    assert repo.wait_stored(3) == 3
    found = search(repo.store, SearchQuery())
    assert sorted(r.transport for r in found) == ["tcp", "tcp", "udp"]
    assert {r.validity for r in found} == {"valid"}
    assert {r.event_id for r in found} == {m.event.event_id.code for m in msgs[:3]}


def test_rsyslog_forwards_a_file_over_tls_with_client_certificate(
        live_repo: Callable[..., LiveRepository], tmp_path: Path, pki: Pki) -> None:
    repo = live_repo(tls=(pki.server_cert, pki.server_key, pki.ca))
    lines = [one_line(m) for m in every_a53_message().values()]
    lines.append(one_line(big_message()))  # > 32,768 octets through rsyslog and TLS
    source = tmp_path / "audit-messages.log"
    source.write_bytes(b"\n".join(lines) + b"\n")
    peer = start_rsyslog(tmp_path / "rsyslog", source, repo.port("tls"),
                         tls={"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key})
    try:
        stored = repo.wait_stored(len(lines), timeout=60)
    finally:
        peer.stop()
    err = (tmp_path / "rsyslog" / "rsyslog.err").read_text(errors="replace")
    assert stored == len(lines), err
    records = search(repo.store, SearchQuery(limit=100))
    assert {r.transport for r in records} == {"tls"}
    assert {r.validity for r in records} == {"valid"}
    assert max(len(json.dumps(r.to_dict())) for r in records) > 32_768 or any(
        len(r.detail.get("participant_objects", [])) for r in records)


def test_rsyslog_forwards_over_plain_tcp(live_repo: Callable[..., LiveRepository],
                                         tmp_path: Path) -> None:
    repo = live_repo()
    source = tmp_path / "in.log"
    source.write_bytes(b"\n".join(one_line(m) for m in every_a53_message().values()) + b"\n")
    peer = start_rsyslog(tmp_path / "r", source, repo.port("tcp"))
    try:
        assert repo.wait_stored(15, timeout=60) == 15
    finally:
        peer.stop()
    hosts = {r.hostname for r in search(repo.store, SearchQuery())}
    assert len(hosts) == 1 and None not in hosts


def test_tls_client_with_certificate_delivers_every_message(
        live_repo: Callable[..., LiveRepository], pki: Pki) -> None:
    """RFC 5425: octet-counted messages over TLS with a client certificate, one > 32,768 octets."""
    repo = live_repo(tls=(pki.server_cert, pki.server_key, pki.ca))
    msgs = [*every_a53_message().values()]
    frames = [octet_counted(syslog(m)) for m in msgs]
    frames.append(octet_counted(b"<85>1 - station radguard - DICOM+RFC3881 - " + one_line(big_message())))
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    with socket.create_connection(("127.0.0.1", repo.port("tls")), timeout=30) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(b"".join(frames))
    assert repo.wait_stored(len(frames), timeout=60) == len(frames)
    records = search(repo.store, SearchQuery(limit=100))
    assert {r.transport for r in records} == {"tls"}
    assert {r.validity for r in records} == {"valid"}


def test_tls_client_without_certificate_is_refused_and_audited(
        live_repo: Callable[..., LiveRepository], pki: Pki) -> None:
    repo = live_repo(tls=(pki.server_cert, pki.server_key, pki.ca))
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    try:
        with socket.create_connection(("127.0.0.1", repo.port("tls")), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(octet_counted(syslog(every_a53_message()["A.5.3.9 Network Entry"])))
            tls.recv(10)
    except (ssl.SSLError, OSError):
        pass
    assert repo.wait_stored(1) == 1
    [record] = search(repo.store, SearchQuery())
    assert record.transport == "internal" and record.event_id == "110113"
    assert record.to_dict()["event_type_codes"][0]["code"] == "110126"
    assert record.outcome == 4 and record.validity == "valid"


def test_burst_over_tcp_loses_no_acknowledged_message(
        live_repo: Callable[..., LiveRepository]) -> None:
    # Given a repository with a tiny queue, so readers must wait (back-pressure)
    repo = live_repo(queue_size=16, batch_size=200)
    frame = octet_counted(syslog(every_a53_message()["A.5.3.6 Instances Accessed"]))
    per_client, clients = 1500, 6

    def send() -> None:
        with socket.create_connection(("127.0.0.1", repo.port("tcp")), timeout=60) as s:
            s.sendall(frame * per_client)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)

    threads = [threading.Thread(target=send) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # Then every message the kernel acknowledged is stored, and the counters agree
    total = per_client * clients
    assert repo.wait_stored(total, timeout=120) == total
    repo.shutdown()
    with repo.store.read_session() as s:
        assert s.scalar(select(func.count(AuditRecord.id))) == total
    stats = read_stats(repo.store)
    assert stats.total["received"] == stats.total["stored"] == total
    assert verify(repo.store).ok


def test_oversized_hostile_and_garbage_are_kept_raw_with_reason(
        live_repo: Callable[..., LiveRepository]) -> None:
    repo = live_repo(max_message=40_000)
    big = syslog(big_message(1200))
    assert len(big) > 40_000
    with socket.create_connection(("127.0.0.1", repo.port("tcp")), timeout=10) as s:
        s.sendall(octet_counted(big) + octet_counted(syslog(BILLION_LAUGHS))
                  + octet_counted(b"<13>1 - h a - - - garbage, not XML"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(syslog(BILLION_LAUGHS), ("127.0.0.1", repo.port("udp")))
    assert repo.wait_stored(4) == 4
    by_validity = sorted(_validities(repo))
    assert by_validity == ["not-xml", "refused", "refused", "truncated"]
    truncated = search(repo.store, SearchQuery(validity=("truncated",)))[0]
    assert str(len(big)) in (truncated.reason or "")
