"""From received bytes to a :class:`ParsedMessage`: header, validity, and the fields searched.

The pipeline for one message (PS3.15 A.5.1, A.6; RFC 5424):

1. the syslog header (:mod:`.header`); MSGID should be ``DICOM+RFC3881`` or ``IHE+RFC-3881``;
2. the MSG is parsed by the hardened parser of :mod:`radguard.audit._xml` (no DTD, no entities, no
   network, bounded); a DOCTYPE or ENTITY declaration is refused before any parser sees it, so a
   billion-laughs or external-entity message is never expanded;
3. validation against the 2023b schema; if that fails, the older RFC 3881 spelling (``code``
   instead of ``csd-code``, no ``originalText``) is rewritten in the parsed tree and validated
   again, and a pass is recorded as :attr:`Validity.RFC3881`;
4. the searched fields are read from the tree (event, participants, objects), bounded in number.

Nothing here raises for bad input: every outcome is a :class:`ParsedMessage` whose ``validity``
and ``reason`` say what was wrong, and whose ``raw`` keeps the bytes exactly as received.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from radguard.audit._xml import parse as parse_xml
from radguard.audit.repository.header import ACCEPTED_MSGIDS, parse_header
from radguard.audit.schema import schema_errors
from radguard.errors import AuditSchemaError

__all__ = ["MAX_TERMS", "ParsedMessage", "Validity", "parse_message", "parse_msg"]

#: Most values of one kind (users, patients...) indexed for one record; the raw keeps all.
MAX_TERMS = 1000
_MAX_REASON = 2000
_FAILURE = frozenset({4, 8, 12})
_STUDY_PATH = "ParticipantObjectDescription/ParticipantObjectContainsStudy/StudyIDs"


class Validity(enum.StrEnum):
    """How a stored record passed the checks."""

    VALID = "valid"  #: conforms to the PS3.15 2023b schema
    RFC3881 = "rfc3881"  #: conforms once its RFC 3881 spelling is read as DICOM's
    INVALID = "invalid"  #: well-formed XML that does not conform; kept with the reasons
    NOT_XML = "not-xml"  #: not well-formed XML, or not an AuditMessage
    REFUSED = "refused"  #: hostile or undecodable (DOCTYPE/ENTITY, UTF-16...); never parsed
    TRUNCATED = "truncated"  #: longer than the receiver's limit; the kept prefix is stored

    @property
    def readable(self) -> bool:
        return self in (Validity.VALID, Validity.RFC3881, Validity.INVALID)


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """One received message, ready to store and to evaluate.

    ``terms`` are the ``(kind, value)`` pairs indexed for search (kinds ``user``, ``node``,
    ``patient``, ``study``, ``type``); the remaining tuples are what detection rules read.
    Times are tz-aware UTC; ``event_time`` is EventDateTime, ``received_at`` the arrival.
    """

    raw: bytes
    received_at: datetime
    transport: str
    peer: str
    validity: Validity
    reason: str | None
    hostname: str | None = None
    app_name: str | None = None
    msgid: str | None = None
    event_time: datetime | None = None
    source_id: str | None = None
    event_id: str | None = None
    action: str | None = None
    outcome: int | None = None
    description: str | None = None
    type_codes: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    requestors: tuple[str, ...] = ()
    requestor_nodes: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    media_destination: bool = False

    @property
    def time(self) -> datetime:
        """The time detection windows use: EventDateTime when known, else arrival."""
        return self.event_time or self.received_at

    @property
    def failed(self) -> bool:
        return self.outcome in _FAILURE

    @property
    def terms(self) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for kind, values in (("user", self.users), ("node", self.nodes),
                             ("patient", self.patients), ("study", self.studies),
                             ("type", self.type_codes)):
            out.extend((kind, v) for v in values)
        return tuple(out)


def _uniq(values: list[str]) -> tuple[str, ...]:
    """Non-empty values, each cut to 255 characters, first occurrence kept, at most
    :data:`MAX_TERMS` (one- and two-value lists, the common case, without a dict)."""
    n = len(values)
    if n == 1:
        v = values[0]
        return (v[:255],) if v else ()
    if n == 2:
        a, b = values[0][:255], values[1][:255]
        return ((a, b) if a != b else (a,)) if a and b else (a,) if a else (b,) if b else ()
    return tuple(dict.fromkeys(v[:255] for v in values if v))[:MAX_TERMS]


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + " ..."


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rfc3881_to_dicom(root: etree._Element) -> bool:
    """Rewrite RFC 3881 coded values (``code``, ``codeSystem``) in DICOM's spelling; return
    whether anything changed."""
    changed = False
    for elem in root.iter():
        code = elem.get("code")
        if code is None or elem.get("csd-code") is not None:
            continue
        changed = True
        elem.set("csd-code", code)
        del elem.attrib["code"]
        system = elem.get("codeSystem")
        if system is not None:
            del elem.attrib["codeSystem"]
        if elem.tag == "AuditSourceTypeCode" and elem.get("codeSystemName") is None:
            continue
        if elem.get("codeSystemName") is None:
            elem.set("codeSystemName", system or "RFC-3881")
        if elem.get("originalText") is None:
            elem.set("originalText", elem.get("displayName") or code)
    return changed


def _code_of(elem: etree._Element) -> str | None:
    return elem.get("csd-code") or elem.get("code")


def _event_fields(event: etree._Element, out: dict[str, object]) -> None:
    eid = desc = None
    types: list[str] = []
    for child in event:
        tag = child.tag
        if tag == "EventTypeCode":
            types.append(_code_of(child) or "")
        elif tag == "EventID":
            if eid is None:
                eid = child
        elif tag == "EventOutcomeDescription" and desc is None:
            desc = child
    get = event.get
    out["event_id"] = _code_of(eid) if eid is not None else None
    out["action"] = (get("EventActionCode") or "")[:1] or None
    outcome = get("EventOutcomeIndicator", "")
    out["outcome"] = int(outcome) if outcome.isdigit() and len(outcome) < 4 else None
    out["event_time"] = _when(get("EventDateTime"))
    out["description"] = (desc.text or "")[:1000] if desc is not None else None
    out["type_codes"] = _uniq(types)


def _fields(root: etree._Element) -> dict[str, object]:
    """The searched and evaluated fields of an AuditMessage tree (any conformance), read in one
    pass over the root's children (PS3.15 A.5.1: event, participants, source, objects)."""
    out: dict[str, object] = {}
    users: list[str] = []
    requestors: list[str] = []
    req_nodes: list[str] = []
    nodes: list[str] = []
    dests: list[str] = []
    patients: list[str] = []
    studies: list[str] = []
    media_dest = False
    event = source = None
    for child in root:
        tag = child.tag
        if tag == "ActiveParticipant":
            get = child.get
            user = get("UserID") or ""
            alt = get("AlternativeUserID") or ""
            nap = get("NetworkAccessPointID") or ""
            users.append(user)
            users.append(alt)
            nodes.append(nap)
            if (get("UserIsRequestor") or "").strip() in ("true", "1"):
                requestors.append(user)
                req_nodes.append(nap)
            for role in child:
                if role.tag == "RoleIDCode":
                    code = _code_of(role)
                    if code == "110152":
                        dests.extend((user, alt, nap))
                    elif code == "110154":
                        media_dest = True
        elif tag == "ParticipantObjectIdentification":
            get = child.get
            oid = get("ParticipantObjectID") or ""
            idt = None
            described = False
            for part in child:
                ptag = part.tag
                if ptag == "ParticipantObjectIDTypeCode":
                    if idt is None:
                        idt = part
                elif ptag == "ParticipantObjectDescription":
                    described = True
            code = _code_of(idt) if idt is not None else None
            if code == "110180":
                studies.append(oid)
            elif code == "2" or (get("ParticipantObjectTypeCode") == "1"
                                 and get("ParticipantObjectTypeCodeRole") == "1"):
                patients.append(oid)
            if described:
                studies.extend(s.get("UID") or "" for s in child.iterfind(_STUDY_PATH))
        elif tag == "EventIdentification":
            if event is None:
                event = child
        elif tag == "AuditSourceIdentification" and source is None:
            source = child
    if event is not None:
        _event_fields(event, out)
    source_id = source.get("AuditSourceID") if source is not None else None
    nodes.append(source_id or "")
    out.update(users=_uniq(users), requestors=_uniq(requestors),
               requestor_nodes=_uniq(req_nodes), nodes=_uniq(nodes),
               destinations=_uniq(dests), media_destination=media_dest,
               source_id=(source_id or "")[:255] or None,
               patients=_uniq(patients), studies=_uniq(studies))
    return out


def parse_msg(msg: bytes) -> tuple[Validity, str | None, dict[str, object]]:
    """Check one MSG (the audit XML) and read its fields; see the module docstring."""
    if b"<!DOCTYPE" in msg or b"<!ENTITY" in msg:
        return (Validity.REFUSED,
                "declares a DOCTYPE or ENTITY (entity expansion / external entity attack); "
                "kept raw, never parsed", {})
    try:
        root = parse_xml(msg)
    except AuditSchemaError as exc:
        kind = Validity.REFUSED if "encoding" in exc.message else Validity.NOT_XML
        return kind, _clip(exc.message), {}
    if root.tag != "AuditMessage":
        return Validity.NOT_XML, f"root element is {str(root.tag)[:64]!r}, not AuditMessage", {}
    errors = schema_errors(root)
    validity = Validity.VALID
    if errors:
        validity = Validity.INVALID
        if _rfc3881_to_dicom(root) and not schema_errors(root):
            validity = Validity.RFC3881
    reason = None
    if validity is Validity.INVALID:
        reason = _clip("does not conform to PS3.15 A.5.1 (2023b) nor RFC 3881: "
                       + "; ".join(errors[:5]))
    return validity, reason, _fields(root)


def parse_message(
    raw: bytes,
    *,
    transport: str,
    peer: str,
    received_at: datetime,
    truncated_from: int | None = None,
) -> ParsedMessage:
    """Parse one received syslog message (framing removed). Never raises for bad input.

    ``truncated_from`` is the full length when the receiver kept only a prefix of ``raw``.
    """
    header = parse_header(raw)
    notes: list[str] = []
    if truncated_from is not None:
        validity: Validity = Validity.TRUNCATED
        reason: str | None = (f"message of {truncated_from} octets exceeds the receiver limit; "
                              f"the first {len(raw)} octets are kept")
        fields: dict[str, object] = {}
    else:
        validity, reason, fields = parse_msg(raw[header.msg_offset:])
    if header.problem:
        notes.append(header.problem)
    if header.rfc5424 and header.msgid not in ACCEPTED_MSGIDS:
        notes.append(f"MSGID {str(header.msgid)[:32]!r} is not DICOM+RFC3881 or IHE+RFC-3881")
    if notes:
        reason = "; ".join([reason, *notes] if reason else notes)
    return ParsedMessage(
        raw=raw, received_at=received_at, transport=transport, peer=peer,
        validity=validity, reason=reason, hostname=header.hostname,
        app_name=header.app_name, msgid=header.msgid,
        **fields,  # type: ignore[arg-type]
    )
