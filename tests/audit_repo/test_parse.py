"""Parsing and validation of received messages: RFC 5424 header, RFC 6587 framing, PS3.15 A.5.1
schema, the RFC 3881 form, and hostile input kept raw with its reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tests.audit_repo.messages import (
    BILLION_LAUGHS,
    MALFORMED,
    XXE,
    big_message,
    every_a53_message,
    rfc3881_form,
    syslog,
)

from radguard.audit.repository import Deframer, Validity, parse_header, parse_message

NOW = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)


def _parse(raw: bytes):
    return parse_message(raw, transport="tcp", peer="127.0.0.1", received_at=NOW)


def test_rfc5424_header_with_structured_data_and_bom() -> None:
    raw = (b'<85>1 2025-11-28T10:00:00.5Z pacs1 dcm4chee 42 IHE+RFC-3881 '
           b'[origin ip="10.0.0.1"][x y="a\\"]b"] \xef\xbb\xbf<AuditMessage/>')
    h = parse_header(raw)
    assert (h.rfc5424, h.pri, h.hostname, h.app_name, h.procid, h.msgid) == (
        True, 85, "pacs1", "dcm4chee", "42", "IHE+RFC-3881")
    assert h.timestamp == datetime(2025, 11, 28, 10, 0, 0, 500000, tzinfo=UTC)
    assert h.structured_data == '[origin ip="10.0.0.1"][x y="a\\"]b"]'
    assert raw[h.msg_offset:] == b"<AuditMessage/>"


def test_bsd_syslog_falls_back_to_the_xml() -> None:
    h = parse_header(b"<85>Nov 28 10:00:00 pacs1 app: <AuditMessage/>")
    assert not h.rfc5424 and h.pri == 85 and h.problem
    assert h.msg_offset == len(b"<85>Nov 28 10:00:00 pacs1 app: ")


@pytest.mark.parametrize("name", sorted(every_a53_message()))
def test_every_a53_message_is_stored_valid_with_its_fields(name: str) -> None:
    message = every_a53_message()[name]
    parsed = _parse(syslog(message))
    assert parsed.validity is Validity.VALID, parsed.reason
    assert parsed.reason is None
    assert parsed.event_id == message.event.event_id.code
    assert parsed.source_id == message.source.source_id
    assert parsed.event_time == message.event.when


def test_query_object_and_patients_are_extracted() -> None:
    msgs = every_a53_message()
    assert _parse(syslog(msgs["A.5.3.6 Instances Accessed"])).patients == ("P-1",)
    exported = _parse(syslog(msgs["A.5.3.4 Data Export"]))
    assert exported.media_destination and exported.requestors == ("bob",)
    moved = _parse(syslog(msgs["A.5.3.7 Instances Transferred"]))
    assert moved.destinations == ("WS1",)


def test_older_rfc3881_form_and_ihe_msgid_are_accepted() -> None:
    message = every_a53_message()["A.5.3.12 User Authentication"]
    parsed = _parse(syslog(rfc3881_form(message), msgid="IHE+RFC-3881"))
    assert parsed.validity is Validity.RFC3881
    assert parsed.reason is None
    assert parsed.event_id == "110114" and parsed.users[0] == "bob"


def test_unexpected_msgid_is_noted_but_kept_valid() -> None:
    parsed = _parse(syslog(every_a53_message()["A.5.3.9 Network Entry"], msgid="FOO"))
    assert parsed.validity is Validity.VALID
    assert parsed.reason is not None and "MSGID 'FOO'" in parsed.reason


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_hostile_xml_is_kept_raw_and_never_expanded(payload: bytes) -> None:
    raw = syslog(payload)
    parsed = _parse(raw)
    assert parsed.validity is Validity.REFUSED
    assert parsed.reason is not None and "DOCTYPE" in parsed.reason
    assert parsed.raw == raw  # exactly as received
    assert parsed.users == () and parsed.event_id is None


def test_malformed_and_non_xml_are_kept_with_the_reason() -> None:
    bad = _parse(syslog(MALFORMED))
    assert bad.validity is Validity.NOT_XML and "well-formed" in (bad.reason or "")
    text = _parse(b"<13>1 - host app - - - hello")
    assert text.validity is Validity.NOT_XML and text.raw.endswith(b"hello")


def test_schema_invalid_message_keeps_its_fields_for_search() -> None:
    xml = every_a53_message()["A.5.3.12 User Authentication"].to_xml()
    broken = xml.replace(b'EventActionCode="E"', b'EventActionCode="Z"')
    parsed = _parse(syslog(broken))
    assert parsed.validity is Validity.INVALID
    assert "EventActionCode" in (parsed.reason or "") or "PS3.15" in (parsed.reason or "")
    assert parsed.event_id == "110114"


def test_message_over_32768_octets_is_accepted() -> None:
    raw = syslog(big_message())
    assert len(raw) >= 32_768
    assert _parse(raw).validity is Validity.VALID


def test_octet_counting_across_chunks_and_lf_framing() -> None:
    d = Deframer()
    stream = b"5 hello11 hello world"
    frames = [f for i in range(len(stream)) for f in d.feed(stream[i:i + 1])]
    assert [f.data for f in frames] == [b"hello", b"hello world"] and d.error is None
    lf = Deframer()
    assert [f.data for f in lf.feed(b"<1>a\n<2>b\r\n<3>c")] == [b"<1>a", b"<2>b"]
    assert [f.data for f in lf.finish()] == [b"<3>c"]


def test_oversized_frame_keeps_a_prefix_and_resynchronises() -> None:
    d = Deframer(max_message=10)
    frames = d.feed(b"20 " + b"x" * 20 + b"3 abc")
    assert [(f.data, f.truncated, f.length) for f in frames] == [
        (b"x" * 10, True, 20), (b"abc", False, 0)]
    assert _parse_truncated().validity is Validity.TRUNCATED


def _parse_truncated():
    return parse_message(b"<85>1 - h a - DICOM+RFC3881 - <Audit", transport="tcp",
                         peer="127.0.0.1", received_at=NOW, truncated_from=99_999_999)


def test_bad_length_prefix_stops_the_connection() -> None:
    d = Deframer()
    assert d.feed(b"5 hello") and d.feed(b"x1 a") == []
    assert d.error is not None and "length" in d.error


def test_public_surface_is_explicit() -> None:
    import radguard.audit.repository as repository

    for name in repository.__all__:
        assert hasattr(repository, name), name


def test_lean_header_differs_only_in_what_is_not_stored() -> None:
    raw = (b'<85>1 2025-11-28T10:00:00.5Z pacs1 dcm4chee 42 IHE+RFC-3881 '
           b'[origin ip="10.0.0.1"] \xef\xbb\xbf<AuditMessage/>')
    full, lean = parse_header(raw), parse_header(raw, full=False)
    assert full.timestamp and full.structured_data
    assert lean == full._replace(timestamp=None, structured_data=None)
    assert _parse(raw).hostname == "pacs1" and _parse(raw).msgid == "IHE+RFC-3881"
