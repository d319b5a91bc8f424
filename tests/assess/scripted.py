"""Scripted peers on loopback for the odd behaviours real devices have, and small pynetdicom SCPs.

- :class:`RawPeer`: a socket server that, per connection, drops it, stays silent, resets it, or
  answers an A-ASSOCIATE-AC whose AE title fields hold control bytes (malformed).
- :func:`pynetdicom_scp`: a query/retrieve SCP with one fake study; ``promiscuous_move`` routes any
  C-MOVE destination to the caller's address on a fixed port; ``identity`` accepts user identity.
- :class:`HttpPeer`: a tiny HTTP(S) server with fixed headers and a fixed ``/system`` document.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

LOOPBACK = "127.0.0.1"


class RawPeer:
    """``mode``: drop | silent | reset | malformed-ae."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            if self.mode == "drop":
                conn.close()
            elif self.mode == "silent":
                self._held.append(conn)
            elif self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif self.mode == "malformed-ae":
                try:
                    conn.settimeout(2)
                    conn.recv(65536)
                    conn.sendall(_malformed_ac())
                    conn.recv(65536)
                except OSError:
                    pass
                conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self._held:
            c.close()


def _malformed_ac() -> bytes:
    def item(t: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", t, 0, len(payload)) + payload

    body = struct.pack(">HH", 1, 0) + b"BAD\x00AE\x1b\\TITLE".ljust(16, b" ")
    body += b"\x07CALLING".ljust(16, b"\x00")
    body += bytes(32)
    body += item(0x10, b"1.2.840.10008.3.1.1.1")
    body += item(0x21, struct.pack(">BBBB", 1, 0, 0, 0) + item(0x40, b"1.2.840.10008.1.2"))
    body += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4.5.6")
                 + item(0x55, b"ODD\x01DEVICE"))
    return struct.pack(">BBI", 0x02, 0, len(body)) + body


def pynetdicom_scp(*, aet: str = "QRSCP", require_calling: tuple[str, ...] = (),
                   promiscuous_move: int | None = None, identity: bool = False,
                   study_uid: str = "1.2.826.0.1.3680043.8.498.1") -> tuple[Any, int]:
    """Start a pynetdicom SCP (Verification, Study Root FIND/MOVE/GET); returns (server, port)."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    instance = dcmread(get_testdata_file("CT_small.dcm"))
    instance.StudyInstanceUID = study_uid

    ae = AE(ae_title=aet)
    ae.require_called_aet = True
    if require_calling:
        ae.require_calling_aet = list(require_calling)
    for cls in (Verification, StudyRootQueryRetrieveInformationModelFind,
                StudyRootQueryRetrieveInformationModelMove,
                StudyRootQueryRetrieveInformationModelGet):
        ae.add_supported_context(cls)
    ae.add_supported_context(CTImageStorage, scp_role=True, scu_role=True)
    ae.add_requested_context(CTImageStorage)

    def on_find(event: Any) -> Any:
        ident = Dataset()
        ident.QueryRetrieveLevel = "STUDY"
        ident.StudyInstanceUID = study_uid
        yield 0xFF00, ident

    def on_move(event: Any) -> Any:
        if promiscuous_move is None:
            yield None, None  # unknown destination
            return
        yield event.assoc.requestor.address, promiscuous_move
        yield 1
        yield 0xFF00, instance

    def on_get(event: Any) -> Any:
        yield 1
        yield 0xFF00, instance

    handlers: list[Any] = [(evt.EVT_C_FIND, on_find), (evt.EVT_C_MOVE, on_move),
                           (evt.EVT_C_GET, on_get)]
    if identity:
        handlers.append((evt.EVT_USER_ID,
                         lambda event: (event.secondary_field == b"secret", None)))
    server = ae.start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
    return server, server.server_address[1]


class HttpPeer:
    """HTTP(S) server answering every path with ``status``, ``headers`` and, for ``/system``,
    ``system`` as JSON."""

    def __init__(self, *, status: int = 200, headers: dict[str, str] | None = None,
                 system: dict[str, Any] | None = None, tls: tuple[str, str] | None = None) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = json.dumps(peer.system if self.path.startswith("/system") and peer.system
                                  else {}).encode()
                self.send_response(peer.status)
                for k, v in (peer.headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.status, self.headers, self.system = status, headers, system
        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.scheme = "https" if tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
