"""The template cache (radguard.audit.repository.template) must give exactly the full path's
verdict and fields: on every sample message, and on a cached message whose slot contents are
replaced by hostile or unusual values (markup, entities, controls, bad UTF-8, impossible dates,
bad base64). Whatever the cache cannot prove equal must go the full path."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

import pytest
from tests.audit_repo.messages import (
    BILLION_LAUGHS,
    MALFORMED,
    XXE,
    every_a53_message,
    one_line,
    rfc3881_form,
)

from radguard.audit.repository import parse as parse_module
from radguard.audit.repository import slots, template
from radguard.audit.repository.parse import Validity, parse_msg

ODD_VALUES = [
    b"", b" ", b"x y", b"a\tb", b"a\nb", b"a\rb", b"&amp;", b"&lt;x", b"&#65;", b"&bogus;", b"<",
    b"a>b", b"'", b"\xc3\xa9l\xc3\xa8ve", b"\xff", b"\xed\xa0\x80", b"\xef\xbf\xbe", b"\x00",
    b"\x01", b"\x7f", b"\xc2\x85", b"h" * 300, b"110152", b"true", b"0", b"2",
    b"9999-99-99", b"2025-02-29T00:00:00Z", b"2024-02-29T00:00:00Z", b"2025-04-31T10:00:00Z",
    b"2025-11-28T24:00:00Z", b"2025-11-28T10:00:00+14:00", b"2025-11-28T10:00:00+15:00",
    b"0000-01-01T00:00:00Z", b"2025-11-28T10:00:00", b"2025-11-28T10:00:00.Z",
    b"2025-11-28T10:00:60Z", b"-2025-11-28T10:00:00Z", b"12025-11-28T10:00:00Z",
    b"QUJD", b"QUI=", b"QUJ=", b"QQ==", b"QR==", b"QUJD\nREVG", b"A B C D", b"!!!!", b"====",
]


def _messages() -> list[bytes]:
    msgs = every_a53_message()
    return ([one_line(m) for m in msgs.values()] + [m.to_xml() for m in msgs.values()]
            + [rfc3881_form(m) for m in list(msgs.values())[:3]]
            + [MALFORMED, BILLION_LAUGHS, XXE, b"not xml", b"<AuditMessage/>"])


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    template.clear()
    yield
    template.clear()


def test_every_sample_gives_the_full_paths_verdict_and_fields_from_the_cache() -> None:
    samples = _messages()
    for _ in range(3):  # first sight, second sight (template made), then from the template
        for msg in samples:
            assert template.parse_msg_cached(msg) == parse_msg(msg)
    assert template._GROUPS, "no template was made from valid messages"


def test_cached_messages_skip_the_full_path(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = one_line(every_a53_message()["A.5.3.6 Instances Accessed"])
    expected = parse_msg(msg)
    template.parse_msg_cached(msg)
    template.parse_msg_cached(msg)

    def refuse(_: bytes) -> object:
        raise AssertionError("full path taken for a cached message")

    monkeypatch.setattr(parse_module, "parse_msg", refuse)
    assert template.parse_msg_cached(msg) == expected
    _, attrs, texts = template._split(msg)
    other = template._join(msg, [a.replace(b"P-1", b"P-2") for a in attrs], texts)
    assert other != msg
    assert template.parse_msg_cached(other)[2] != expected[2]  # the new patient id, from cache


@pytest.mark.parametrize("name", ["A.5.3.6 Instances Accessed", "A.5.3.4 Data Export",
                                  "A.5.3.10 Query", "A.5.3.12 User Authentication"])
def test_hostile_slot_contents_are_judged_as_the_full_path_judges_them(name: str) -> None:
    msg = one_line(every_a53_message()[name])
    template.parse_msg_cached(msg)
    template.parse_msg_cached(msg)
    assert template._GROUPS
    _, attrs, texts = template._split(msg)
    checked = 0
    for i in range(len(attrs) + len(texts)):
        for value in ODD_VALUES:
            if i < len(attrs):
                variant = template._join(msg, [*attrs[:i], value, *attrs[i + 1:]], texts)
            else:
                j = i - len(attrs)
                if not value or any(c in value for c in b'<>&"'):
                    continue  # would not be a text slot: another key
                variant = template._join(msg, attrs, [*texts[:j], value, *texts[j + 1:]])
            assert template.parse_msg_cached(variant) == parse_msg(variant), (i, value)
            checked += 1
    assert checked > 100


def test_sure_datatype_patterns_are_accepted_by_libxml2() -> None:
    rnd = random.Random(5)
    for _ in range(300):
        dt = (f"{rnd.randrange(1000, 10000):04d}-{rnd.randrange(1, 13):02d}-"
              f"{rnd.randrange(1, 29):02d}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:"
              f"{rnd.randrange(60):02d}" + rnd.choice(["", ".5", ".123456", ".000000001"])
              + rnd.choice(["", "Z", "+00:00", "-13:59", "+05:30"])).encode()
        b64 = base64.b64encode(rnd.randbytes(rnd.randrange(1, 40)))
        assert slots._SURE_DATETIME.fullmatch(dt) and slots._SURE_BASE64.fullmatch(b64)
        assert slots.libxml2_ok((dt,), (b64,)), (dt, b64)
    for value in ODD_VALUES:  # the quick patterns never accept what libxml2 refuses
        if slots._SURE_DATETIME.fullmatch(value):
            assert slots.libxml2_ok((value,), ()), value
        if slots._SURE_BASE64.fullmatch(value) and value:
            assert slots.libxml2_ok((), (value,)), value


def test_only_unconstrained_schema_slots_are_free() -> None:
    free_attrs, free_text, checked_attrs, checked_text = slots.schema_slots()
    assert {"UserID", "ParticipantObjectID", "AuditSourceID"} <= free_attrs
    # enumerations and booleans are never free; neither are codes (extraction branches on them)
    assert not {"EventOutcomeIndicator", "UserIsRequestor", "NetworkAccessPointTypeCode",
                "EventActionCode", "EventDateTime"} & free_attrs
    assert checked_attrs == {"EventDateTime"} and checked_text == {"ParticipantObjectQuery"}
    assert "ParticipantObjectName" in free_text


def test_refused_and_invalid_messages_never_become_templates() -> None:
    for msg in (BILLION_LAUGHS, XXE, MALFORMED, rfc3881_form(
            every_a53_message()["A.5.3.6 Instances Accessed"])):
        for _ in range(3):
            validity = template.parse_msg_cached(msg)[0]
        assert validity is not Validity.VALID
    assert not template._GROUPS


def test_new_shapes_cannot_make_templates_faster_than_the_budget_allows() -> None:
    from radguard.audit import builders

    shapes = [one_line(builders.instances_accessed(
        user="u", station="ws1", patient_ids=[f"P{i}" for i in range(k)], study_uids=["1.2.3"]))
        for k in range(1, 41)]
    template._BUDGET[0] = template._LEARN_COST  # one template's worth left
    for msg in shapes + shapes:  # every shape twice: each would become a template
        assert template.parse_msg_cached(msg) == parse_msg(msg)
    assert 1 <= len(template._GROUPS) <= 1 + 2 * len(shapes) // template._LEARN_COST
