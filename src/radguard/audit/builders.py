"""Builders of the PS3.15 A.5.3 audit messages RadGuard emits, one function per message.

Arguments are plain values (user and station names, patient IDs, study UIDs, outcome, description);
each function returns an :class:`AuditMessage` ready for :meth:`AuditEmitter.emit`. Conventions
shared by all of them:

- the AuditSource is the station (``AuditSourceID``) and site (``AuditEnterpriseSiteID``), type 4;
- RadGuard itself appears as an application participant (``UserID`` = ``application``,
  ``NetworkAccessPointID`` = the station, type 1 machine name);
- a patient is ParticipantObjectTypeCode 1, role 1, ID type RFC 3881 code 2 (Patient Number); a
  study is type 2, role 3, ID type DCM 110180 (Study Instance UID);
- the 2023b schema requires ParticipantObjectName (or a query) on every object, so a patient's name
  is given in ``patient_names`` or else its ID is repeated, and a study's name is its UID;
- ``when`` defaults to now, in UTC.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from radguard.audit import codes
from radguard.audit.message import (
    ActionCode,
    ActiveParticipant,
    AuditMessage,
    AuditSource,
    CodedValue,
    EventIdentification,
    Outcome,
    ParticipantObject,
    SOPClass,
)

__all__ = [
    "application_activity",
    "audit_log_used",
    "data_export",
    "data_import",
    "instances_accessed",
    "instances_transferred",
    "network_entry",
    "query",
    "security_alert",
    "study_deleted",
    "user_authentication",
]

APPLICATION = "radguard"
_IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"


# -- shared pieces -------------------------------------------------------------------------------


def _message(
    event_id: CodedValue,
    action: ActionCode,
    outcome: Outcome,
    description: str | None,
    when: datetime | None,
    participants: Sequence[ActiveParticipant],
    station: str,
    site: str | None,
    objects: Sequence[ParticipantObject] = (),
    type_codes: Sequence[CodedValue] = (),
) -> AuditMessage:
    return AuditMessage(
        event=EventIdentification(
            event_id=event_id,
            action=action,
            outcome=outcome,
            when=when or datetime.now(UTC),
            type_codes=tuple(type_codes),
            outcome_description=description,
        ),
        participants=tuple(participants),
        source=AuditSource(source_id=station, site_id=site),
        objects=tuple(objects),
    )


def _person(user: str, *, requestor: bool = True) -> ActiveParticipant:
    return ActiveParticipant(user_id=user, user_is_requestor=requestor)


def _process(
    station: str,
    role: CodedValue | None = None,
    *,
    requestor: bool = False,
    application: str = APPLICATION,
) -> ActiveParticipant:
    return ActiveParticipant(
        user_id=application,
        user_is_requestor=requestor,
        network_access_point_id=station,
        network_access_point_type=1,
        role_codes=(role,) if role is not None else (),
    )


def _node(name: str, host: str | None, role: CodedValue, *, requestor: bool) -> ActiveParticipant:
    return ActiveParticipant(
        user_id=name,
        user_is_requestor=requestor,
        network_access_point_id=host,
        network_access_point_type=_access_point_type(host) if host else None,
        role_codes=(role,),
    )


def _access_point_type(host: str) -> int:
    """2 for an IPv4/IPv6 literal, 1 for a machine name (PS3.15 A.5.1)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return 1
    return 2


def _medium(media_id: str, media_type: str, role: CodedValue) -> ActiveParticipant:
    return ActiveParticipant(
        user_id=media_id,
        user_is_requestor=False,
        role_codes=(role,),
        media_type=codes.media_type(media_type),
    )


def _patients(
    patient_ids: Sequence[str],
    names: Mapping[str, str] | None,
    life_cycle: int | None = None,
) -> list[ParticipantObject]:
    names = names or {}
    return [
        ParticipantObject(
            object_id=pid,
            type_code=1,
            role=1,
            id_type=codes.PATIENT_NUMBER,
            life_cycle=life_cycle,
            name=names.get(pid, pid),
        )
        for pid in patient_ids
    ]


def _studies(
    study_uids: Sequence[str],
    life_cycle: int | None = None,
    *,
    sop_classes: Mapping[str, Mapping[str, int]] | None = None,
    encrypted: bool | None = None,
    anonymized: bool | None = None,
) -> list[ParticipantObject]:
    per_study = sop_classes or {}
    # SOPClass values are frozen: one per (class, count) serves every study that has it (a medium
    # of 20,000 single-image studies makes 20,000 equal ones otherwise).
    made: dict[tuple[str, int], SOPClass] = {}

    def sop(key: tuple[str, int]) -> SOPClass:
        value = made.get(key)
        if value is None:
            value = made[key] = SOPClass(uid=key[0], number_of_instances=key[1])
        return value

    return [
        ParticipantObject(
            object_id=uid,
            type_code=2,
            role=3,
            id_type=codes.STUDY_INSTANCE_UID,
            life_cycle=life_cycle,
            name=uid,
            sop_classes=tuple(map(sop, classes.items())) if (classes := per_study.get(uid)) else (),
            encrypted=encrypted,
            anonymized=anonymized,
        )
        for uid in study_uids
    ]


# -- the messages --------------------------------------------------------------------------------


def application_activity(
    phase: Literal["start", "stop"],
    *,
    station: str,
    site: str | None = None,
    application: str = APPLICATION,
    launcher: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Application Activity (PS3.15 A.5.3.1): RadGuard started or stopped.

    EventID 110100, action E, EventTypeCode 110120 (start) or 110121 (stop); the application has
    role 110150, the person or process that launched it (``launcher``) role 110151 as requestor.
    """
    participants = [_process(station, codes.ROLE_APPLICATION, application=application)]
    if launcher is not None:
        participants.append(
            ActiveParticipant(launcher, True, role_codes=(codes.ROLE_APPLICATION_LAUNCHER,))
        )
    kind = codes.APPLICATION_START if phase == "start" else codes.APPLICATION_STOP
    return _message(codes.APPLICATION_ACTIVITY, ActionCode.EXECUTE, outcome, description, when,
                    participants, station, site, type_codes=(kind,))


def audit_log_used(
    *,
    user: str,
    station: str,
    log_uri: str,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Audit Log Used (PS3.15 A.5.3.2): someone read the audit log at ``log_uri``.

    EventID 110101, action R; the log is a system object (type 2, role 13 Security Resource, ID type
    RFC 3881 code 12 URI) named "Security Audit Log".
    """
    log = ParticipantObject(object_id=log_uri, type_code=2, role=13, id_type=codes.URI,
                            name="Security Audit Log")
    return _message(codes.AUDIT_LOG_USED, ActionCode.READ, outcome, description, when,
                    [_person(user), _process(station)], station, site, [log])


def data_export(
    *,
    user: str,
    station: str,
    media_id: str,
    patient_ids: Sequence[str],
    study_uids: Sequence[str],
    encrypted: bool,
    anonymized: bool | None = None,
    media_type: str = "110032",
    patient_names: Mapping[str, str] | None = None,
    sop_classes: Mapping[str, Mapping[str, int]] | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Data Export (PS3.15 A.5.3.4): studies written to removable media (CD, USB...).

    EventID 110106, action R. The medium (``media_id``: volume label or URI; ``media_type`` a
    CID 405 code, 110032 CD by default, 110030 USB) has role 110154 Destination Media; RadGuard has
    role 110153.
    Studies carry life cycle 10 (Export), the Encrypted flag and, if given, the Anonymized flag;
    ``sop_classes`` maps a study UID to ``{SOP Class UID: number of instances}``.
    """
    participants = [
        _person(user),
        _process(station, codes.ROLE_SOURCE),
        _medium(media_id, media_type, codes.ROLE_DESTINATION_MEDIA),
    ]
    objects = _patients(patient_ids, patient_names) + _studies(
        study_uids, 10, sop_classes=sop_classes, encrypted=encrypted, anonymized=anonymized
    )
    return _message(codes.EXPORT, ActionCode.READ, outcome, description, when,
                    participants, station, site, objects)


def data_import(
    *,
    user: str,
    station: str,
    media_id: str,
    patient_ids: Sequence[str],
    study_uids: Sequence[str],
    media_type: str = "110032",
    patient_names: Mapping[str, str] | None = None,
    sop_classes: Mapping[str, Mapping[str, int]] | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Data Import (PS3.15 A.5.3.5): studies read from removable media into the system.

    EventID 110107, action C. The medium has role 110155 Source Media (``media_type`` a CID 405
    code); RadGuard role 110152. Studies carry life cycle 2 (Import/Copy).
    """
    participants = [
        _person(user),
        _process(station, codes.ROLE_DESTINATION),
        _medium(media_id, media_type, codes.ROLE_SOURCE_MEDIA),
    ]
    objects = _patients(patient_ids, patient_names)
    objects += _studies(study_uids, 2, sop_classes=sop_classes)
    return _message(codes.IMPORT, ActionCode.CREATE, outcome, description, when,
                    participants, station, site, objects)


def instances_accessed(
    *,
    user: str,
    station: str,
    patient_ids: Sequence[str],
    study_uids: Sequence[str],
    action: ActionCode = ActionCode.READ,
    patient_names: Mapping[str, str] | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """DICOM Instances Accessed (PS3.15 A.5.3.6): instances created, read, updated or deleted.

    EventID 110103, ``action`` C, R, U or D.
    """
    objects = _patients(patient_ids, patient_names) + _studies(study_uids, 6)
    return _message(codes.INSTANCES_ACCESSED, action, outcome, description, when,
                    [_person(user), _process(station)], station, site, objects)


def instances_transferred(
    *,
    station: str,
    source: str,
    destination: str,
    patient_ids: Sequence[str],
    study_uids: Sequence[str],
    source_host: str | None = None,
    destination_host: str | None = None,
    requestor: Literal["source", "destination"] = "source",
    action: ActionCode = ActionCode.READ,
    user: str | None = None,
    patient_names: Mapping[str, str] | None = None,
    sop_classes: Mapping[str, Mapping[str, int]] | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """DICOM Instances Transferred (PS3.15 A.5.3.7): studies sent from one node to another.

    EventID 110104; ``action`` C when RadGuard received (created) the instances, R when it sent
    them, U when they replaced existing ones. ``source`` and ``destination`` are AE titles (or other
    process IDs) with roles 110153 and 110152; ``requestor`` says which one started the transfer.
    """
    participants = [
        _node(source, source_host, codes.ROLE_SOURCE, requestor=requestor == "source"),
        _node(destination, destination_host, codes.ROLE_DESTINATION,
              requestor=requestor == "destination"),
    ]
    if user is not None:
        participants.append(_person(user, requestor=False))
    objects = _patients(patient_ids, patient_names) + _studies(study_uids, sop_classes=sop_classes)
    return _message(codes.INSTANCES_TRANSFERRED, action, outcome, description, when,
                    participants, station, site, objects)


def study_deleted(
    *,
    user: str,
    station: str,
    patient_ids: Sequence[str],
    study_uids: Sequence[str],
    patient_names: Mapping[str, str] | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """DICOM Study Deleted (PS3.15 A.5.3.8): studies removed (e.g. from quarantine). EventID 110105,
    action D; studies carry life cycle 14 (Logical deletion)."""
    objects = _patients(patient_ids, patient_names) + _studies(study_uids, 14)
    return _message(codes.STUDY_DELETED, ActionCode.DELETE, outcome, description, when,
                    [_person(user), _process(station)], station, site, objects)


def network_entry(
    phase: Literal["attach", "detach"],
    *,
    station: str,
    node: str | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Network Entry (PS3.15 A.5.3.9): a node (default: this station) joined or left the network.

    EventID 110108, action E, EventTypeCode 110124 Attach or 110125 Detach.
    """
    name = node or station
    participant = ActiveParticipant(user_id=name, user_is_requestor=False,
                                    network_access_point_id=name,
                                    network_access_point_type=_access_point_type(name))
    kind = codes.ATTACH if phase == "attach" else codes.DETACH
    return _message(codes.NETWORK_ENTRY, ActionCode.EXECUTE, outcome, description, when,
                    [participant], station, site, type_codes=(kind,))


def query(
    *,
    station: str,
    source: str,
    destination: str,
    sop_class_uid: str,
    query_bytes: bytes,
    source_host: str | None = None,
    destination_host: str | None = None,
    transfer_syntax: str = _IMPLICIT_VR_LITTLE_ENDIAN,
    user: str | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Query (PS3.15 A.5.3.10): ``source`` issued a C-FIND (or other query) to ``destination``.

    EventID 110112, action E. The query object is the SOP Class queried (type 2, role 3, ID type
    110181) with the encoded identifier ``query_bytes`` in ParticipantObjectQuery (base64) and the
    ``TransferSyntax`` detail. Note: the query may contain PHI; it is recorded as the standard asks.
    """
    participants = [
        _node(source, source_host, codes.ROLE_SOURCE, requestor=True),
        _node(destination, destination_host, codes.ROLE_DESTINATION, requestor=False),
    ]
    if user is not None:
        participants.append(_person(user, requestor=False))
    obj = ParticipantObject(object_id=sop_class_uid, type_code=2, role=3,
                            id_type=codes.SOP_CLASS_UID, query=query_bytes,
                            details=(("TransferSyntax", transfer_syntax.encode("ascii")),))
    return _message(codes.QUERY, ActionCode.EXECUTE, outcome, description, when,
                    participants, station, site, [obj])


def security_alert(
    alert_type: str,
    *,
    station: str,
    subject: str | None = None,
    user: str | None = None,
    details: Sequence[str] = (),
    site: str | None = None,
    outcome: Outcome = Outcome.MINOR_FAILURE,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """Security Alert (PS3.15 A.5.3.11): a security-relevant event RadGuard detected or caused.

    EventID 110113, action E, EventTypeCode ``alert_type`` from CID 401 (e.g. "110126" Node
    Authentication, "110129" Security Configuration, "110132" Use of Restricted Function). RadGuard
    reports as requestor; ``user`` is the person involved, if any. ``subject`` (a file, URI or node)
    becomes a Security Resource object (type 2, role 13, ID type RFC 3881 12 URI) with one
    ``Alert Description`` detail per item of ``details``.
    """
    participants = [_process(station, requestor=True)]
    if user is not None:
        participants.append(_person(user, requestor=False))
    objects = []
    if subject is not None:
        objects.append(ParticipantObject(
            object_id=subject, type_code=2, role=13, id_type=codes.URI, name=subject,
            details=tuple(("Alert Description", d.encode("utf-8")) for d in details),
        ))
    return _message(codes.SECURITY_ALERT, ActionCode.EXECUTE, outcome, description, when,
                    participants, station, site, objects,
                    type_codes=(codes.event_type(alert_type),))


def user_authentication(
    phase: Literal["login", "logout"],
    *,
    user: str,
    station: str,
    user_name: str | None = None,
    site: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    description: str | None = None,
    when: datetime | None = None,
) -> AuditMessage:
    """User Authentication (PS3.15 A.5.3.12): a person logged in or out (or failed to: pass a
    failure ``outcome``). EventID 110114, action E, EventTypeCode 110122 Login or 110123 Logout;
    the user is requestor, the node authenticating them is this station."""
    person = ActiveParticipant(user_id=user, user_is_requestor=True, user_name=user_name)
    kind = codes.LOGIN if phase == "login" else codes.LOGOUT
    return _message(codes.USER_AUTHENTICATION, ActionCode.EXECUTE, outcome, description, when,
                    [person, _process(station)], station, site, type_codes=(kind,))

