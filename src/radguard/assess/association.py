"""One association attempt with exactly the items chosen, as a value (PS3.8 9.3, PS3.7 D.3.3).

:func:`attempt` connects (TCP, then TLS when asked), sends one A-ASSOCIATE-RQ, reads one answer and
releases politely (A-RELEASE-RQ, waiting briefly for the RP). Whatever the peer does (refuse, reset,
close, stay silent, answer with garbage or a TLS alert) comes back as an :class:`Attempt`; only
programming errors raise.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from radguard.assess.channel import (
    Channel,
    ChannelError,
    HandshakeInfo,
    TlsConfig,
    client_context,
    open_channel,
)
from radguard.assess.pdu import (
    MAX_PDU,
    AssociateAnswer,
    Context,
    UserIdentity,
    encode_associate_rq,
    parse_answer,
    release_rq,
)

__all__ = ["Attempt", "attempt", "read_pdu"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one association attempt."""

    answer: AssociateAnswer
    handshake: HandshakeInfo | None = None
    local_address: str = ""
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.answer.kind == "accept"


def read_pdu(channel: Channel, deadline: float) -> tuple[int, bytes]:
    """Read one PDU (type, body) with its length bounded by :data:`MAX_PDU`.

    Raises
    ------
    ChannelError
        ``garbage`` when the header is not a DICOM PDU (too long, or a TLS record), else the
        channel's own kinds.
    """
    head = channel.recv_exact(6, deadline)
    pdu_type, _, length = struct.unpack(">BBI", head)
    if pdu_type in (0x15, 0x16) and head[1] == 0x03:
        raise ChannelError("garbage", "a TLS record: this port speaks TLS")
    if length > MAX_PDU:
        raise ChannelError("garbage", f"PDU type 0x{pdu_type:02x} claims {length} bytes")
    return pdu_type, channel.recv_exact(length, deadline)


def attempt(host: str, port: int, *, called: str | bytes, calling: str | bytes,
            contexts: Sequence[Context], timeout: float, tls: TlsConfig | None = None,
            identity: UserIdentity | None = None, server_hostname: str | None = None,
            connect_timeout: float | None = None) -> Attempt:
    """Make one association attempt and release it; see the module docstring.

    ``connect_timeout`` bounds the TCP connection (default: ``timeout``), ``timeout`` the TLS
    handshake and the association answer. A node that connects and does not answer in time is
    ``silent`` with the reason "no answer within T s": a statement about this wait, not a claim
    that the node does not speak DICOM.
    """
    start = time.monotonic()
    try:
        channel = open_channel(host, port, timeout, connect_timeout)
    except ChannelError as exc:
        return Attempt(AssociateAnswer(exc.kind, reason=exc.detail),
                       seconds=time.monotonic() - start)
    handshake: HandshakeInfo | None = None
    try:
        if tls is not None:
            handshake = channel.start_tls(client_context(tls), server_hostname)
            if not handshake.ok:
                return Attempt(AssociateAnswer("tls-failed", reason=handshake.error), handshake,
                               channel.local_address, time.monotonic() - start)
        rq = encode_associate_rq(called, calling, contexts, identity=identity)
        deadline = time.monotonic() + timeout
        try:
            channel.send(rq)
            pdu_type, body = read_pdu(channel, deadline)
        except ChannelError as exc:
            # connected but no answer: the device is there and silent, not unreachable
            if exc.kind == "timeout":
                return Attempt(AssociateAnswer(
                    "silent", reason=f"no answer within {timeout:g} s to the A-ASSOCIATE-RQ"),
                    handshake, channel.local_address, time.monotonic() - start)
            return Attempt(AssociateAnswer(exc.kind, reason=exc.detail), handshake,
                           channel.local_address, time.monotonic() - start)
        answer = parse_answer(pdu_type, body)
        if answer.kind == "accept":
            with contextlib.suppress(ChannelError):
                channel.send(release_rq())
                read_pdu(channel, time.monotonic() + min(timeout, 2.0))
        return Attempt(answer, handshake, channel.local_address, time.monotonic() - start)
    finally:
        channel.close()
