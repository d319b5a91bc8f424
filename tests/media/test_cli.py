"""`radguard media scan` run as a subprocess, as an operator would: exit codes, JSON, HTML, store, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from radguard.audit import AuditMessage
from radguard.audit.emitter import read_journal
from radguard.audit.schema import validate
from radguard.samples import hostile
from radguard.store import Store, list_scans
from tests.conftest import PYDICOM_TEST_FILES

RADGUARD = [str(Path(sys.executable).parent / "radguard")]


def run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RADGUARD_HOME=str(home), RADGUARD_OPERATOR="tech1",
               RADGUARD_STATION="media-station-1")
    return subprocess.run([*RADGUARD, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture()
def clean_medium(tmp_path: Path) -> Path:
    m = tmp_path / "clean"
    m.mkdir()
    (m / "CT.DCM").write_bytes((PYDICOM_TEST_FILES / "CT_small.dcm").read_bytes())
    return m


@pytest.fixture()
def dangerous_medium(tmp_path: Path) -> Path:
    m = tmp_path / "bad"
    m.mkdir()
    (m / "CT.DCM").write_bytes((PYDICOM_TEST_FILES / "CT_small.dcm").read_bytes())
    (m / "PE.DCM").write_bytes(hostile.pe_polyglot())
    return m


def test_clean_medium_exits_0(clean_medium: Path, radguard_home: Path) -> None:
    r = run(["media", "scan", str(clean_medium)], radguard_home)
    assert r.returncode == 0, r.stderr
    assert "CLEAN" in r.stdout


def test_dangerous_medium_exits_1_with_documented_json(dangerous_medium: Path,
                                                       radguard_home: Path) -> None:
    r = run(["media", "scan", str(dangerous_medium), "--format", "json"], radguard_home)
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert data["medium"]["path"] == str(dangerous_medium)
    assert data["medium"]["verdict"] == "dangerous"
    assert data["medium"]["counts"]["dangerous"] == 1
    files = {f["path"]: f for f in data["files"]}
    assert set(files) == {"CT.DCM", "PE.DCM"}
    pe = files["PE.DCM"]
    assert set(pe) >= {"path", "kind", "sha256", "size", "verdict", "findings"}
    assert pe["kind"] == "dicom" and pe["verdict"] == "dangerous" and len(pe["sha256"]) == 64
    f0 = next(f for f in pe["findings"] if f["id"] == "media.preamble-executable")
    assert set(f0) >= {"id", "severity", "message", "offset"}
    assert f0["offset"] == 0 and f0["severity"] == "critical"


def test_unreadable_path_exits_2_with_remedy(tmp_path: Path, radguard_home: Path) -> None:
    r = run(["media", "scan", str(tmp_path / "missing")], radguard_home)
    assert r.returncode == 2
    assert "what to do" in r.stderr


def test_html_report_is_written_atomically(dangerous_medium: Path, radguard_home: Path,
                                           tmp_path: Path) -> None:
    out = tmp_path / "reports" / "scan.html"
    r = run(["media", "scan", str(dangerous_medium), "--format", "html", "-o", str(out)],
            radguard_home)
    assert r.returncode == 1, r.stderr
    html = out.read_text()
    assert "PE.DCM" in html and "media.preamble-executable" in html and "<script" not in html
    assert [p.name for p in out.parent.iterdir()] == ["scan.html"]


def test_scan_is_recorded_and_audited(dangerous_medium: Path, radguard_home: Path) -> None:
    r = run(["media", "scan", str(dangerous_medium), "--format", "json"], radguard_home)
    scan_id = json.loads(r.stdout)["scan_id"]
    store = Store.open(f"sqlite:///{radguard_home / 'radguard.db'}")
    try:
        scans = list_scans(store, kind="media.scan")
    finally:
        store.close()
    assert [s.id for s in scans] == [scan_id]
    assert scans[0].verdict == "dangerous"
    journals = sorted((radguard_home / "audit" / "journal").iterdir())
    records = [rec for j in journals for rec in read_journal(j)]
    assert len(records) == 2  # Data Import (attempt) + Security Alert
    for xml in records:
        validate(xml)
    msgs = [AuditMessage.from_xml(x) for x in records]
    assert [m.event.event_id.code for m in msgs] == ["110107", "110113"]
    assert msgs[0].event.outcome is not None and int(msgs[0].event.outcome) == 8
    assert any(p.user_id == "tech1" for p in msgs[0].participants)


def test_custom_yara_rules(tmp_path: Path, radguard_home: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "local.yar").write_text(
        'rule Local_Marker { strings: $a = "RADGUARD-TEST-MARKER" condition: $a }\n')
    m = tmp_path / "m"
    m.mkdir()
    (m / "notes.txt").write_text("x RADGUARD-TEST-MARKER y")
    r = run(["media", "scan", str(m), "--rules", str(rules), "--format", "json", "--no-record"],
            radguard_home)
    data = json.loads(r.stdout)
    assert r.returncode == 1
    ids = [f["id"] for f in data["files"][0]["findings"]]
    assert ids == ["media.yara-match"]
    assert "clamav" in data["engines"] and "not configured" in data["engines"]["clamav"]


def test_checks_are_listed_from_the_registry(radguard_home: Path) -> None:
    r = run(["media", "checks", "--format", "json"], radguard_home)
    rows = json.loads(r.stdout)
    ids = {row["id"] for row in rows}
    assert {"media.preamble-executable", "dicom.nesting-bomb", "dicomdir.reference-escapes"} <= ids
    assert all(row["controls"] for row in rows)
