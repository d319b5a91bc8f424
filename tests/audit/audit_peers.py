"""Real loopback syslog receivers and a generated PKI for the audit tests (no mocks).

A uniquely named helper module (not conftest) so tests can import its helpers by name; the
fixtures are re-exported by ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def parse_octet_counted(stream: bytes) -> list[bytes]:
    """Split an RFC 6587 octet-counted stream (``LEN SP MSG`` ...) into messages, strictly."""
    out, offset = [], 0
    while offset < len(stream):
        space = stream.index(b" ", offset)
        length = int(stream[offset:space])
        out.append(stream[space + 1 : space + 1 + length])
        offset = space + 1 + length
    assert offset == len(stream), "trailing bytes after the last frame"
    return out


@dataclass
class StreamReceiver:
    """Accepts connections; keeps each connection's full byte stream once the client ends it."""

    port: int
    streams: list[bytes] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def messages(self) -> list[bytes]:
        return [m for s in self.streams for m in parse_octet_counted(s)]


def _serve(listener: socket.socket, receiver: StreamReceiver, wrap: ssl.SSLContext | None) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            if wrap is not None:
                conn = wrap.wrap_socket(conn, server_side=True)
            chunks = []
            while data := conn.recv(65536):
                chunks.append(data)
            receiver.streams.append(b"".join(chunks))
            receiver.done.set()
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


def start_stream_server(
    port: int = 0, tls: ssl.SSLContext | None = None
) -> tuple[StreamReceiver, socket.socket]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    receiver = StreamReceiver(port=listener.getsockname()[1])
    threading.Thread(target=_serve, args=(listener, receiver, tls), daemon=True).start()
    return receiver, listener


def _stop(listener: socket.socket) -> None:
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@pytest.fixture
def tcp_receiver() -> Iterator[StreamReceiver]:
    receiver, listener = start_stream_server()
    yield receiver
    _stop(listener)


@pytest.fixture
def stop_server() -> Iterator[Callable[[socket.socket], None]]:
    """Stops servers a test started itself with :func:`start_stream_server`."""
    started: list[socket.socket] = []
    yield started.append
    for listener in started:
        _stop(listener)


@pytest.fixture
def udp_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


# -- a throw-away PKI, made with cryptography ---------------------------------------------------


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    ip: str | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None
) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, other_key, srv_key, cli_key = (
        ec.generate_private_key(ec.SECP256R1()) for _ in range(4)
    )
    ca = _issue("Test Audit CA", ca_key, None, ca=True)
    other = _issue("Some Other CA", other_key, None, ca=True)
    srv = _issue("audit-repository", srv_key, (ca.subject, ca_key), ip="127.0.0.1")
    cli = _issue("radguard-station", cli_key, (ca.subject, ca_key))
    _write(d / "ca.pem", ca)
    _write(d / "other-ca.pem", other)
    _write(d / "server.pem", srv, srv_key)
    _write(d / "client.pem", cli, cli_key)
    return Pki(
        d / "ca.pem",
        d / "server.pem",
        d / "server.key",
        d / "client.pem",
        d / "client.key",
        d / "other-ca.pem",
    )


@pytest.fixture
def tls_receiver(pki: Pki) -> Iterator[StreamReceiver]:
    """TLS 1.2+ receiver that requires a client certificate issued by the test CA."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    receiver, listener = start_stream_server(tls=ctx)
    yield receiver
    _stop(listener)


def free_port() -> int:
    """A loopback TCP port with nobody listening (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
