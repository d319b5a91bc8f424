"""The DICOM audit message (PS3.15 A.5.1) as immutable, typed values, and its XML form.

Names follow the schema: :class:`AuditMessage` holds one :class:`EventIdentification`, one or more
:class:`ActiveParticipant`, one :class:`AuditSource` (AuditSourceIdentification) and any number of
:class:`ParticipantObject` (ParticipantObjectIdentification). :meth:`AuditMessage.to_xml` writes the
elements and attributes exactly as named in the PS3.15 2023b RELAX NG schema (A.5.1.1), in the order
it requires; :meth:`AuditMessage.from_xml` reads them back from untrusted bytes (see :mod:`._xml`).

Where the schema makes an attribute optional that RadGuard always writes (EventActionCode,
ParticipantObjectTypeCode, ParticipantObjectTypeCodeRole), the model types it ``X | None`` so that
messages from other vendors can be read without loss; RadGuard's builders always fill it.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from radguard.audit._plainxml import write as write_plain
from radguard.audit._xml import parse
from radguard.errors import AuditSchemaError

__all__ = [
    "ActionCode",
    "ActiveParticipant",
    "AuditMessage",
    "AuditSource",
    "CodedValue",
    "EventIdentification",
    "Outcome",
    "ParticipantObject",
    "SOPClass",
]


class ActionCode(enum.StrEnum):
    """EventActionCode (PS3.15 A.5.1): what was done to the participant objects."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(enum.IntEnum):
    """EventOutcomeIndicator (PS3.15 A.5.1)."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


@dataclass(frozen=True, slots=True)
class CodedValue:
    """A coded value (the schema's CodedValueType): ``csd-code``, ``codeSystemName``,
    ``displayName`` and ``originalText``.

    The schema requires ``originalText`` (it corresponds to the DICOM Code Meaning), so when
    ``original_text`` is not given it takes the value of ``display``.
    """

    code: str
    scheme: str
    display: str
    original_text: str | None = None

    def __post_init__(self) -> None:
        if self.original_text is None:
            object.__setattr__(self, "original_text", self.display)


@dataclass(frozen=True, slots=True)
class EventIdentification:
    """EventIdentification (PS3.15 A.5.1): what happened, when, and with what outcome."""

    event_id: CodedValue
    action: ActionCode | None
    outcome: Outcome
    when: datetime
    type_codes: tuple[CodedValue, ...] = ()
    outcome_description: str | None = None


@dataclass(frozen=True, slots=True)
class ActiveParticipant:
    """ActiveParticipant (PS3.15 A.5.1): a user, process or medium taking part in the event.

    ``network_access_point_type`` is 1 machine name, 2 IP address, 3 telephone, 4 e-mail, 5 URI.
    ``media_type`` fills MediaIdentifier/MediaType (CID 405) for media participants.
    """

    user_id: str
    user_is_requestor: bool
    alternative_user_id: str | None = None
    user_name: str | None = None
    network_access_point_id: str | None = None
    network_access_point_type: int | None = None
    role_codes: tuple[CodedValue, ...] = ()
    media_type: CodedValue | None = None


@dataclass(frozen=True, slots=True)
class AuditSource:
    """AuditSourceIdentification (PS3.15 A.5.1): who reports the event.

    ``type_codes`` holds AuditSourceTypeCode values: a bare code ``"1"``..``"9"`` (4 = application
    server process) or a :class:`CodedValue` from another terminology.
    """

    source_id: str
    site_id: str | None = None
    type_codes: tuple[str | CodedValue, ...] = ("4",)


@dataclass(frozen=True, slots=True)
class SOPClass:
    """ParticipantObjectDescription/SOPClass: a SOP Class UID and how many instances of it."""

    uid: str | None
    number_of_instances: int
    instances: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParticipantObject:
    """ParticipantObjectIdentification (PS3.15 A.5.1): a patient, study, query, log... concerned.

    ``type_code`` 1 person, 2 system object, 3 organisation, 4 other; ``role`` 1..26 (1 patient,
    3 report, 13 security resource, 24 query...); ``life_cycle`` 1..15 (2 import, 10 export...).
    The 2023b schema requires exactly one of ``name`` (ParticipantObjectName) and ``query``
    (ParticipantObjectQuery, written base64). ``details`` are ParticipantObjectDetail type/value
    pairs (values written base64). The description fields (``sop_classes``, ``studies``
    [ParticipantObjectContainsStudy/StudyIDs], ``accessions``, ``mpps``, ``encrypted``,
    ``anonymized``) form one ParticipantObjectDescription, written when any is set.
    """

    object_id: str
    type_code: int | None
    role: int | None
    id_type: CodedValue
    life_cycle: int | None = None
    name: str | None = None
    query: bytes | None = None
    details: tuple[tuple[str, bytes], ...] = ()
    sensitivity: str | None = None
    sop_classes: tuple[SOPClass, ...] = ()
    studies: tuple[str, ...] = ()
    accessions: tuple[str, ...] = ()
    mpps: tuple[str, ...] = ()
    encrypted: bool | None = None
    anonymized: bool | None = None

    @property
    def has_description(self) -> bool:
        return bool(self.sop_classes or self.studies or self.accessions or self.mpps) or (
            self.encrypted is not None or self.anonymized is not None
        )


@dataclass(frozen=True, slots=True)
class AuditMessage:
    """One PS3.15 A.5.1 AuditMessage.

    :meth:`to_xml` does not validate; :func:`radguard.audit.schema.validate` does, and
    :class:`radguard.audit.AuditEmitter` calls it before recording anything.
    """

    event: EventIdentification
    participants: tuple[ActiveParticipant, ...]
    source: AuditSource
    objects: tuple[ParticipantObject, ...] = field(default=())

    def to_xml(self) -> bytes:
        """The message as UTF-8 XML bytes (with an XML declaration, no BOM).

        Messages whose text is all plain printable ASCII (nearly all: UIDs, IDs, codes, names of
        stations and files) are written by :func:`._plainxml.write`, which builds the text with
        ``str.join`` and is about five times cheaper than an lxml tree; any other message is
        written by lxml (:meth:`to_xml_lxml`). Both give the same bytes (tested).
        """
        xml = write_plain(self)
        return xml if xml is not None else self.to_xml_lxml()

    def to_xml_lxml(self) -> bytes:
        """:meth:`to_xml` through an lxml tree: escapes any text, refuses text that XML cannot hold
        (``ValueError``)."""
        root = etree.Element("AuditMessage")
        _write_event(etree.SubElement(root, "EventIdentification"), self.event)
        for participant in self.participants:
            _write_participant(etree.SubElement(root, "ActiveParticipant"), participant)
        _write_source(etree.SubElement(root, "AuditSourceIdentification"), self.source)
        for obj in self.objects:
            _write_object(etree.SubElement(root, "ParticipantObjectIdentification"), obj)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    @classmethod
    def from_xml(cls, data: bytes) -> AuditMessage:
        """Read a message from untrusted bytes.

        The parse is hardened (no DTD, no entities, no network, bounded size). This reads the
        structure the model needs; call :func:`radguard.audit.schema.validate` for full
        conformance. Several ParticipantObjectDescription elements of one object are merged.

        Raises
        ------
        AuditSchemaError
            Not well-formed, hostile (DOCTYPE/entities), not an AuditMessage, or a required
            element or attribute is missing or malformed.
        """
        root = parse(data)
        if root.tag != "AuditMessage":
            raise AuditSchemaError(f"root element is {root.tag!r}, expected 'AuditMessage'")
        try:
            return cls(
                event=_read_event(_one(root, "EventIdentification")),
                participants=tuple(
                    _read_participant(e) for e in root.iterfind("ActiveParticipant")
                ),
                source=_read_source(_one(root, "AuditSourceIdentification")),
                objects=tuple(
                    _read_object(e) for e in root.iterfind("ParticipantObjectIdentification")
                ),
            )
        except (KeyError, ValueError, binascii.Error) as exc:
            raise AuditSchemaError(f"audit message cannot be read: {exc!r}") from exc


# -- writing -------------------------------------------------------------------------------------


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _set(elem: etree._Element, name: str, value: str | int | None) -> None:
    if value is not None:
        elem.set(name, str(value))


def _write_coded(elem: etree._Element, code: CodedValue) -> None:
    elem.set("csd-code", code.code)
    elem.set("codeSystemName", code.scheme)
    elem.set("displayName", code.display)
    elem.set("originalText", code.original_text or code.display)


def _write_event(elem: etree._Element, event: EventIdentification) -> None:
    _set(elem, "EventActionCode", event.action.value if event.action is not None else None)
    elem.set("EventDateTime", event.when.isoformat())
    elem.set("EventOutcomeIndicator", str(int(event.outcome)))
    _write_coded(etree.SubElement(elem, "EventID"), event.event_id)
    for code in event.type_codes:
        _write_coded(etree.SubElement(elem, "EventTypeCode"), code)
    if event.outcome_description is not None:
        etree.SubElement(elem, "EventOutcomeDescription").text = event.outcome_description


def _write_participant(elem: etree._Element, p: ActiveParticipant) -> None:
    elem.set("UserID", p.user_id)
    _set(elem, "AlternativeUserID", p.alternative_user_id)
    _set(elem, "UserName", p.user_name)
    elem.set("UserIsRequestor", _bool(p.user_is_requestor))
    _set(elem, "NetworkAccessPointID", p.network_access_point_id)
    _set(elem, "NetworkAccessPointTypeCode", p.network_access_point_type)
    for code in p.role_codes:
        _write_coded(etree.SubElement(elem, "RoleIDCode"), code)
    if p.media_type is not None:
        media = etree.SubElement(elem, "MediaIdentifier")
        _write_coded(etree.SubElement(media, "MediaType"), p.media_type)


def _write_source(elem: etree._Element, source: AuditSource) -> None:
    _set(elem, "AuditEnterpriseSiteID", source.site_id)
    elem.set("AuditSourceID", source.source_id)
    for code in source.type_codes:
        sub = etree.SubElement(elem, "AuditSourceTypeCode")
        if isinstance(code, CodedValue):
            _write_coded(sub, code)
        else:
            sub.set("csd-code", code)


def _write_object(elem: etree._Element, obj: ParticipantObject) -> None:
    elem.set("ParticipantObjectID", obj.object_id)
    _set(elem, "ParticipantObjectTypeCode", obj.type_code)
    _set(elem, "ParticipantObjectTypeCodeRole", obj.role)
    _set(elem, "ParticipantObjectDataLifeCycle", obj.life_cycle)
    _set(elem, "ParticipantObjectSensitivity", obj.sensitivity)
    _write_coded(etree.SubElement(elem, "ParticipantObjectIDTypeCode"), obj.id_type)
    if obj.name is not None:
        etree.SubElement(elem, "ParticipantObjectName").text = obj.name
    if obj.query is not None:
        etree.SubElement(elem, "ParticipantObjectQuery").text = _b64(obj.query)
    for kind, value in obj.details:
        detail = etree.SubElement(elem, "ParticipantObjectDetail")
        detail.set("type", kind)
        detail.set("value", _b64(value))
    if obj.has_description:
        _write_description(etree.SubElement(elem, "ParticipantObjectDescription"), obj)


def _write_description(desc: etree._Element, obj: ParticipantObject) -> None:
    for uid in obj.mpps:
        etree.SubElement(desc, "MPPS").set("UID", uid)
    for number in obj.accessions:
        etree.SubElement(desc, "Accession").set("Number", number)
    for sop in obj.sop_classes:
        sop_elem = etree.SubElement(desc, "SOPClass")
        _set(sop_elem, "UID", sop.uid)
        sop_elem.set("NumberOfInstances", str(sop.number_of_instances))
        for uid in sop.instances:
            etree.SubElement(sop_elem, "Instance").set("UID", uid)
    if obj.studies:
        contains = etree.SubElement(desc, "ParticipantObjectContainsStudy")
        for uid in obj.studies:
            etree.SubElement(contains, "StudyIDs").set("UID", uid)
    if obj.encrypted is not None:
        etree.SubElement(desc, "Encrypted").text = _bool(obj.encrypted)
    if obj.anonymized is not None:
        etree.SubElement(desc, "Anonymized").text = _bool(obj.anonymized)


# -- reading -------------------------------------------------------------------------------------


def _one(parent: etree._Element, tag: str) -> etree._Element:
    found = parent.find(tag)
    if found is None:
        raise AuditSchemaError(f"<{parent.tag}> has no <{tag}>")
    return found


def _attr(elem: etree._Element, name: str) -> str:
    value = elem.get(name)
    if value is None:
        raise AuditSchemaError(f"<{elem.tag}> lacks the required attribute {name!r}")
    return value


def _opt_int(elem: etree._Element, name: str) -> int | None:
    value = elem.get(name)
    return None if value is None else int(value)


def _parse_bool(text: str | None) -> bool:
    value = (text or "").strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"not an xsd:boolean: {value!r}")


def _read_coded(elem: etree._Element) -> CodedValue:
    original = elem.get("originalText")
    return CodedValue(
        code=_attr(elem, "csd-code"),
        scheme=_attr(elem, "codeSystemName"),
        display=elem.get("displayName") or original or "",
        original_text=original,
    )


def _read_event(elem: etree._Element) -> EventIdentification:
    action = elem.get("EventActionCode")
    description = elem.find("EventOutcomeDescription")
    return EventIdentification(
        event_id=_read_coded(_one(elem, "EventID")),
        action=ActionCode(action) if action is not None else None,
        outcome=Outcome(int(_attr(elem, "EventOutcomeIndicator"))),
        when=datetime.fromisoformat(_attr(elem, "EventDateTime")),
        type_codes=tuple(_read_coded(e) for e in elem.iterfind("EventTypeCode")),
        outcome_description=(description.text or "") if description is not None else None,
    )


def _read_participant(elem: etree._Element) -> ActiveParticipant:
    media = elem.find("MediaIdentifier/MediaType")
    return ActiveParticipant(
        user_id=_attr(elem, "UserID"),
        user_is_requestor=_parse_bool(_attr(elem, "UserIsRequestor")),
        alternative_user_id=elem.get("AlternativeUserID"),
        user_name=elem.get("UserName"),
        network_access_point_id=elem.get("NetworkAccessPointID"),
        network_access_point_type=_opt_int(elem, "NetworkAccessPointTypeCode"),
        role_codes=tuple(_read_coded(e) for e in elem.iterfind("RoleIDCode")),
        media_type=_read_coded(media) if media is not None else None,
    )


def _read_source(elem: etree._Element) -> AuditSource:
    codes: list[str | CodedValue] = []
    for sub in elem.iterfind("AuditSourceTypeCode"):
        codes.append(_read_coded(sub) if sub.get("codeSystemName") else _attr(sub, "csd-code"))
    return AuditSource(
        source_id=_attr(elem, "AuditSourceID"),
        site_id=elem.get("AuditEnterpriseSiteID"),
        type_codes=tuple(codes),
    )


def _read_object(elem: etree._Element) -> ParticipantObject:
    name = elem.find("ParticipantObjectName")
    query = elem.find("ParticipantObjectQuery")
    descs = list(elem.iterfind("ParticipantObjectDescription"))
    encrypted = [e.text for d in descs for e in d.iterfind("Encrypted")]
    anonymized = [e.text for d in descs for e in d.iterfind("Anonymized")]
    return ParticipantObject(
        object_id=_attr(elem, "ParticipantObjectID"),
        type_code=_opt_int(elem, "ParticipantObjectTypeCode"),
        role=_opt_int(elem, "ParticipantObjectTypeCodeRole"),
        id_type=_read_coded(_one(elem, "ParticipantObjectIDTypeCode")),
        life_cycle=_opt_int(elem, "ParticipantObjectDataLifeCycle"),
        name=(name.text or "") if name is not None else None,
        query=base64.b64decode(query.text or "", validate=True) if query is not None else None,
        details=tuple(
            (_attr(d, "type"), base64.b64decode(_attr(d, "value"), validate=True))
            for d in elem.iterfind("ParticipantObjectDetail")
        ),
        sensitivity=elem.get("ParticipantObjectSensitivity"),
        sop_classes=tuple(
            SOPClass(
                uid=s.get("UID"),
                number_of_instances=int(_attr(s, "NumberOfInstances")),
                instances=tuple(_attr(i, "UID") for i in s.iterfind("Instance")),
            )
            for d in descs
            for s in d.iterfind("SOPClass")
        ),
        studies=tuple(
            _attr(s, "UID")
            for d in descs
            for s in d.iterfind("ParticipantObjectContainsStudy/StudyIDs")
        ),
        accessions=tuple(_attr(a, "Number") for d in descs for a in d.iterfind("Accession")),
        mpps=tuple(_attr(m, "UID") for d in descs for m in d.iterfind("MPPS")),
        encrypted=_parse_bool(encrypted[0]) if encrypted else None,
        anonymized=_parse_bool(anonymized[0]) if anonymized else None,
    )
