"""Syslog transport of audit messages (PS3.15 A.6 / A.7, IHE ATNA).

:func:`frame` builds the RFC 5424 message ``<85>1 TIMESTAMP HOST APP PROCID MSGID - MSG``
(facility 10 security/authorization, severity 5 notice; MSGID ``DICOM+RFC3881``; no structured
data; the XML is the MSG, UTF-8 without BOM as PS3.15 A.6 asks). Senders deliver framed messages:

- ``udp://host:port``  RFC 5426, one message per datagram (PS3.15 A.7; no delivery guarantee);
- ``tcp://host:port``  RFC 6587 octet counting ``LEN SP MSG``;
- ``tls://host:port``  RFC 5425 octet counting over TLS 1.2+ (PS3.15 A.6), server verified against
  ``ca`` (or the system store), optional client certificate ``cert``/``key``.

TCP and TLS senders open one connection per :meth:`SyslogSender.send_many` batch and close it
cleanly, so a repository that went away is noticed on the next batch instead of swallowing writes
on a half-dead connection. Every delivery failure raises :class:`SyslogUnavailable`.
"""

from __future__ import annotations

import os
import socket
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from radguard.errors import AuditError

__all__ = [
    "MSGID",
    "PRI",
    "SyslogSender",
    "SyslogUnavailable",
    "TcpSender",
    "TlsSender",
    "UdpSender",
    "frame",
]

#: <PRI> = facility 10 (security/authorization) * 8 + severity 5 (notice).
PRI = 10 * 8 + 5
MSGID = "DICOM+RFC3881"
_MAX_UDP = 65507
_LINGER = 2.0


class SyslogUnavailable(AuditError):
    """The audit repository could not be reached or refused the message; the caller should spool."""


def _field(value: str | None, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII, no spaces, at most ``limit``; else ``-``."""
    if not value:
        return "-"
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)
    return clean[:limit]


def frame(
    payload: bytes,
    *,
    hostname: str | None,
    app_name: str = "radguard",
    procid: str | None = None,
    msgid: str = MSGID,
    when: datetime | None = None,
) -> bytes:
    """The RFC 5424 syslog message carrying ``payload`` (the audit XML) as MSG.

    ``when`` defaults to now (UTC); it is written as RFC 3339 with microseconds. ``procid`` defaults
    to this process's id.
    """
    stamp = (when or datetime.now(UTC)).isoformat(timespec="microseconds")
    header = " ".join([
        f"<{PRI}>1",
        stamp,
        _field(hostname, 255),
        _field(app_name, 48),
        _field(procid if procid is not None else str(os.getpid()), 128),
        _field(msgid, 32),
        "-",
    ])
    return header.encode("ascii") + b" " + payload


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 3.4.1 / RFC 5425 4.3 framing: ``LEN SP MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class SyslogSender(ABC):
    """Sends audit XML to one syslog receiver. Build one with :meth:`from_url`."""

    scheme: str = ""
    #: RFC 5424 MSGID written by :meth:`frame`; the audit repository's alert forwarder changes it.
    msgid: str = MSGID

    def __init__(
        self,
        host: str,
        port: int,
        *,
        hostname: str | None = None,
        app_name: str = "radguard",
        timeout: float = 10.0,
    ) -> None:
        self.endpoint = _Endpoint(host, port)
        self.hostname = hostname or socket.gethostname()
        self.app_name = app_name
        self.timeout = timeout

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        hostname: str | None = None,
        app_name: str = "radguard",
        timeout: float = 10.0,
    ) -> SyslogSender:
        """A sender for ``udp://``, ``tcp://`` or ``tls://host:port``.

        ``ca`` (PEM bundle; default: the system store), ``cert`` and ``key`` apply to TLS only.

        Raises
        ------
        AuditError
            The URL has another scheme or no host/port, or TLS options were given for UDP/TCP.
        """
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as exc:
            raise AuditError(f"bad port in audit repository URL: {exc}", subject=url) from exc
        if not parts.hostname or port is None:
            raise AuditError("audit repository URL needs a host and a port", subject=url,
                             remedy="write it as udp://host:port, tcp://host:port or tls://host:port")
        if parts.scheme == "tls":
            return TlsSender(parts.hostname, port, ca=ca, cert=cert, key=key, hostname=hostname,
                             app_name=app_name, timeout=timeout)
        if ca or cert or key:
            raise AuditError("CA/certificate/key options apply only to tls:// URLs", subject=url)
        kinds: dict[str, type[SyslogSender]] = {"udp": UdpSender, "tcp": TcpSender}
        if parts.scheme in kinds:
            return kinds[parts.scheme](parts.hostname, port, hostname=hostname, app_name=app_name,
                                       timeout=timeout)
        raise AuditError(f"unknown audit transport {parts.scheme!r}", subject=url,
                         remedy="use udp://, tcp:// or tls://")

    def frame(self, payload: bytes) -> bytes:
        """The RFC 5424 message for ``payload`` as this sender writes it."""
        return frame(payload, hostname=self.hostname, app_name=self.app_name, msgid=self.msgid)

    def send(self, payload: bytes) -> None:
        """Deliver one audit XML message. Raises :class:`SyslogUnavailable` on failure."""
        self.send_many([payload])

    @abstractmethod
    def send_many(self, payloads: Iterable[bytes]) -> None:
        """Deliver several messages in order (one connection for stream transports).

        Raises :class:`SyslogUnavailable` on the first failure; messages before it may have been
        delivered (at-least-once: a retry can duplicate, never lose).
        """


class UdpSender(SyslogSender):
    """RFC 5426: one syslog message per datagram."""

    scheme = "udp"

    def send_many(self, payloads: Iterable[bytes]) -> None:
        try:
            infos = socket.getaddrinfo(*_addr(self.endpoint), type=socket.SOCK_DGRAM)
            family, kind, proto, _, address = infos[0]
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(self.timeout)
                for payload in payloads:
                    message = self.frame(payload)
                    if len(message) > _MAX_UDP:
                        raise SyslogUnavailable(
                            f"message of {len(message)} bytes does not fit one UDP datagram",
                            subject=self.url, remedy="use a tcp:// or tls:// audit repository")
                    sock.sendto(message, address)
        except OSError as exc:
            raise SyslogUnavailable(f"cannot send to audit repository: {exc}",
                                    subject=self.url) from exc


class TcpSender(SyslogSender):
    """RFC 6587 octet-counted syslog over plain TCP."""

    scheme = "tcp"

    def _connect(self) -> socket.socket:
        return socket.create_connection(_addr(self.endpoint), timeout=self.timeout)

    def send_many(self, payloads: Iterable[bytes]) -> None:
        try:
            with self._connect() as sock:
                for payload in payloads:
                    sock.sendall(octet_counted(self.frame(payload)))
                _close_gracefully(sock)
        except (OSError, ssl.SSLError) as exc:
            raise SyslogUnavailable(f"cannot send to audit repository: {exc}",
                                    subject=self.url) from exc


class TlsSender(TcpSender):
    """RFC 5425 syslog over TLS 1.2 or later (PS3.15 A.6), octet-counted."""

    scheme = "tls"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        hostname: str | None = None,
        app_name: str = "radguard",
        timeout: float = 10.0,
    ) -> None:
        super().__init__(host, port, hostname=hostname, app_name=app_name, timeout=timeout)
        if key and not cert:
            raise AuditError("a client key needs a client certificate", subject=self.url,
                             remedy="set audit_syslog_cert as well")
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if ca:
                context.load_verify_locations(cafile=os.fspath(ca))
            if cert:
                context.load_cert_chain(os.fspath(cert), os.fspath(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            # Paths only; key material and passwords never appear in the message.
            raise AuditError(
                f"cannot load TLS CA or client certificate: {exc.strerror or exc}",
                subject=self.url,
                remedy="check that audit_syslog_ca / _cert / _key name PEM files",
            ) from exc
        self.context = context

    def _connect(self) -> socket.socket:
        raw = super()._connect()
        try:
            return self.context.wrap_socket(raw, server_hostname=self.endpoint.host)
        except BaseException:
            raw.close()
            raise


def _addr(endpoint: _Endpoint) -> tuple[str, int]:
    return endpoint.host, endpoint.port


def _close_gracefully(sock: socket.socket) -> None:
    """Signal end of stream, then briefly wait for the receiver to close: a receiver that died
    mid-batch (reset) surfaces here as an error instead of as silently dropped bytes. A receiver
    that keeps the connection open is fine: TCP has accepted the data."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(_LINGER)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        pass
