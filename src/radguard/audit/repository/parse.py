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
import threading
from datetime import UTC, datetime
from typing import Any, NamedTuple

from lxml import etree

from radguard.audit._xml import MAX_MESSAGE_BYTES
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


class ParsedMessage(NamedTuple):
    """One received message, ready to store and to evaluate (immutable).

    ``terms`` are the ``(kind, value)`` pairs indexed for search (kinds ``user``, ``node``,
    ``patient``, ``study``, ``type``); the remaining tuples are what detection rules read.
    Times are tz-aware UTC; ``event_time`` is EventDateTime, ``received_at`` the arrival.
    A named tuple, not a dataclass: built positionally in the parse workers and pickled back to
    the writer once per message, where a frozen dataclass cost more than the fields' extraction.
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
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a valid xsd:dateTime whose UTC
        return None  # instant falls outside year 1-9999 (e.g. 9999-12-31T23:59:59-13:59)


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


def _event_fields(event: etree._Element | None) -> tuple[object, ...]:
    """``(EventDateTime text, event_id, action, outcome, description, type codes)`` of the
    EventIdentification element (``None``: all unknown), before :func:`_finish`."""
    if event is None:
        return None, None, None, None, None, []
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
    outcome = get("EventOutcomeIndicator", "")
    return (get("EventDateTime"), _code_of(eid) if eid is not None else None,
            (get("EventActionCode") or "")[:1] or None,
            int(outcome) if outcome.isdigit() and len(outcome) < 4 else None,
            (desc.text or "")[:1000] if desc is not None else None, types)


#: The fields :func:`_fields` returns, in :class:`ParsedMessage` order (from ``event_time`` on).
FIELD_NAMES = ("event_time", "source_id", "event_id", "action", "outcome", "description",
               "type_codes", "users", "requestors", "requestor_nodes", "nodes", "patients",
               "studies", "destinations", "media_destination")
_NO_FIELDS: tuple[object, ...] = (None, None, None, None, None, None, (), (), (), (), (), (), (),
                                  (), False)

#: Attributes :func:`_raw_fields` reads other than by copying their value into its result (it
#: compares them, or falls back on another attribute when they are empty). The template cache
#: (:mod:`.template`) never lets a message differ from its template in these.
BRANCHING_ATTRIBUTES = frozenset({
    "csd-code", "code", "codeSystem", "UserIsRequestor", "ParticipantObjectTypeCode",
    "ParticipantObjectTypeCodeRole", "EventOutcomeIndicator", "EventActionCode"})
#: Elements whose text :func:`_raw_fields` reads other than by copying (cut to a length).
BRANCHING_TEXT = frozenset({"EventOutcomeDescription"})


def _raw_fields(root: etree._Element) -> tuple[object, ...]:
    """The searched and evaluated fields of an AuditMessage tree (any conformance), read in one
    pass over the root's children (PS3.15 A.5.1: event, participants, source, objects), before
    :func:`_finish`: value lists as read (not yet de-duplicated or cut), EventDateTime and
    AuditSourceID as their attribute text.

    Contract used by the template cache (:mod:`.template`): every attribute value and element
    text this function reads is either copied whole into its result or is named in
    :data:`BRANCHING_ATTRIBUTES` / :data:`BRANCHING_TEXT`; all the work on values is done by
    :func:`_finish`.
    """
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
    source_id = source.get("AuditSourceID") if source is not None else None
    return (*_event_fields(event), source_id, users, requestors, req_nodes, nodes, patients,
            studies, dests, media_dest)


def _finish(raw: tuple[Any, ...]) -> tuple[object, ...]:
    """:func:`_raw_fields`' result as the fields of :data:`FIELD_NAMES`."""
    (when, event_id, action, outcome, description, types, source_id, users, requestors,
     req_nodes, nodes, patients, studies, dests, media_dest) = raw
    return (_when(when), (source_id or "")[:255] or None, event_id, action, outcome,
            description, _uniq(types), _uniq(users), _uniq(requestors), _uniq(req_nodes),
            _uniq([*nodes, source_id or ""]), _uniq(patients), _uniq(studies), _uniq(dests),
            media_dest)


def _fields(root: etree._Element) -> tuple[object, ...]:
    """The searched and evaluated fields of an AuditMessage tree, as a tuple in
    :data:`FIELD_NAMES` order (no dict per message)."""
    return _finish(_raw_fields(root))


_LOCAL = threading.local()


def _reused_parser() -> etree.XMLParser:
    """This thread's hardened parser (the settings of :mod:`radguard.audit._xml`), built once:
    creating an ``XMLParser`` per message cost a third of the parse."""
    parser: etree.XMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
            dtd_validation=False, remove_comments=True, remove_pis=True)
    return parser


def _parse(msg: bytes) -> etree._Element:
    """:func:`radguard.audit._xml.parse` with a reused parser. The common case (small, UTF-8, no
    DOCTYPE, well-formed) is parsed here with the same hardening; anything else is handed to
    ``_xml.parse`` so that refusals and errors are exactly its own. Raises AuditSchemaError."""
    if (len(msg) <= MAX_MESSAGE_BYTES and msg[:2] not in (b"\xff\xfe", b"\xfe\xff")
            and b"\x00" not in msg[:4] and b"<!DOCTYPE" not in msg and b"<!ENTITY" not in msg):
        try:
            root = etree.fromstring(msg, parser=_reused_parser())
        except etree.XMLSyntaxError:
            pass
        else:
            docinfo = root.getroottree().docinfo
            if docinfo.internalDTD is None and docinfo.externalDTD is None:
                return root
    return parse_xml(msg)


def parse_msg(msg: bytes) -> tuple[Validity, str | None, tuple[object, ...]]:
    """Check one MSG (the audit XML) and read its fields; see the module docstring."""
    if b"<!DOCTYPE" in msg or b"<!ENTITY" in msg:
        return (Validity.REFUSED,
                "declares a DOCTYPE or ENTITY (entity expansion / external entity attack); "
                "kept raw, never parsed", _NO_FIELDS)
    try:
        root = _parse(msg)
    except AuditSchemaError as exc:
        kind = Validity.REFUSED if "encoding" in exc.message else Validity.NOT_XML
        return kind, _clip(exc.message), _NO_FIELDS
    if root.tag != "AuditMessage":
        return Validity.NOT_XML, f"root element is {str(root.tag)[:64]!r}, not AuditMessage", _NO_FIELDS
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
    header = parse_header(raw, full=False)  # the SD and TIMESTAMP are not stored
    if truncated_from is not None:
        validity: Validity = Validity.TRUNCATED
        reason: str | None = (f"message of {truncated_from} octets exceeds the receiver limit; "
                              f"the first {len(raw)} octets are kept")
        fields = _NO_FIELDS
    else:
        validity, reason, fields = _template.parse_msg_cached(raw[header.msg_offset:])
    problem = header.problem
    if problem is not None or (header.rfc5424 and header.msgid not in ACCEPTED_MSGIDS):
        notes = [problem] if problem else []
        if header.rfc5424 and header.msgid not in ACCEPTED_MSGIDS:
            notes.append(f"MSGID {str(header.msgid)[:32]!r} is not DICOM+RFC3881 or "
                         "IHE+RFC-3881")
        reason = "; ".join([reason, *notes] if reason else notes)
    # positional: the field order of ParsedMessage, FIELD_NAMES last
    return _new_parsed(ParsedMessage, (raw, received_at, transport, peer, validity, reason,
                                       header.hostname, header.app_name, header.msgid, *fields))


_new_parsed = tuple.__new__

# at the end: .template imports this module's names
import radguard.audit.repository.template as _template  # noqa: E402

if ParsedMessage._fields[9:] != FIELD_NAMES:  # pragma: no cover - a definition error
    raise AssertionError("FIELD_NAMES must follow ParsedMessage's field order")
