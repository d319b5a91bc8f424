"""The fast audit XML writer (radguard.audit._plainxml) writes the bytes lxml writes, or defers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_audit_message import BUILT

from radguard.audit import builders
from radguard.audit._plainxml import write
from radguard.audit.message import AuditMessage, Outcome
from radguard.audit.schema import validate

WHEN = datetime(2024, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_builder_is_written_plain_and_identical_to_lxml(name: str) -> None:
    message = BUILT[name]()
    plain = write(message)
    assert plain is not None  # these messages are plain ASCII: the fast writer takes them
    assert plain == message.to_xml_lxml()
    assert message.to_xml() == plain


def _scan_import(media_id: str, patient: str, description: str) -> AuditMessage:
    studies = [f"1.2.826.0.1.3680043.8.498.{i}" for i in range(32)]
    return builders.data_import(
        user="tech", station="QUARANTINE-1", media_id=media_id, patient_ids=[patient, "P2"],
        study_uids=studies,
        sop_classes={s: {"1.2.840.10008.5.1.4.1.1.2": i + 1, "1.2.840.10008.5.1.4.1.1.4": 2}
                     for i, s in enumerate(studies)},
        site="HOSP", outcome=Outcome.MINOR_FAILURE, description=description, when=WHEN)


def test_a_media_scan_import_message_is_identical_and_valid() -> None:
    message = _scan_import("/media/cdrom", "PID-1", "media scan suspicious: 3 files [part 1 of 9]")
    xml = message.to_xml()
    assert write(message) == xml == message.to_xml_lxml()
    validate(xml)


@pytest.mark.parametrize("text", ['a & b', "x<y", "x>y", 'say "hi"', "tab\there", "line\nbreak",
                                  "cr\rhere", "caf\u00e9", "\u65e5\u672c", "del\x7f", ""])
def test_text_that_needs_escaping_or_is_not_ascii_goes_to_lxml(text: str) -> None:
    message = _scan_import(f"/media/{text}", f"P{text}", f"described {text}")
    if text:
        assert write(message) is None
    assert message.to_xml() == message.to_xml_lxml()
    validate(message.to_xml())


def test_text_xml_cannot_hold_is_refused_as_before() -> None:
    message = _scan_import("/media/bad\x01name", "P1", "x")
    assert write(message) is None
    with pytest.raises(ValueError):
        message.to_xml()


_TEXT = st.text(alphabet=st.characters(min_codepoint=0x09, max_codepoint=0x2FF,
                                       blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(media=_TEXT, patient=_TEXT, description=_TEXT)
def test_any_text_gives_the_bytes_of_lxml_or_its_error(media: str, patient: str,
                                                       description: str) -> None:
    message = _scan_import(media, patient, description)
    try:
        expected = message.to_xml_lxml()
    except ValueError:
        with pytest.raises(ValueError):
            message.to_xml()
        return
    assert message.to_xml() == expected
