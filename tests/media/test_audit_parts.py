"""A large medium's Data Import messages are built by two processes: none lost, none twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from radguard.audit import AuditEmitter, builders
from radguard.audit.message import AuditMessage
from radguard.errors import AuditError, AuditSchemaError
from radguard.media.jobs import PARALLEL_MESSAGES, _emit_parts


def _builder(count: int, bad: int | None = None):  # type: ignore[no-untyped-def]
    def build(first: int, last: int) -> list[AuditMessage]:
        if bad is not None and first <= bad < last:
            raise AuditSchemaError(f"message {bad} does not conform")
        return [builders.data_import(user="op", station="st", media_id="/media/cd",
                                     patient_ids=[f"P{n}"], study_uids=[f"1.2.3.{n}"],
                                     description=f"part {n + 1} of {count}")
                for n in range(first, last)]
    return build


def _parts(emitter: AuditEmitter) -> list[str]:
    out = []
    for xml in emitter.journal_records():
        msg = AuditMessage.from_xml(xml)
        out.append(msg.event.outcome_description or "")
    return out


def test_every_part_is_journalled_once(tmp_path: Path) -> None:
    count = PARALLEL_MESSAGES + 37
    emitter = AuditEmitter(tmp_path, "st")
    _emit_parts(emitter, _builder(count), count)
    parts = _parts(emitter)
    assert sorted(parts) == sorted(f"part {n + 1} of {count}" for n in range(count))


def test_an_error_in_the_second_half_is_raised(tmp_path: Path) -> None:
    count = PARALLEL_MESSAGES * 2
    emitter = AuditEmitter(tmp_path, "st")
    with pytest.raises(AuditError, match=f"message {count - 3} does not conform"):
        _emit_parts(emitter, _builder(count, bad=count - 3), count)
    assert len(_parts(emitter)) == count // 2  # the first half was recorded; the error says so


def test_few_messages_stay_in_one_process(tmp_path: Path) -> None:
    emitter = AuditEmitter(tmp_path, "st")
    with pytest.raises(AuditSchemaError):
        _emit_parts(emitter, _builder(3, bad=1), 3)
    assert _parts(emitter) == []  # one emit_many: an invalid message records none
