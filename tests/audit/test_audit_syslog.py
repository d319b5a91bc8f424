"""Syslog framing and delivery to real loopback receivers (UDP, TCP, TLS with a generated PKI)."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime

import pytest
from audit_peers import Pki, StreamReceiver, free_port

from radguard.audit.syslog import (
    SyslogSender,
    SyslogUnavailable,
    TcpSender,
    TlsSender,
    UdpSender,
    frame,
)
from radguard.errors import AuditError

XML = "<?xml version='1.0' encoding='UTF-8'?><AuditMessage>é</AuditMessage>".encode()
HEADER = re.compile(
    rb"^<85>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 st1 radguard \d+ DICOM\+RFC3881 - "
)


def test_frame_is_exact_rfc5424() -> None:
    when = datetime(2024, 3, 1, 9, 30, 0, 5, tzinfo=UTC)
    assert frame(XML, hostname="st1", procid="42", when=when) == (
        b"<85>1 2024-03-01T09:30:00.000005+00:00 st1 radguard 42 DICOM+RFC3881 - " + XML
    )
    assert frame(b"x", hostname=None, app_name="rad guard", procid="", when=when) == (
        b"<85>1 2024-03-01T09:30:00.000005+00:00 - rad_guard - DICOM+RFC3881 - x"
    )


def test_udp_one_message_per_datagram(udp_socket: socket.socket) -> None:
    port = udp_socket.getsockname()[1]
    sender = SyslogSender.from_url(f"udp://127.0.0.1:{port}", hostname="st1")
    assert isinstance(sender, UdpSender)
    sender.send_many([XML, b"<AuditMessage/>"])
    first, _ = udp_socket.recvfrom(65535)
    second, _ = udp_socket.recvfrom(65535)
    assert HEADER.match(first) and first.endswith(b" - " + XML)
    assert HEADER.match(second) and second.endswith(b" - <AuditMessage/>")


def test_tcp_octet_counting(tcp_receiver: StreamReceiver) -> None:
    sender = SyslogSender.from_url(f"tcp://127.0.0.1:{tcp_receiver.port}", hostname="st1")
    assert isinstance(sender, TcpSender)
    sender.send_many([XML, XML])
    assert tcp_receiver.done.wait(5)
    stream = tcp_receiver.streams[0]
    expected = frame(XML, hostname="st1")
    assert stream.startswith(str(len(expected)).encode() + b" <85>1 ")
    messages = tcp_receiver.messages()
    assert len(messages) == 2
    for message in messages:
        assert HEADER.match(message) and message.endswith(b" - " + XML)
        assert len(message) == len(expected)


def test_tcp_down_raises_syslog_unavailable() -> None:
    sender = SyslogSender.from_url(f"tcp://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(SyslogUnavailable, match="cannot send"):
        sender.send(XML)


def test_tls_with_client_certificate(tls_receiver: StreamReceiver, pki: Pki) -> None:
    sender = SyslogSender.from_url(
        f"tls://127.0.0.1:{tls_receiver.port}",
        ca=pki.ca,
        cert=pki.client_cert,
        key=pki.client_key,
        hostname="st1",
    )
    assert isinstance(sender, TlsSender)
    sender.send(XML)
    assert tls_receiver.done.wait(5)
    [message] = tls_receiver.messages()
    assert HEADER.match(message) and message.endswith(b" - " + XML)


def test_tls_refuses_a_server_from_another_ca(tls_receiver: StreamReceiver, pki: Pki) -> None:
    sender = SyslogSender.from_url(
        f"tls://127.0.0.1:{tls_receiver.port}",
        ca=pki.other_ca,
        cert=pki.client_cert,
        key=pki.client_key,
    )
    with pytest.raises(SyslogUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        sender.send(XML)
    assert tls_receiver.streams == []


def test_tls_context_is_tls12_or_later(pki: Pki) -> None:
    sender = SyslogSender.from_url("tls://127.0.0.1:6514", ca=pki.ca)
    assert isinstance(sender, TlsSender)
    import ssl

    assert sender.context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert sender.context.verify_mode == ssl.CERT_REQUIRED and sender.context.check_hostname


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("http://x:1", {}, "unknown audit transport"),
        ("tcp://host", {}, "host and a port"),
        ("tcp://host:99999", {}, "bad port"),
        ("udp://host:514", {"ca": "ca.pem"}, "only to tls"),
        ("tls://host:6514", {"ca": "/nonexistent/ca.pem"}, "cannot load TLS"),
        ("tls://host:6514", {"key": "k.pem"}, "needs a client certificate"),
    ],
)
def test_bad_urls_and_options(url: str, kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(AuditError, match=match):
        SyslogSender.from_url(url, **kwargs)  # type: ignore[arg-type]
