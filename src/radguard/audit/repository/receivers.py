"""Syslog listeners on asyncio: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425).

Every listener hands complete messages to an :class:`Inlet` (the repository's bounded queue),
one :class:`Received` per socket read (all the messages that read completed, de-framed in one
pass), never one hand-off per message:

- stream listeners (TCP, TLS) ``await`` :meth:`Inlet.put`; when the queue is full the coroutine
  stops reading the socket, the kernel's receive window closes and the sender is slowed down
  (back-pressure) instead of messages being thrown away;
- the UDP listener cannot push back: a datagram that finds the queue full is counted as
  ``dropped``; datagrams the kernel dropped before RadGuard saw them are read from the socket's
  ``drops`` column in ``/proc/net/udp`` (:func:`kernel_drops`) where readable.

TLS listeners require TLS 1.2 or later (PS3.15 A.6), present ``cert``/``key`` and, with
``client_ca``, require and verify a client certificate. Handshakes are run by the listener
itself so that a failed handshake (bad certificate, plain text on the TLS port) is reported to the
inlet (:meth:`Inlet.tls_failure`) and can be audited and detected.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from radguard.audit.repository.errors import ReceiverError
from radguard.audit.repository.framing import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE, Deframer

__all__ = ["Inlet", "Listener", "Received", "kernel_drops", "make_tls_context", "parse_hostport",
           "start_listener"]

_READ = 256 * 1024
_HANDSHAKE_TIMEOUT = 15.0


class Received(NamedTuple):
    """The messages of one read (or one datagram): their bytes without framing, in order; the
    transport, peer address and arrival time (epoch seconds) they share; and, for the messages
    of which only a prefix was kept, ``{index: full length}``. A tuple of a list of bytes: queued
    and pickled to the parse workers once per read, not once per message."""

    messages: list[bytes]
    transport: str
    peer: str
    received: float
    truncated: dict[int, int] | None = None


class Inlet(Protocol):
    """What listeners deliver to (implemented by the repository service)."""

    async def put(self, item: Received) -> None: ...

    def offer(self, item: Received) -> bool: ...

    def keep(self, item: Received) -> None:
        """Take ``item`` even when the queue is full (bounded by one read per connection)."""

    def count(self, source: str, name: str, n: int = 1) -> None: ...

    def tls_failure(self, peer: str, reason: str) -> None: ...


@dataclass
class Listener:
    """A running listener: its transport, the address it is bound to, and its server/socket."""

    transport: str
    host: str
    port: int
    server: asyncio.AbstractServer | None = None
    datagram: asyncio.DatagramTransport | None = None
    connections: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.datagram is not None:
            self.datagram.close()


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT`` or ``PORT`` -> ``(host, port)``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ReceiverError(f"bad listen address {text!r}", subject=text,
                            remedy="write it as HOST:PORT, e.g. 127.0.0.1:5514")
    return host, int(port)


def make_tls_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """Server context: TLS 1.2+, ``cert``/``key``, client certificates required with
    ``client_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets: a syslog sender only writes, so tickets the server sends after
    # the handshake sit unread in its socket, and closing such a socket sends RST instead of FIN.
    # The RST makes the server's next read fail, and messages already decrypted into the stream
    # buffer but not yet de-framed would be lost although the sender counts them as delivered.
    context.num_tickets = 0
    try:
        context.load_cert_chain(str(cert), str(key))
        if client_ca is not None:
            context.load_verify_locations(cafile=str(client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ReceiverError(f"cannot load the TLS certificate, key or client CA: "
                            f"{getattr(exc, 'strerror', None) or exc}", subject=str(cert),
                            remedy="give PEM files with --cert, --key and --client-ca") from exc
    return context


def _peer(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    return str(info[0]) if isinstance(info, tuple) else "unknown"


async def _deliver(inlet: Inlet, item: Received) -> None:
    """Queue the messages of one read, waiting for room (back-pressure). They were read from the
    socket, i.e. acknowledged to the sender, so if the reader is cancelled meanwhile (shutdown
    after the drain timeout) they are handed over with :meth:`Inlet.keep` instead of lost."""
    try:
        await inlet.put(item)
    except asyncio.CancelledError:
        inlet.keep(item)
        raise


async def _stream(inlet: Inlet, transport: str, max_message: int,
                  reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read octet-counted frames (RFC 6587 3.4.1) until EOF; TLS is already up (:class:`_TlsAccept`)."""
    peer = _peer(writer)
    try:
        deframer = Deframer(max_message)
        while True:
            chunk = await reader.read(_READ)
            messages, cut = deframer.feed_bulk(chunk) if chunk else deframer.finish_bulk()
            if messages:
                inlet.count(peer, "received", len(messages))
                await _deliver(inlet, Received(messages, transport, peer, time.time(), cut))
            if deframer.error is not None:
                inlet.count(peer, "framing_errors")
                break
            if not chunk:
                break
    except (ConnectionError, ssl.SSLError, OSError):
        inlet.count(peer, "connection_errors")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
            await writer.wait_closed()


class _TlsAccept(asyncio.Protocol):
    """Accepts a TLS connection (RFC 5425) without reading a byte before the handshake.

    ``asyncio.start_server`` starts reading at once, so a ClientHello that arrives before the
    handler calls ``start_tls`` is left in the plaintext buffer and the handshake hangs. Here
    reading is paused in ``connection_made`` and the handshake is done with ``loop.start_tls``;
    a failed handshake is reported to the inlet (Security Alert), a good one handed to ``serve``.
    """

    def __init__(self, context: ssl.SSLContext, inlet: Inlet,
                 serve: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]):
        self.context = context
        self.inlet = inlet
        self.serve = serve
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self.task = asyncio.get_running_loop().create_task(self._upgrade(transport))

    def connection_lost(self, exc: Exception | None) -> None:
        return None

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        info = transport.get_extra_info("peername")
        peer = str(info[0]) if isinstance(info, tuple) else "unknown"
        reader = asyncio.StreamReader(limit=_READ, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            tls_transport = await loop.start_tls(
                transport, protocol, self.context, server_side=True,
                ssl_handshake_timeout=_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
            self.inlet.tls_failure(peer, f"{type(exc).__name__}: {exc}"[:300])
            transport.abort()
            return
        if tls_transport is None:  # the peer went away during the handshake
            self.inlet.tls_failure(peer, "connection closed during the handshake")
            return
        protocol.connection_made(tls_transport)
        writer = asyncio.StreamWriter(tls_transport, protocol, reader, loop)
        await self.serve(reader, writer)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, inlet: Inlet, max_message: int) -> None:
        self.inlet = inlet
        self.max_message = max_message

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        peer = str(addr[0])
        self.inlet.count(peer, "received")
        # RFC 5426: one message per datagram; a trailing LF/NUL some senders add is not content.
        item = Received([data.rstrip(b"\n\x00")], "udp", peer, time.time())
        if not self.inlet.offer(item):
            self.inlet.count(peer, "dropped")


async def _refuse_over_limit(listener: Listener, inlet: Inlet, writer: asyncio.StreamWriter,
                             limit: int) -> bool:
    """Close a connection beyond ``limit`` open ones at once, before reading a byte: each open
    connection may hold one read and one partial message (up to ``max_message``), so the number
    of connections is what bounds the receiver's memory. Counted as ``connections_refused``."""
    if len(listener.connections) < limit:
        return False
    inlet.count(_peer(writer), "connections_refused")
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):
        await writer.wait_closed()
    return True


async def start_listener(transport: str, host: str, port: int, inlet: Inlet, *,
                         tls: ssl.SSLContext | None = None,
                         max_message: int = DEFAULT_MAX_MESSAGE,
                         max_connections: int = DEFAULT_MAX_CONNECTIONS,
                         udp_buffer: int = 8 * 1024 * 1024) -> Listener:
    """Bind and start one listener (``udp``, ``tcp`` or ``tls``).

    Raises
    ------
    ReceiverError
        The address cannot be bound (in use, privileged port, unknown host).
    """
    loop = asyncio.get_running_loop()
    try:
        if transport == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                 socket.SOCK_DGRAM)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, udp_buffer)
            sock.bind((host, port))
            dgram, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(inlet, max_message), sock=sock)
            bound = sock.getsockname()
            return Listener("udp", host, int(bound[1]), datagram=dgram)
        if transport == "tls" and tls is None:
            raise ReceiverError("a TLS listener needs --cert and --key", subject=f"{host}:{port}")
        listener = Listener(transport, host, port)

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            """One connection (TCP, or TLS after :class:`_TlsAccept`'s handshake): refused past
            ``max_connections``, tracked while open so shutdown can drain it."""
            if await _refuse_over_limit(listener, inlet, w, max_connections):
                return
            task = asyncio.current_task()
            if task is not None:
                listener.connections.add(task)
            try:
                await _stream(inlet, transport, max_message, r, w)
            finally:
                if task is not None:
                    listener.connections.discard(task)

        if transport == "tls" and tls is not None:
            ctx = tls
            server = await loop.create_server(
                lambda: _TlsAccept(ctx, inlet, handle), host, port, reuse_address=True)
        else:
            server = await asyncio.start_server(handle, host, port, limit=_READ,
                                                reuse_address=True)
        listener.server = server
        listener.port = int(server.sockets[0].getsockname()[1])
        return listener
    except OSError as exc:
        remedy = ("ports below 1024 need root; use the defaults 5514 (UDP/TCP) and 6514 (TLS)"
                  if port < 1024 else "choose a free port or stop the other listener")
        raise ReceiverError(f"cannot listen on {transport} {host}:{port}: {exc.strerror or exc}",
                            subject=f"{host}:{port}", remedy=remedy) from exc


def kernel_drops(port: int) -> int | None:
    """Datagrams the kernel dropped for UDP sockets bound to ``port`` (``/proc/net/udp`` and
    ``udp6``, last column), or ``None`` where that cannot be read (not Linux, no permission)."""
    total, seen = 0, False
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) >= 13 and cols[1].rsplit(":", 1)[-1] == f"{port:04X}":
                seen = True
                total += int(cols[-1])
    return total if seen else None
