"""``radguard deid INPUT --out MEDIUM --media-id LABEL`` audits a Data Export (issue 4 review).

PS3.15 A.5.3.4 Data Export: EventID 110106 Export, action R, the medium as an active participant
with role 110154 Destination Media, the studies with ParticipantObjectDataLifeCycle 10 (Export)
and, since the copies are de-identified, Anonymized true; the study UIDs and patient IDs named are
those written to the medium (the pseudonyms), never the originals. The de-identification itself is
audited as DICOM Instances Accessed with life cycle 7 (A.5.3.6, PS3.15 A.5.2 life cycle codes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from radguard.audit import ActionCode, AuditMessage, read_journal, validate
from radguard.cli import app

FILES = ["CT_small.dcm", "MR_small.dcm"]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for name in FILES:
        shutil.copy(pydicom.data.get_testdata_file(name), src / name)
    return src


def _messages(home: Path) -> list[tuple[bytes, AuditMessage]]:
    return [(xml, AuditMessage.from_xml(xml)) for log in sorted((home / "audit").rglob("*.log"))
            for xml in read_journal(log)]


def _run(*args: str) -> None:
    result = CliRunner().invoke(app, ["deid", *args, "--workers", "1", "--no-ocr", "-f", "json"])
    assert result.exit_code == 0, result.output


def test_media_id_emits_an_anonymized_export(source: Path, tmp_path: Path,
                                             radguard_home: Path) -> None:
    out = tmp_path / "usb"
    _run(str(source), "--out", str(out), "--media-id", "RG-USB-0042")
    originals = {str(pydicom.dcmread(source / n).StudyInstanceUID) for n in FILES}
    original_ids = {str(pydicom.dcmread(source / n).PatientID) for n in FILES}
    written = [pydicom.dcmread(out / n) for n in FILES]
    new_studies = {str(ds.StudyInstanceUID) for ds in written}
    new_ids = {str(ds.PatientID) for ds in written}

    messages = _messages(radguard_home)
    exports = [(xml, m) for xml, m in messages if m.event.event_id.code == "110106"]
    assert len(exports) == 1
    xml, export = exports[0]
    validate(xml)  # the PS3.15 A.5.1 schema
    assert export.event.action == ActionCode.READ
    media = [p for p in export.participants if any(r.code == "110154" for r in p.role_codes)]
    assert [p.user_id for p in media] == ["RG-USB-0042"]
    studies = [o for o in export.objects if o.type_code == 2]
    assert {o.object_id for o in studies} == new_studies
    assert all(o.life_cycle == 10 and o.anonymized is True for o in studies)
    patients = {o.object_id for o in export.objects if o.type_code == 1}
    assert patients == new_ids
    text = xml.decode()
    assert not any(uid in text for uid in originals)  # the medium's copies, not the originals
    assert not any(pid in text for pid in original_ids)

    accessed = [m for _, m in messages if m.event.event_id.code == "110103"]
    assert accessed and all(o.life_cycle == 7 for o in accessed[-1].objects)


def test_without_media_id_no_export_is_audited(source: Path, tmp_path: Path,
                                               radguard_home: Path) -> None:
    _run(str(source), "--out", str(tmp_path / "folder"))
    codes = [m.event.event_id.code for _, m in _messages(radguard_home)]
    assert "110103" in codes and "110106" not in codes
