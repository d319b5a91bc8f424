"""Sample audit messages for every PS3.15 A.5.3 message type, built from the standard's
definitions with RadGuard's builders (and the message model for the types without a builder),
plus hostile and malformed ones. Nothing is downloaded."""

from __future__ import annotations

from datetime import UTC, datetime

from radguard.audit import builders, codes
from radguard.audit.message import (
    ActionCode,
    ActiveParticipant,
    AuditMessage,
    AuditSource,
    EventIdentification,
    Outcome,
    ParticipantObject,
)
from radguard.audit.syslog import frame

STUDY = "1.2.826.0.1.3680043.8.498.1"
WHEN = datetime(2025, 11, 28, 10, 0, tzinfo=UTC)


def _record(event: str, action: ActionCode, obj: ParticipantObject) -> AuditMessage:
    """Order / Patient / Procedure Record (A.5.3.13-15) and Begin Transferring (A.5.3.3)."""
    return AuditMessage(
        event=EventIdentification(event_id=codes.event_id(event), action=action,
                                  outcome=Outcome.SUCCESS, when=WHEN),
        participants=(ActiveParticipant("alice", True, network_access_point_id="ws1",
                                        network_access_point_type=1),
                      ActiveParticipant("RIS", False, network_access_point_id="ris",
                                        network_access_point_type=1)),
        source=AuditSource("RIS"), objects=(obj,))


def _patient(pid: str = "P-1") -> ParticipantObject:
    return ParticipantObject(pid, 1, 1, codes.PATIENT_NUMBER, name=pid)


def every_a53_message() -> dict[str, AuditMessage]:
    """One message per PS3.15 A.5.3 section (A.5.3.1 to A.5.3.15)."""
    s = {"station": "PACS1", "when": WHEN}
    begin = _record("110102", ActionCode.EXECUTE, ParticipantObject(
        STUDY, 2, 3, codes.STUDY_INSTANCE_UID, name=STUDY))
    return {
        "A.5.3.1 Application Activity": builders.application_activity("start", **s),
        "A.5.3.2 Audit Log Used": builders.audit_log_used(user="sec", log_uri="file:///a", **s),
        "A.5.3.3 Begin Transferring": begin,
        "A.5.3.4 Data Export": builders.data_export(user="bob", media_id="CD1",
                                                   patient_ids=["P-1"], study_uids=[STUDY],
                                                   encrypted=True, **s),
        "A.5.3.5 Data Import": builders.data_import(user="bob", media_id="CD2",
                                                   patient_ids=["P-1"], study_uids=[STUDY], **s),
        "A.5.3.6 Instances Accessed": builders.instances_accessed(
            user="bob", patient_ids=["P-1"], study_uids=[STUDY], **s),
        "A.5.3.7 Instances Transferred": builders.instances_transferred(
            source="PACS1", destination="WS1", patient_ids=["P-1"], study_uids=[STUDY], **s),
        "A.5.3.8 Study Deleted": builders.study_deleted(user="bob", patient_ids=["P-1"],
                                                       study_uids=[STUDY], **s),
        "A.5.3.9 Network Entry": builders.network_entry("attach", **s),
        "A.5.3.10 Query": builders.query(source="WS1", destination="PACS1",
                                         sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1",
                                         query_bytes=b"(0010,0020)=P-1*", **s),
        "A.5.3.11 Security Alert": builders.security_alert("110126", subject="tls://10.0.0.9",
                                                           **s),
        "A.5.3.12 User Authentication": builders.user_authentication("login", user="bob", **s),
        "A.5.3.13 Order Record": _record("110109", ActionCode.CREATE, _patient()),
        "A.5.3.14 Patient Record": _record("110110", ActionCode.UPDATE, _patient()),
        "A.5.3.15 Procedure Record": _record("110111", ActionCode.READ, _patient()),
    }


def one_line(message: AuditMessage) -> bytes:
    """The XML without declaration on one line (line-oriented senders cut at LF)."""
    xml = message.to_xml()
    return xml[xml.index(b"<AuditMessage"):].replace(b"\n", b" ")


def syslog(message: AuditMessage | bytes, msgid: str = "DICOM+RFC3881",
           host: str = "pacs1") -> bytes:
    payload = message if isinstance(message, bytes) else message.to_xml()
    return frame(payload, hostname=host, msgid=msgid)


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1
                                                            else b"&lol;") * 10)
                             for i in range(1, 10))
                  + b"]><AuditMessage>&lol9;</AuditMessage>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b"<AuditMessage><EventIdentification>&xxe;</EventIdentification></AuditMessage>")
MALFORMED = b"<AuditMessage><EventIdentification></AuditMessage>"


def rfc3881_form(message: AuditMessage) -> bytes:
    """The same message in the older RFC 3881 spelling (``code``, no ``originalText``)."""
    xml = message.to_xml().replace(b"csd-code=", b"code=")
    import re

    return re.sub(rb' originalText="[^"]*"', b"", xml)


def big_message(instances: int = 900) -> AuditMessage:
    """An Instances Transferred message listing many instances (well over 32,768 octets)."""
    from radguard.audit.message import SOPClass

    base = builders.instances_transferred(station="PACS1", source="PACS1", destination="WS1",
                                          patient_ids=["P-1"], study_uids=[STUDY], when=WHEN)
    study = base.objects[1]
    sop = SOPClass("1.2.840.10008.5.1.4.1.1.2", instances,
                   tuple(f"{STUDY}.{i}" for i in range(instances)))
    objects = (base.objects[0], ParticipantObject(
        study.object_id, study.type_code, study.role, study.id_type, name=study.name,
        sop_classes=(sop,)))
    return AuditMessage(base.event, base.participants, base.source, objects)
