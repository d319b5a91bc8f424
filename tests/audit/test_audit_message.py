"""The PS3.15 A.5.1 model, its XML, the schema and the A.5.3 builders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from lxml import etree

import radguard.audit as audit
from radguard.audit import builders, codes
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
from radguard.audit.schema import is_valid, validate
from radguard.errors import AuditSchemaError

WHEN = datetime(2024, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
STUDY = "1.2.826.0.1.3680043.8.498.1"
CT = "1.2.840.10008.5.1.4.1.1.2"

BUILT: dict[str, Callable[[], AuditMessage]] = {
    "application_start": lambda: builders.application_activity(
        "start", station="st1", site="HOSP", launcher="alice", when=WHEN
    ),
    "application_stop": lambda: builders.application_activity("stop", station="st1", when=WHEN),
    "audit_log_used": lambda: builders.audit_log_used(
        user="sec-officer", station="st1", log_uri="file:///var/lib/radguard/audit", when=WHEN
    ),
    "data_export": lambda: builders.data_export(
        user="alice",
        station="st1",
        media_id="RG-2024-0001",
        patient_ids=["P1"],
        study_uids=[STUDY],
        encrypted=True,
        anonymized=False,
        media_type="110030",
        patient_names={"P1": "DOE^JANE"},
        sop_classes={STUDY: {CT: 120}},
        when=WHEN,
    ),
    "data_import": lambda: builders.data_import(
        user="alice",
        station="st1",
        media_id="OUTSIDE_CD",
        patient_ids=["P1", "P2"],
        study_uids=[STUDY],
        when=WHEN,
        outcome=Outcome.MINOR_FAILURE,
        description="2 files quarantined",
    ),
    "instances_transferred": lambda: builders.instances_transferred(
        station="st1",
        source="RADGUARD",
        destination="PACS",
        source_host="st1",
        destination_host="10.1.2.3",
        patient_ids=["P1"],
        study_uids=[STUDY],
        user="alice",
        when=WHEN,
    ),
    "security_alert": lambda: builders.security_alert(
        "110132",
        station="st1",
        subject="file:///media/cd/IMG0001",
        user="alice",
        details=["preamble holds a PE executable"],
        description="polyglot file",
        when=WHEN,
    ),
    "network_entry": lambda: builders.network_entry("detach", station="st1", when=WHEN),
    "query": lambda: builders.query(
        station="st1",
        source="RADGUARD",
        destination="PACS",
        sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1",
        query_bytes=b"\x10\x00\x20\x00\x02\x00P1",
        when=WHEN,
    ),
    "user_authentication": lambda: builders.user_authentication(
        "login",
        user="alice",
        station="st1",
        user_name="Alice Tech",
        outcome=Outcome.SERIOUS_FAILURE,
        when=WHEN,
    ),
    "instances_accessed": lambda: builders.instances_accessed(
        user="alice", station="st1", patient_ids=["P1"], study_uids=[STUDY], when=WHEN
    ),
    "study_deleted": lambda: builders.study_deleted(
        user="alice", station="st1", patient_ids=["P1"], study_uids=[STUDY], when=WHEN
    ),
}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_builder_validates_and_round_trips(name: str) -> None:
    message = BUILT[name]()
    xml = message.to_xml()
    assert is_valid(xml) == (True, [])
    validate(xml)
    assert AuditMessage.from_xml(xml) == message
    assert not xml.startswith(b"\xef\xbb\xbf")
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


def _attrs(xml: bytes, path: str) -> list[dict[str, str]]:
    return [dict(e.attrib) for e in etree.fromstring(xml).iterfind(path)]


def test_data_import_has_source_media_and_import_lifecycle() -> None:
    xml = BUILT["data_import"]().to_xml()
    root = etree.fromstring(xml)
    event = root.find("EventIdentification")
    assert event is not None and event.get("EventActionCode") == "C"
    assert _attrs(xml, "EventIdentification/EventID")[0]["csd-code"] == "110107"
    assert event.findtext("EventOutcomeDescription") == "2 files quarantined"
    assert [a["csd-code"] for a in _attrs(xml, "ActiveParticipant/RoleIDCode")] == [
        "110152",
        "110155",
    ]
    objects = _attrs(xml, "ParticipantObjectIdentification")
    assert [
        (o["ParticipantObjectTypeCode"], o["ParticipantObjectTypeCodeRole"]) for o in objects
    ] == [("1", "1"), ("1", "1"), ("2", "3")]
    assert objects[2]["ParticipantObjectDataLifeCycle"] == "2"
    assert [a["csd-code"] for a in _attrs(xml, "*/ParticipantObjectIDTypeCode")] == [
        "2",
        "2",
        "110180",
    ]


def test_data_export_has_destination_media_encrypted_flag_and_export_lifecycle() -> None:
    message = BUILT["data_export"]()
    xml = message.to_xml()
    root = etree.fromstring(xml)
    assert root.find("EventIdentification/EventID").get("csd-code") == "110106"  # type: ignore[union-attr]
    media = root.find("ActiveParticipant/MediaIdentifier/MediaType")
    assert media is not None and media.get("csd-code") == "110030"
    assert "110154" in [a["csd-code"] for a in _attrs(xml, "ActiveParticipant/RoleIDCode")]
    study = message.objects[1]
    assert (study.life_cycle, study.encrypted, study.anonymized) == (10, True, False)
    assert study.sop_classes == (SOPClass(CT, 120),)
    assert root.findtext("ParticipantObjectIdentification/ParticipantObjectName") == "DOE^JANE"
    assert root.findtext("*/ParticipantObjectDescription/Encrypted") == "true"


def test_security_alert_is_execute_and_query_is_base64() -> None:
    alert = etree.fromstring(BUILT["security_alert"]().to_xml())
    assert alert.find("EventIdentification").get("EventActionCode") == "E"  # type: ignore[union-attr]
    assert alert.find("EventIdentification/EventTypeCode").get("csd-code") == "110132"  # type: ignore[union-attr]
    query = etree.fromstring(BUILT["query"]().to_xml())
    assert query.findtext("*/ParticipantObjectQuery") == "EAAgAAIAUDE="


def test_missing_required_attribute_fails_validation() -> None:
    root = etree.fromstring(BUILT["network_entry"]().to_xml())
    del root.find("EventIdentification").attrib["EventDateTime"]  # type: ignore[union-attr]
    xml = etree.tostring(root)
    ok, errors = is_valid(xml)
    assert not ok and errors
    with pytest.raises(AuditSchemaError, match=r"does not conform to PS3\.15 A\.5\.1"):
        validate(xml)


def test_out_of_range_code_fails_validation() -> None:
    message = AuditMessage(
        event=EventIdentification(codes.NETWORK_ENTRY, ActionCode.EXECUTE, Outcome.SUCCESS, WHEN),
        participants=(ActiveParticipant("st1", False, network_access_point_type=9),),
        source=AuditSource("st1"),
    )
    with pytest.raises(AuditSchemaError, match="NetworkAccessPointTypeCode"):
        validate(message.to_xml())


def test_every_model_field_round_trips() -> None:
    coded = CodedValue("X1", "99LOCAL", "Local thing", "local thing")
    message = AuditMessage(
        event=EventIdentification(
            codes.INSTANCES_ACCESSED,
            ActionCode.UPDATE,
            Outcome.MAJOR_FAILURE,
            WHEN,
            type_codes=(coded,),
            outcome_description="déjà vu <&>",
        ),
        participants=(
            ActiveParticipant(
                "u",
                True,
                "alt",
                "User Name",
                "10.0.0.1",
                2,
                (codes.ROLE_SOURCE,),
                codes.media_type("110033"),
            ),
        ),
        source=AuditSource("st1", "SITE", ("1", coded)),
        objects=(
            ParticipantObject(
                "1.2.3",
                2,
                3,
                codes.STUDY_INSTANCE_UID,
                6,
                name="study",
                details=(("k", b"\x00\xff"),),
                sensitivity="N",
                sop_classes=(SOPClass(CT, 2, ("1.2.3.4", "1.2.3.5")), SOPClass(None, 0)),
                studies=("1.2.3",),
                accessions=("ACC1",),
                mpps=("1.2.9",),
                encrypted=False,
                anonymized=True,
            ),
        ),
    )
    xml = message.to_xml()
    validate(xml)
    assert AuditMessage.from_xml(xml) == message


def test_coded_value_original_text_defaults_to_display() -> None:
    assert CodedValue("110107", "DCM", "Import").original_text == "Import"


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE AuditMessage [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<AuditMessage><EventIdentification EventDateTime="2024-01-01T00:00:00Z" EventOutcomeIndicator="0">
<EventID csd-code="110100" codeSystemName="DCM" originalText="&xxe;"/></EventIdentification>
</AuditMessage>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<AuditMessage>&lol4;</AuditMessage>"""


XXE_UTF16 = XXE.decode().replace('"1.0"', '"1.0" encoding="UTF-16"').encode("utf-16")


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [(XXE, "DOCTYPE"), (LAUGHS, "DOCTYPE"), (XXE_UTF16, "ASCII-compatible")],
    ids=["xxe", "billion-laughs", "xxe-utf16"],
)
def test_from_xml_and_validate_refuse_entities(hostile: bytes, reason: str) -> None:
    with pytest.raises(AuditSchemaError, match=reason):
        AuditMessage.from_xml(hostile)
    ok, errors = is_valid(hostile)
    assert not ok and reason in errors[0]


def test_from_xml_rejects_non_audit_and_malformed() -> None:
    with pytest.raises(AuditSchemaError, match="root element"):
        AuditMessage.from_xml(b"<Other/>")
    with pytest.raises(AuditSchemaError, match="not well-formed"):
        AuditMessage.from_xml(b"<AuditMessage>")
    with pytest.raises(AuditSchemaError, match="EventIdentification"):
        AuditMessage.from_xml(b"<AuditMessage/>")
    with pytest.raises(AuditSchemaError, match="exceeds"):
        AuditMessage.from_xml(b" " * (17 * 1024 * 1024))


def test_code_table_is_versioned_data() -> None:
    assert codes.VERSION == "2023b.1"
    assert codes.event_id("110107") == CodedValue("110107", "DCM", "Import")
    assert [codes.event_id(str(c)).code for c in range(110100, 110115)] == [
        str(c) for c in range(110100, 110115)
    ]
    assert all(codes.event_type(str(c)) for c in range(110120, 110138))
    assert codes.role_id("110155").display == "Source Media"
    assert CodedValue("2", "RFC-3881", "Patient Number") == codes.PATIENT_NUMBER
    with pytest.raises(KeyError, match="EventID"):
        codes.event_id("999999")


def test_public_surface() -> None:
    assert sorted(audit.__all__) == audit.__all__
    for name in audit.__all__:
        assert getattr(audit, name) is not None
