"""Raw upper-layer PDUs for association probes (PS3.8 section 9.3), tolerant of odd peers.

The assessment builds its A-ASSOCIATE-RQ itself and parses whatever comes back without trusting it:
lengths are bounded (:data:`MAX_PDU`), AE titles are decoded byte by byte with non-printable bytes
escaped, unknown items are skipped. A peer that answers with garbage is a result (``kind="garbage"``),
never an exception. pynetdicom is used for the DIMSE operations (:mod:`radguard.assess.services`);
association-level probes (acceptance, fingerprint tiers, user identity) go through this module so
that each probe is exactly one association with exactly the items we chose.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "APPLICATION_CONTEXT",
    "MAX_PDU",
    "AssociateAnswer",
    "Context",
    "UserIdentity",
    "decode_ae",
    "encode_associate_rq",
    "parse_answer",
    "random_aet",
    "release_rq",
]

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1408.1"
IMPLEMENTATION_VERSION = "RADGUARD_ASSESS"
MAX_PDU = 256 * 1024
"""Largest answer PDU accepted from a peer (an A-ASSOCIATE-AC of 128 contexts is < 16 KiB)."""

RESULT_TEXT = {0: "acceptance", 1: "user-rejection", 2: "no-reason",
               3: "abstract-syntax-not-supported", 4: "transfer-syntaxes-not-supported"}
"""PS3.8 table 9-18: presentation context result."""

REJECT_REASON = {
    (1, 1): "no reason given", (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognized", (1, 7): "called AE title not recognized",
    (2, 1): "no reason given (ACSE)", (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion", (3, 2): "local limit exceeded",
}
"""PS3.8 table 9-21: A-ASSOCIATE-RJ source and reason."""


@dataclass(frozen=True, slots=True)
class Context:
    """A presentation context to propose: odd ``id`` (1..255), one abstract syntax, its syntaxes."""

    id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """User Identity Negotiation sub-item 0x58 (PS3.7 D.3.3.7): type 1 username, 2 username and
    passcode; ``positive_response`` asks the acceptor to answer with sub-item 0x59."""

    type: int
    primary: bytes
    secondary: bytes = b""
    positive_response: bool = True


def random_aet(prefix: str = "RG") -> str:
    """A random AE title no site would have configured (16 characters at most, PS3.5 6.2)."""
    return f"{prefix}{secrets.token_hex(5).upper()}"[:16]


def _uid(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw


def _item(item_type: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(payload)) + payload


def _ae(title: str | bytes) -> bytes:
    raw = title.encode("ascii") if isinstance(title, str) else title
    return raw[:16].ljust(16, b" ")


def encode_associate_rq(called: str | bytes, calling: str | bytes, contexts: Sequence[Context], *,
                        identity: UserIdentity | None = None, max_length: int = 16384) -> bytes:
    """Encode an A-ASSOCIATE-RQ PDU (PS3.8 9.3.2) with the given contexts and user information.

    Raises
    ------
    ValueError
        More than 128 contexts (PS3.8 9.3.2.2 allows ids 1..255, odd: 128 at most).
    """
    if len(contexts) > 128:
        raise ValueError(f"{len(contexts)} presentation contexts; at most 128 per association")
    body = bytearray()
    body += _item(0x10, _uid(APPLICATION_CONTEXT))
    for ctx in contexts:
        sub = _item(0x30, _uid(ctx.abstract_syntax))
        for ts in ctx.transfer_syntaxes:
            sub += _item(0x40, _uid(ts))
        body += _item(0x20, struct.pack(">BBBB", ctx.id, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">I", max_length))
    user += _item(0x52, _uid(IMPLEMENTATION_CLASS_UID))
    user += _item(0x55, IMPLEMENTATION_VERSION.encode("ascii"))
    if identity is not None:
        user += _item(0x58, struct.pack(">BBH", identity.type, int(identity.positive_response),
                                        len(identity.primary)) + identity.primary
                      + struct.pack(">H", len(identity.secondary)) + identity.secondary)
    body += _item(0x50, user)
    variable = bytes(body)
    fixed = struct.pack(">HH", 1, 0) + _ae(called) + _ae(calling) + bytes(32)
    payload = fixed + variable
    return struct.pack(">BBI", 0x01, 0, len(payload)) + payload


def release_rq() -> bytes:
    """A-RELEASE-RQ PDU (PS3.8 9.3.6)."""
    return struct.pack(">BBII", 0x05, 0, 4, 0)


def abort_rq() -> bytes:
    """A-ABORT PDU from the service user (PS3.8 9.3.8)."""
    return struct.pack(">BBIBBBB", 0x07, 0, 4, 0, 0, 0, 0)


def decode_ae(raw: bytes) -> tuple[str, bool]:
    """Decode a 16-byte AE title field: (text with non-printables escaped, well_formed).

    PS3.5 6.2: AE is 16 bytes of the default character repertoire, no control characters and no
    backslash; leading and trailing spaces are not significant.
    """
    ok = all(0x20 <= b < 0x7F and b != 0x5C for b in raw)
    text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in raw).strip()
    return text, ok and bool(raw.strip(b" "))


@dataclass(frozen=True, slots=True)
class AssociateAnswer:
    """What a peer answered to an A-ASSOCIATE-RQ.

    ``kind`` is ``accept`` (AC), ``reject`` (RJ), ``abort`` (A-ABORT), ``garbage`` (something that
    is not a valid answer PDU), ``closed`` (connection closed with no answer), ``reset``,
    ``silent`` (connected, no answer in time), ``timeout`` (no TCP connection in time),
    ``refused`` (no TCP connection), ``tls-failed``.
    """

    kind: str
    reason: str = ""
    called_ae: str = ""
    calling_ae: str = ""
    ae_well_formed: bool = True
    implementation_class_uid: str = ""
    implementation_version: str = ""
    max_length: int | None = None
    accepted: tuple[tuple[int, str], ...] = ()
    """(context id, transfer syntax) of each accepted context."""
    rejected: tuple[tuple[int, str], ...] = ()
    """(context id, result text) of each refused context."""
    identity_response: bytes | None = None
    """Server response of sub-item 0x59, when the acceptor sent one."""
    user_items: tuple[int, ...] = field(default_factory=tuple)

    @property
    def accepted_association(self) -> bool:
        return self.kind == "accept"


def _items(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos + 4 <= len(data):
        item_type, _, length = struct.unpack_from(">BBH", data, pos)
        out.append((item_type, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
    return out


def _parse_ac(body: bytes) -> AssociateAnswer:
    if len(body) < 68:
        return AssociateAnswer("garbage", reason=f"A-ASSOCIATE-AC too short ({len(body)} bytes)")
    called, ok1 = decode_ae(body[4:20])
    calling, ok2 = decode_ae(body[20:36])
    accepted: list[tuple[int, str]] = []
    rejected: list[tuple[int, str]] = []
    impl_uid = impl_version = ""
    max_length: int | None = None
    identity: bytes | None = None
    user_items: list[int] = []
    for item_type, payload in _items(body[68:]):
        if item_type == 0x21 and len(payload) >= 4:
            ctx_id, result = payload[0], payload[2]
            ts = ""
            for sub_type, sub in _items(payload[4:]):
                if sub_type == 0x40:
                    ts = sub.decode("ascii", "replace").rstrip("\0 ")
            if result == 0:
                accepted.append((ctx_id, ts))
            else:
                rejected.append((ctx_id, RESULT_TEXT.get(result, f"result {result}")))
        elif item_type == 0x50:
            for sub_type, sub in _items(payload):
                user_items.append(sub_type)
                if sub_type == 0x51 and len(sub) == 4:
                    max_length = struct.unpack(">I", sub)[0]
                elif sub_type == 0x52:
                    impl_uid = sub.decode("ascii", "replace").rstrip("\0 ")
                elif sub_type == 0x55:
                    impl_version = decode_ae(sub[:16].ljust(16, b" "))[0]
                elif sub_type == 0x59:
                    identity = sub[2:] if len(sub) >= 2 else b""
    return AssociateAnswer("accept", called_ae=called, calling_ae=calling,
                           ae_well_formed=ok1 and ok2, implementation_class_uid=impl_uid,
                           implementation_version=impl_version, max_length=max_length,
                           accepted=tuple(accepted), rejected=tuple(rejected),
                           identity_response=identity, user_items=tuple(user_items))


def parse_answer(pdu_type: int, body: bytes) -> AssociateAnswer:
    """Interpret one answer PDU (type byte and body after the 6-byte header)."""
    if pdu_type == 0x02:
        return _parse_ac(body)
    if pdu_type == 0x03 and len(body) >= 4:
        source, reason = body[2], body[3]
        text = REJECT_REASON.get((source, reason), f"source {source} reason {reason}")
        permanence = "permanent" if body[1] == 1 else "transient"
        return AssociateAnswer("reject", reason=f"{text} ({permanence})")
    if pdu_type == 0x07 and len(body) >= 4:
        return AssociateAnswer("abort", reason=f"A-ABORT source {body[2]} reason {body[3]}")
    return AssociateAnswer("garbage", reason=f"unexpected PDU type 0x{pdu_type:02x}")
