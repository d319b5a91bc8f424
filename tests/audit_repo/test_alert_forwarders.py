"""Alerts reach the notifiers the user configured: a syslog forwarder and a local webhook (issue 7).

A live repository (real listeners, queue, parser, writer, detector) receives an Audit Recording
Stopped message (PS3.15 A.5.3.11 Security Alert, type 110133) over TCP with octet counting; the
built-in rule ``audit.recording-stopped`` fires; the alert goes to

- a syslog receiver on loopback (a UDP socket, and a TCP socket reading RFC 6587 octet-counted
  frames): an RFC 5424 message with MSGID ``RADGUARD-ALERT`` whose MSG is the alert as JSON;
- a webhook (``http.server`` on 127.0.0.1): a POST with ``content-type: application/json`` and
  the same alert, carrying the ``audit_alerts`` row id.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tests.audit_repo.messages import syslog

from radguard.audit import builders
from radguard.audit.repository import (
    AlertSink,
    Detector,
    RepositoryService,
    ServeConfig,
    builtin_pack,
    list_alerts,
)
from radguard.audit.syslog import octet_counted
from radguard.store import Store

RULE = "audit.recording-stopped"


@contextmanager
def _serve(store: Store, sink: AlertSink) -> Iterator[RepositoryService]:
    """The repository on its own thread and event loop, TCP on a free loopback port."""
    config = ServeConfig(udp=None, tcp=("127.0.0.1", 0), tls=None, station="alert-test",
                         parse_workers=0)
    service = RepositoryService(store, config, Detector(builtin_pack()), sink)
    ready, holder = threading.Event(), {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        holder.update(loop=loop, stop=stop)

        async def main() -> None:
            await service.start()
            ready.set()
            await service.run(stop)

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # surfaced below
            holder["error"] = exc
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30), "repository did not start"
    if "error" in holder:
        raise holder["error"]
    try:
        yield service
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(30)


def _send_recording_stopped(service: RepositoryService) -> None:
    port = next(x.port for x in service.listeners if x.transport == "tcp")
    stopped = builders.security_alert("110133", station="PACS1", when=datetime.now(UTC))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(octet_counted(syslog(stopped, host="pacs1")))


def _alert_json(frame: bytes) -> dict[str, Any]:
    """The JSON MSG of an RFC 5424 message: ``<PRI>1 TS HOST APP PROCID MSGID SD MSG``."""
    header, _, body = frame.partition(b"{")
    assert header.startswith(b"<") and b" RADGUARD-ALERT " in header, header[:200]
    parsed = json.loads(b"{" + body)
    assert isinstance(parsed, dict)
    return parsed


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []
    arrived: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        type(self).received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(204)
        self.end_headers()
        type(self).arrived.set()

    def log_message(self, *args: Any) -> None:  # quiet
        return None


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Webhook]]]:
    handler = type("Hook", (_Webhook,), {"received": [], "arrived": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/radguard/alerts", handler
    finally:
        server.shutdown()
        server.server_close()


def test_udp_syslog_forwarder_and_webhook_get_the_alert(store: Store, tmp_path: Path,
                                                        webhook) -> None:
    url, hook = webhook
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(30)
    sink = AlertSink(store, tmp_path / "alerts.log",
                     forward_url=f"udp://127.0.0.1:{receiver.getsockname()[1]}", webhook=url)
    try:
        with _serve(store, sink) as service:
            _send_recording_stopped(service)
            datagram, _ = receiver.recvfrom(65536)
            assert hook.arrived.wait(30), "the webhook got nothing"
            assert service.alerted == 1
    finally:
        receiver.close()
    forwarded = _alert_json(datagram)
    assert forwarded["rule_id"] == RULE and forwarded["subject"]["value"] == "PACS1"
    [stored] = list_alerts(store)
    assert forwarded["id"] == stored.id
    [(path, ctype, body)] = hook.received
    assert path == "/radguard/alerts" and ctype == "application/json"
    posted = json.loads(body)
    assert posted["rule_id"] == RULE and posted["id"] == stored.id
    assert posted["record_ids"] == forwarded["record_ids"] and posted["record_ids"]


def test_tcp_syslog_forwarder_gets_an_octet_counted_alert(store: Store, tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    frames: list[bytes] = []
    done = threading.Event()

    def accept() -> None:
        conn, _ = server.accept()
        conn.settimeout(30)
        data = b""
        with conn:
            while b" " not in data or len(data) < int(data.split(b" ", 1)[0]) + \
                    len(data.split(b" ", 1)[0]) + 1:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        length, _, rest = data.partition(b" ")
        frames.append(rest[:int(length)])
        done.set()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    sink = AlertSink(store, None, forward_url=f"tcp://127.0.0.1:{server.getsockname()[1]}")
    try:
        with _serve(store, sink) as service:
            _send_recording_stopped(service)
            assert done.wait(30), "the TCP receiver got nothing"
    finally:
        server.close()
    [frame] = frames
    alert = _alert_json(frame)
    assert alert["rule_id"] == RULE and alert["severity"]


def test_a_webhook_outside_the_local_network_is_refused(store: Store) -> None:
    from radguard.audit.repository.errors import RepositoryError

    with pytest.raises(RepositoryError, match="not on the local network"):
        AlertSink(store, None, webhook="http://8.8.8.8/alerts")
