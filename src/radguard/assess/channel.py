"""Byte channels to a node: plain TCP or TLS driven over memory BIOs, with the handshake kept.

TLS runs over :class:`ssl.MemoryBIO` rather than a wrapped socket so that the server's first flight
can be read even when the handshake fails (a server that demands a client certificate still shows
its ServerHello and, up to TLS 1.2, its Certificate in clear): :class:`HandshakeInfo` reports the
negotiated version and cipher suite and the server certificate from the records themselves
(RFC 5246 section 7.4, RFC 8446 section 4.1.3). Every socket sets ``TCP_NODELAY`` (peers-measured.md)
and every read has a deadline; nothing here raises for a peer's behaviour except
:class:`ChannelError`, whose ``kind`` names what happened (refused, reset, timeout, closed).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
import warnings
from dataclasses import dataclass

__all__ = ["Channel", "ChannelError", "HandshakeInfo", "TlsConfig", "client_context", "open_channel"]


class ChannelError(Exception):
    """The peer refused, reset, closed or stayed silent; ``kind`` is one of those words."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """How to speak TLS to a node: client certificate (for mutual authentication) and limits."""

    cert: str | None = None
    key: str | None = None
    min_version: ssl.TLSVersion | None = None
    max_version: ssl.TLSVersion | None = None
    ciphers: str | None = None
    with_client_cert: bool = True


def client_context(cfg: TlsConfig) -> ssl.SSLContext:
    """A permissive client context: probes must see what the server accepts, weak or not."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0)
    ctx.set_ciphers(f"{cfg.ciphers or 'ALL:eNULL'}:@SECLEVEL=0")
    with warnings.catch_warnings():  # old versions are deprecated: probing them is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = cfg.min_version or ssl.TLSVersion.TLSv1
        if cfg.max_version is not None:
            ctx.maximum_version = cfg.max_version
    if cfg.cert and cfg.with_client_cert:
        ctx.load_cert_chain(cfg.cert, cfg.key)
    return ctx


@dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """What the TLS handshake showed: ``ok`` when it completed."""

    ok: bool
    error: str = ""
    version: str = ""
    cipher_id: int | None = None
    cert_der: bytes | None = None
    alert: int | None = None
    server_hello: bool = False


_WIRE_VERSIONS = {0x0300: "SSLv3", 0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2",
                  0x0304: "TLSv1.3"}


def _parse_flight(data: bytes) -> tuple[str, int | None, bytes | None, int | None]:
    """(version, cipher id, first certificate, alert description) from the server's records."""
    handshake = bytearray()
    alert: int | None = None
    pos = 0
    while pos + 5 <= len(data):
        rtype, _, length = struct.unpack_from(">BHH", data, pos)
        frag = data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if rtype == 0x16:
            handshake += frag
        elif rtype == 0x15 and len(frag) >= 2 and alert is None:
            alert = frag[1]
        elif rtype in (0x14, 0x17):
            break
    version, cipher, cert = "", None, None
    hpos = 0
    while hpos + 4 <= len(handshake):
        mtype = handshake[hpos]
        mlen = int.from_bytes(handshake[hpos + 1:hpos + 4], "big")
        msg = bytes(handshake[hpos + 4:hpos + 4 + mlen])
        hpos += 4 + mlen
        if mtype == 2 and len(msg) >= 38:
            legacy = struct.unpack_from(">H", msg, 0)[0]
            sid_len = msg[34]
            p = 35 + sid_len
            if p + 3 <= len(msg):
                cipher = struct.unpack_from(">H", msg, p)[0]
                p += 3
                wire = legacy
                if p + 2 <= len(msg):
                    end = p + 2 + struct.unpack_from(">H", msg, p)[0]
                    p += 2
                    while p + 4 <= min(end, len(msg)):
                        etype, elen = struct.unpack_from(">HH", msg, p)
                        if etype == 0x002B and elen == 2:
                            wire = struct.unpack_from(">H", msg, p + 4)[0]
                        p += 4 + elen
                version = _WIRE_VERSIONS.get(wire, f"0x{wire:04x}")
        elif mtype == 11 and len(msg) >= 6 and cert is None:
            clen = int.from_bytes(msg[3:6], "big")
            cert = msg[6:6 + clen] or None
    return version, cipher, cert, alert


class Channel:
    """A connected byte stream to a node (plain or TLS), with per-read deadlines."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self.tls: ssl.SSLObject | None = None
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.handshake: HandshakeInfo | None = None
        self._buf = bytearray()
        self.local_address = sock.getsockname()[0]

    # -- raw socket -------------------------------------------------------------------------
    def _recv_some(self, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelError("timeout", "no answer before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError as exc:
            raise ChannelError("timeout", "no answer before the deadline") from exc
        except ConnectionResetError as exc:
            raise ChannelError("reset", "connection reset by peer") from exc
        except OSError as exc:
            raise ChannelError("closed", str(exc)) from exc
        if not data:
            raise ChannelError("closed", "peer closed the connection")
        return data

    def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            try:
                self.sock.sendall(pending)
            except OSError as exc:
                raise ChannelError("reset", str(exc)) from exc

    # -- TLS ---------------------------------------------------------------------------------
    def start_tls(self, ctx: ssl.SSLContext, server_hostname: str | None) -> HandshakeInfo:
        """Run the TLS handshake; return what it showed (also kept in :attr:`handshake`)."""
        obj = ctx.wrap_bio(self._in, self._out, server_side=False,
                           server_hostname=server_hostname)
        transcript = bytearray()
        deadline = time.monotonic() + self.timeout
        error = ""
        ok = False
        while True:
            try:
                obj.do_handshake()
                ok = True
                break
            except ssl.SSLWantReadError:
                try:
                    self._flush()
                    data = self._recv_some(deadline)
                except ChannelError as exc:
                    error = exc.kind if exc.kind != "closed" else "closed during handshake"
                    break
                transcript += data
                self._in.write(data)
            except ssl.SSLError as exc:
                error = exc.reason or str(exc)
                with contextlib.suppress(ChannelError):
                    self._flush()
                break
        version, cipher, cert, alert = _parse_flight(bytes(transcript))
        if ok:
            self.tls = obj
            version = obj.version() or version
            der = obj.getpeercert(binary_form=True)
            cert = der or cert
        self.handshake = HandshakeInfo(ok=ok, error=error, version=version, cipher_id=cipher,
                                       cert_der=cert, alert=alert,
                                       server_hello=cipher is not None)
        return self.handshake

    # -- stream ------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self.tls is None:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise ChannelError("reset", str(exc)) from exc
            return
        self.tls.write(data)
        self._flush()

    def recv_exact(self, n: int, deadline: float) -> bytes:
        """Read exactly ``n`` bytes before ``deadline`` (monotonic seconds)."""
        while len(self._buf) < n:
            if self.tls is None:
                self._buf += self._recv_some(deadline)
                continue
            try:
                self._buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._in.write(self._recv_some(deadline))
            except ssl.SSLZeroReturnError as exc:
                raise ChannelError("closed", "TLS close_notify") from exc
            except ssl.SSLError as exc:
                raise ChannelError("tls-alert", exc.reason or str(exc)) from exc
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def open_channel(host: str, port: int, timeout: float,
                 connect_timeout: float | None = None) -> Channel:
    """Connect over TCP with ``TCP_NODELAY``; raise :class:`ChannelError` (refused/timeout/...).

    ``connect_timeout`` bounds the connection (default ``timeout``); ``timeout`` is the channel's
    wait for the TLS handshake."""
    wait = timeout if connect_timeout is None else connect_timeout
    try:
        sock = socket.create_connection((host, port), timeout=wait)
    except ConnectionRefusedError as exc:
        raise ChannelError("refused", "connection refused") from exc
    except TimeoutError as exc:
        raise ChannelError("timeout", f"no TCP connection within {wait:g} s") from exc
    except ConnectionResetError as exc:
        raise ChannelError("reset", "connection reset by peer") from exc
    except OSError as exc:
        raise ChannelError("unreachable", str(exc)) from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return Channel(sock, timeout)
    except OSError as exc:  # reset between connect and the first call on the socket
        sock.close()
        raise ChannelError("reset", str(exc)) from exc
