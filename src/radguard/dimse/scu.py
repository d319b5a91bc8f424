"""A small synchronous requestor for the bulk path: C-STORE and C-FIND on one socket (PS3.8, PS3.7).

Why not pynetdicom here: pynetdicom 3.0 runs every association in two threads (the DUL reactor polls
with 1 ms sleeps, the association thread waits on queues), so each message pays thread hand-offs and
GIL switches; for thousands of small C-STOREs that is most of the time (bench/results/import.md).
:class:`Association` does the same protocol in the calling thread: one blocking socket, Nagle off
(TCP_NODELAY), TLS through :mod:`ssl` with the PS3.15 B.12 context of :mod:`radguard.dimse.tls`.

Scope, on purpose: requestor only; A-ASSOCIATE-RQ/AC/RJ (PS3.8 9.3.2-9.3.4), P-DATA-TF (9.3.5) with
PDVs no longer than the peer's Maximum Length (PS3.8 D.1), A-RELEASE (9.3.6/7), A-ABORT (9.3.8);
C-STORE (PS3.7 9.1.1) of already-encoded data sets (the verified bytes are sent as they are) and
C-FIND (PS3.7 9.1.2). pynetdicom remains the implementation for everything else.

Every failure of the association (refused, aborted, timed out, malformed reply) raises
:class:`AssociationFailed`; a refusal of one operation is a status (:class:`StatusMeaning`).
"""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import struct
from collections import deque
from collections.abc import Iterable, Iterator

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from radguard.dimse.association import MAX_CONTEXTS, Peer
from radguard.dimse.errors import AssociationFailed
from radguard.dimse.pdu import (
    A_ABORT,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    MAX_PDU_READ,
    P_DATA_TF,
    associate_rq,
    command,
    parse_associate_ac,
    parse_command,
    pdu,
)
from radguard.dimse.status import StatusMeaning, meaning

__all__ = ["MAX_RECEIVE", "Association"]

MAX_RECEIVE = 1024 * 1024
"""Maximum Length (PS3.8 D.1) this requestor announces for PDUs it receives."""

MAX_RESPONSE = 16 * 1024 * 1024
"""Largest response message (command + identifier) accepted from a peer."""

NO_LIMIT_SEND = 1024 * 1024
"""PDU size used when the peer announces Maximum Length 0 (no limit)."""

IMPLICIT_LE, EXPLICIT_LE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"
_NO_DATA = 0x0101


class Association:
    """One established association; use :meth:`open`. Not thread-safe: one thread per association.

    ``contexts`` maps (abstract syntax, transfer syntax) to the accepted presentation context id.
    """

    def __init__(self, sock: socket.socket, peer: Peer, contexts: dict[tuple[str, str], int],
                 max_send: int):
        self.sock = sock
        self.peer = peer
        self.contexts = contexts
        self.max_send = max_send if max_send > 6 else NO_LIMIT_SEND
        self.msg_id = 0
        self.established = True
        self._pdvs: deque[tuple[int, int, bytes]] = deque()

    # -- opening and closing (PS3.8 7.1, 7.2, 7.3) --------------------------------------------

    @classmethod
    def open(cls, peer: Peer, contexts: Iterable[tuple[str, Iterable[str]]]) -> Association:
        """Connect to ``peer`` and negotiate ``contexts`` = (abstract syntax, transfer syntaxes).

        Raises
        ------
        AssociationFailed
            Unreachable, TLS handshake failed, rejected (A-ASSOCIATE-RJ), aborted, too many
            contexts, or no context accepted.
        TlsConfigError
            The TLS files cannot be loaded.
        """
        proposed = [(abstract, list(syntaxes)) for abstract, syntaxes in contexts]
        if len(proposed) > MAX_CONTEXTS:
            raise AssociationFailed(f"{len(proposed)} presentation contexts; at most "
                                    f"{MAX_CONTEXTS}", subject=peer.label,
                                    remedy="split the transfer")
        ids = {2 * i + 1: item for i, item in enumerate(proposed)}
        sock = _connect(peer)
        try:
            sock.sendall(associate_rq(peer.called_aet, peer.calling_aet,
                                      [(cid, a, ts) for cid, (a, ts) in ids.items()],
                                      MAX_RECEIVE, IMPLEMENTATION_CLASS_UID,
                                      IMPLEMENTATION_VERSION_NAME))
            kind, body = _read_pdu(sock)
            if kind == A_ASSOCIATE_RJ:
                raise AssociationFailed("association rejected (check the called and calling AE "
                                        "titles)", subject=peer.label,
                                        remedy="check that the peer knows this AE title")
            if kind != A_ASSOCIATE_AC:
                raise AssociationFailed("association aborted (TLS handshake or peer policy)",
                                        subject=peer.label,
                                        remedy="check the TLS settings and the peer's log")
            accepted = parse_associate_ac(body)
        except AssociationFailed:
            sock.close()
            raise
        except (OSError, ValueError) as exc:
            sock.close()
            raise AssociationFailed(f"association failed: {exc}", subject=peer.label,
                                    remedy="check host, port, AE titles and TLS settings"
                                    ) from exc
        granted = {(ids[cid][0], ts): cid for cid, ts in accepted.contexts.items() if cid in ids}
        if not granted:
            _abort(sock)
            raise AssociationFailed("the peer accepted none of the presentation contexts",
                                    subject=peer.label,
                                    remedy="check the SOP classes and transfer syntaxes the peer "
                                    "accepts")
        sock.settimeout(peer.timeouts["dimse"])
        return cls(sock, peer, granted, accepted.max_send)

    def release(self) -> None:
        """A-RELEASE-RQ and wait for the RP (PS3.8 7.2); any failure just closes the socket."""
        if self.established:
            self.established = False
            with contextlib.suppress(OSError, ValueError, AssociationFailed):
                self.sock.sendall(pdu(A_RELEASE_RQ, bytes(4)))
                while _read_pdu(self.sock)[0] != A_RELEASE_RP:
                    pass
        self.sock.close()

    def abort(self) -> None:
        """A-ABORT (source: service user) and close (PS3.8 7.3.1)."""
        if self.established:
            self.established = False
            _abort(self.sock)
        self.sock.close()

    # -- messages --------------------------------------------------------------------------------

    def context_id(self, abstract: str, transfer_syntax: str | None = None) -> int | None:
        """The accepted context for ``abstract`` (and ``transfer_syntax``, if given)."""
        for (a, ts), cid in self.contexts.items():
            if a == abstract and transfer_syntax in (None, ts):
                return cid
        return None

    def store(self, sop_class: str, sop_instance: str, transfer_syntax: str,
              dataset: bytes | memoryview) -> StatusMeaning:
        """C-STORE ``dataset`` (encoded in ``transfer_syntax``, no File Meta) and return the
        response status (PS3.4 B.2.3). Without an accepted context: status 0x0122, nothing sent.

        Raises
        ------
        AssociationFailed
            The association was aborted, timed out or answered out of protocol (it is aborted).
        """
        cid = self.context_id(sop_class, transfer_syntax)
        if cid is None:
            return StatusMeaning(0x0122, "failure", "Refused: the peer did not accept this SOP "
                                 "class and transfer syntax (presentation context)")
        msg_id = self._next_id()
        rq = command({0x0002: sop_class, 0x0100: 0x0001, 0x0110: msg_id, 0x0700: 0,
                      0x0800: 0x0001, 0x1000: sop_instance})
        rsp, _ = self._exchange(cid, rq, dataset, 0x8001, msg_id)[-1]
        return meaning(int(rsp.get(0x0900, 0xC000)))

    def find(self, model: str, query: Dataset) -> list[tuple[StatusMeaning, Dataset | None]]:
        """C-FIND ``query`` in information model ``model``; every response's status and identifier
        (PS3.4 C.4.1.1.4), the final one last.

        Raises
        ------
        AssociationFailed
            No accepted context for ``model``, the association failed, or an identifier is
            malformed (the association is aborted).
        """
        implicit, responses = self.find_raw(model, query)
        return [(status, None if data is None else self.decode(data, implicit))
                for status, data in responses]

    def find_raw(self, model: str, query: Dataset
                 ) -> tuple[bool, list[tuple[StatusMeaning, bytes | None]]]:
        """Like :meth:`find`, with each identifier as its encoded bytes, and whether they are in
        Implicit VR Little Endian (else Explicit VR Little Endian): for callers that need one
        attribute of many identifiers (:mod:`radguard.dimse.ident`), with :meth:`decode` as the
        fallback.

        Raises
        ------
        AssociationFailed
            No accepted context for ``model``, or the association failed.
        """
        cid = self.context_id(model)
        if cid is None:
            raise AssociationFailed("the peer does not accept C-FIND (Study Root) from this AE, "
                                    "so arrival cannot be confirmed", subject=self.peer.label,
                                    remedy="allow queries for the calling AE, or check the PACS "
                                    "by hand")
        implicit = next(ts for (a, ts), c in self.contexts.items() if c == cid) == IMPLICIT_LE
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, implicit
        write_dataset(fp, query)
        msg_id = self._next_id()
        rq = command({0x0002: model, 0x0100: 0x0020, 0x0110: msg_id, 0x0700: 0, 0x0800: 0x0001})
        return implicit, [(meaning(int(rsp.get(0x0900, 0xC000))), data)
                          for rsp, data in self._exchange(cid, rq, fp.getvalue(), 0x8020, msg_id)]

    def decode(self, data: bytes, implicit: bool) -> Dataset:
        """An identifier of :meth:`find_raw` decoded by pydicom.

        Raises
        ------
        AssociationFailed
            The identifier is malformed: a peer's malformed answer ends the association.
        """
        try:
            return read_dataset(io.BytesIO(data), implicit, True)
        except Exception as exc:
            self.abort()
            raise AssociationFailed(f"malformed C-FIND identifier: {exc}",
                                    subject=self.peer.label) from exc

    def _next_id(self) -> int:
        self.msg_id = self.msg_id % 65535 + 1
        return self.msg_id

    def _exchange(self, cid: int, rq: bytes, data: bytes | memoryview, rsp_field: int,
                  msg_id: int) -> list[tuple[dict[int, int | str], bytes | None]]:
        """Send one request, read responses until one that is not Pending (0xFF00/0xFF01)."""
        if not self.established:
            raise AssociationFailed("association no longer established", subject=self.peer.label)
        try:
            self._send(cid, rq, data)
            out = []
            while True:
                rsp, payload = self._receive()
                if rsp.get(0x0100) != rsp_field or rsp.get(0x0120) != msg_id:
                    raise ValueError(f"unexpected response (command 0x{rsp.get(0x0100)!s})")
                out.append((rsp, payload))
                if rsp.get(0x0900) not in (0xFF00, 0xFF01):
                    return out
        except (OSError, ValueError) as exc:
            self.abort()
            why = "no response within the DIMSE timeout" if isinstance(exc, TimeoutError) \
                else str(exc)
            raise AssociationFailed(f"association lost: {why}; association aborted",
                                    subject=self.peer.label,
                                    remedy="run the import again: it resumes where it stopped"
                                    ) from exc

    def _send(self, cid: int, rq: bytes, data: bytes | memoryview) -> None:
        """P-DATA-TF: the command in one PDV, the data set in PDVs of at most max_send - 6 bytes
        (PDV item header: 4 length + context id + message control header; PS3.8 E.2).

        The whole message goes to the kernel in one ``sendall``: one system call and one release
        of the GIL per message instead of one per PDU."""
        parts: list[bytes | memoryview] = [
            pdu(P_DATA_TF, struct.pack(">IBB", len(rq) + 2, cid, 0x03) + rq)]
        view = memoryview(data)
        step = self.max_send - 6
        for start in range(0, max(len(view), 1), step):
            chunk = view[start:start + step]
            last = 0x02 if start + step >= len(view) else 0x00
            parts.append(struct.pack(">BBIIBB", P_DATA_TF, 0, len(chunk) + 6, len(chunk) + 2,
                                     cid, last))
            parts.append(chunk)
        self.sock.sendall(b"".join(parts))

    def _receive(self) -> tuple[dict[int, int | str], bytes | None]:
        """One whole DIMSE message: its command set and, when present, its data set."""
        cmd_parts: list[bytes] = []
        data_parts: list[bytes] = []
        cmd: dict[int, int | str] | None = None
        size = 0
        for _cid, mch, fragment in self._fragments():
            size += len(fragment)
            if size > MAX_RESPONSE:
                raise ValueError("response larger than the limit")
            if mch & 0x01:
                cmd_parts.append(fragment)
                if mch & 0x02:
                    cmd = parse_command(b"".join(cmd_parts))
                    if cmd.get(0x0800, _NO_DATA) == _NO_DATA:
                        return cmd, None
            else:
                if cmd is None:
                    raise ValueError("data PDV before the command")
                data_parts.append(fragment)
                if mch & 0x02:
                    return cmd, b"".join(data_parts)
        raise ValueError("unreachable")  # pragma: no cover - _fragments never ends

    def _fragments(self) -> Iterator[tuple[int, int, bytes]]:
        while True:
            while self._pdvs:
                yield self._pdvs.popleft()
            kind, body = _read_pdu(self.sock)
            if kind == A_ABORT:
                self.established = False
                raise ValueError("the peer aborted the association (A-ABORT)")
            if kind == A_RELEASE_RQ:
                with contextlib.suppress(OSError):
                    self.sock.sendall(pdu(A_RELEASE_RP, bytes(4)))
                self.established = False
                raise ValueError("the peer released the association in the middle of an operation")
            if kind != P_DATA_TF:
                raise ValueError(f"unexpected PDU type 0x{kind:02X}")
            pos = 0
            while pos + 6 <= len(body):
                length = int(struct.unpack_from(">I", body, pos)[0])
                if length < 2 or pos + 4 + length > len(body):
                    raise ValueError("malformed PDV item")
                self._pdvs.append((body[pos + 4], body[pos + 5], body[pos + 6:pos + 4 + length]))
                pos += 4 + length


def _connect(peer: Peer) -> socket.socket:
    try:
        raw = socket.create_connection((peer.host, peer.port), timeout=peer.timeouts["acse"])
    except OSError as exc:
        raise AssociationFailed(f"cannot connect: {exc}", subject=peer.label,
                                remedy="check host, port and that the peer is up") from exc
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls
    if peer.tls is None:
        return raw
    from radguard.dimse.tls import client_context

    try:
        return client_context(peer.tls).wrap_socket(raw, server_hostname=peer.host)
    except (OSError, ssl.SSLError) as exc:
        raw.close()
        raise AssociationFailed(f"TLS handshake failed: {exc}", subject=peer.label,
                                remedy="check the CA, the client certificate and the peer's TLS "
                                "profile") from exc
    except BaseException:
        raw.close()
        raise


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        r = sock.recv_into(view[got:], n - got)
        if r == 0:
            raise ConnectionError("the peer closed the connection")
        got += r
    return bytes(buf)


def _read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    kind, _, length = struct.unpack(">BBI", _read_exact(sock, 6))
    if length > MAX_PDU_READ:
        raise ValueError(f"PDU of {length} bytes exceeds the limit")
    return kind, _read_exact(sock, length)


def _abort(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(pdu(A_ABORT, bytes(4)))
