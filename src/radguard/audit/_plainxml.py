"""A fast writer for audit messages whose text needs no escaping (PS3.15 A.5.1 XML).

:meth:`radguard.audit.message.AuditMessage.to_xml` builds an lxml tree: about 1,500 calls into lxml
for a Data Import message listing 32 studies, most of the cost of emitting it (a media scan emits
one such message per 32 studies). :func:`write` produces the same bytes with ``str.join`` when
every string of the message is plain printable ASCII without ``& < > "`` (UIDs, IDs, codes,
station and file names nearly always are), and returns ``None`` otherwise, so that lxml writes the
message, with its escaping and its refusal of characters XML cannot hold. The element and
attribute order is the one of the lxml writer, which follows the PS3.15 2023b RELAX NG schema;
``tests/audit/test_audit_plainxml.py`` checks byte equality with it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from radguard.audit.message import (
        ActiveParticipant,
        AuditMessage,
        AuditSource,
        CodedValue,
        EventIdentification,
        ParticipantObject,
    )

__all__ = ["write"]

_HEAD = "<?xml version='1.0' encoding='UTF-8'?>\n"
_SPECIAL = ("&", "<", ">", '"')


def _plain(text: str) -> bool:
    """Written by libxml2 exactly as given: printable ASCII without the characters it escapes."""
    return text.isascii() and text.isprintable() and not any(c in text for c in _SPECIAL)


def write(message: AuditMessage) -> bytes | None:
    """The XML of ``message`` as :meth:`AuditMessage.to_xml_lxml` writes it, or ``None`` when a
    string of it is not plain (see :func:`_plain`)."""
    out: list[str] = [_HEAD, "<AuditMessage>"]
    texts: list[str] = []
    _event(out, texts, message.event)
    for participant in message.participants:
        _participant(out, texts, participant)
    _source(out, texts, message.source)
    for obj in message.objects:
        _object(out, texts, obj)
    out.append("</AuditMessage>")
    # One check over every string at once: a separator that is itself plain keeps the test exact.
    if not _plain(" ".join(texts)):
        return None
    return "".join(out).encode("ascii")


def _coded(tag: str, code: CodedValue, texts: list[str]) -> str:
    original = code.original_text or code.display
    texts += (code.code, code.scheme, code.display, original)
    return (f'<{tag} csd-code="{code.code}" codeSystemName="{code.scheme}" '
            f'displayName="{code.display}" originalText="{original}"/>')


def _event(out: list[str], texts: list[str], event: EventIdentification) -> None:
    when = event.when.isoformat()
    texts.append(when)
    out.append("<EventIdentification")
    if event.action is not None:
        texts.append(event.action.value)
        out.append(f' EventActionCode="{event.action.value}"')
    out.append(f' EventDateTime="{when}" EventOutcomeIndicator="{int(event.outcome)}">')
    out.append(_coded("EventID", event.event_id, texts))
    for code in event.type_codes:
        out.append(_coded("EventTypeCode", code, texts))
    if event.outcome_description is not None:
        texts.append(event.outcome_description)
        out.append(f"<EventOutcomeDescription>{event.outcome_description}"
                   "</EventOutcomeDescription>")
    out.append("</EventIdentification>")


def _participant(out: list[str], texts: list[str], p: ActiveParticipant) -> None:
    texts.append(p.user_id)
    out.append(f'<ActiveParticipant UserID="{p.user_id}"')
    if p.alternative_user_id is not None:
        texts.append(p.alternative_user_id)
        out.append(f' AlternativeUserID="{p.alternative_user_id}"')
    if p.user_name is not None:
        texts.append(p.user_name)
        out.append(f' UserName="{p.user_name}"')
    out.append(' UserIsRequestor="true"' if p.user_is_requestor else ' UserIsRequestor="false"')
    if p.network_access_point_id is not None:
        texts.append(p.network_access_point_id)
        out.append(f' NetworkAccessPointID="{p.network_access_point_id}"')
    if p.network_access_point_type is not None:
        out.append(f' NetworkAccessPointTypeCode="{_num(p.network_access_point_type, texts)}"')
    if not p.role_codes and p.media_type is None:
        out.append("/>")
        return
    out.append(">")
    for code in p.role_codes:
        out.append(_coded("RoleIDCode", code, texts))
    if p.media_type is not None:
        out.append("<MediaIdentifier>")
        out.append(_coded("MediaType", p.media_type, texts))
        out.append("</MediaIdentifier>")
    out.append("</ActiveParticipant>")


def _source(out: list[str], texts: list[str], source: AuditSource) -> None:
    out.append("<AuditSourceIdentification")
    if source.site_id is not None:
        texts.append(source.site_id)
        out.append(f' AuditEnterpriseSiteID="{source.site_id}"')
    texts.append(source.source_id)
    out.append(f' AuditSourceID="{source.source_id}"')
    if not source.type_codes:
        out.append("/>")
        return
    out.append(">")
    for code in source.type_codes:
        if isinstance(code, str):
            texts.append(code)
            out.append(f'<AuditSourceTypeCode csd-code="{code}"/>')
        else:
            out.append(_coded("AuditSourceTypeCode", code, texts))
    out.append("</AuditSourceIdentification>")


def _object(out: list[str], texts: list[str], obj: ParticipantObject) -> None:
    texts.append(obj.object_id)
    out.append(f'<ParticipantObjectIdentification ParticipantObjectID="{obj.object_id}"')
    if obj.type_code is not None:
        out.append(f' ParticipantObjectTypeCode="{_num(obj.type_code, texts)}"')
    if obj.role is not None:
        out.append(f' ParticipantObjectTypeCodeRole="{_num(obj.role, texts)}"')
    if obj.life_cycle is not None:
        out.append(f' ParticipantObjectDataLifeCycle="{_num(obj.life_cycle, texts)}"')
    if obj.sensitivity is not None:
        texts.append(obj.sensitivity)
        out.append(f' ParticipantObjectSensitivity="{obj.sensitivity}"')
    out.append(">")
    out.append(_coded("ParticipantObjectIDTypeCode", obj.id_type, texts))
    if obj.name is not None:
        texts.append(obj.name)
        out.append(f"<ParticipantObjectName>{obj.name}</ParticipantObjectName>")
    if obj.query is not None:
        out.append(f"<ParticipantObjectQuery>{_b64(obj.query)}</ParticipantObjectQuery>")
    for kind, value in obj.details:
        texts.append(kind)
        out.append(f'<ParticipantObjectDetail type="{kind}" value="{_b64(value)}"/>')
    if obj.has_description:
        _description(out, texts, obj)
    out.append("</ParticipantObjectIdentification>")


def _description(out: list[str], texts: list[str], obj: ParticipantObject) -> None:
    out.append("<ParticipantObjectDescription>")
    for uid in obj.mpps:
        texts.append(uid)
        out.append(f'<MPPS UID="{uid}"/>')
    for number in obj.accessions:
        texts.append(number)
        out.append(f'<Accession Number="{number}"/>')
    for sop in obj.sop_classes:
        out.append("<SOPClass")
        if sop.uid is not None:
            texts.append(sop.uid)
            out.append(f' UID="{sop.uid}"')
        out.append(f' NumberOfInstances="{_num(sop.number_of_instances, texts)}"')
        if sop.instances:
            texts += sop.instances
            out.append(">")
            out.extend(f'<Instance UID="{uid}"/>' for uid in sop.instances)
            out.append("</SOPClass>")
        else:
            out.append("/>")
    if obj.studies:
        texts += obj.studies
        out.append("<ParticipantObjectContainsStudy>")
        out.extend(f'<StudyIDs UID="{uid}"/>' for uid in obj.studies)
        out.append("</ParticipantObjectContainsStudy>")
    if obj.encrypted is not None:
        out.append(f"<Encrypted>{'true' if obj.encrypted else 'false'}</Encrypted>")
    if obj.anonymized is not None:
        out.append(f"<Anonymized>{'true' if obj.anonymized else 'false'}</Anonymized>")
    out.append("</ParticipantObjectDescription>")


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _num(value: object, texts: list[str]) -> str:
    """``str(value)`` as lxml's writer sets it (an int nearly always; checked like any text)."""
    text = str(value)
    texts.append(text)
    return text
