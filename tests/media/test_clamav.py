"""ClamAV through Debian's real clamscan, offline, with a signature database the test writes (an MD5
signature of a file it builds): folder members by path, ISO members through stdin, and a missing
database stated as an unavailable engine, never as a clean file."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium
from radguard.media.engines import EngineConfig
from tests.support.peers import require

PAYLOAD = b"RadGuard ClamAV test payload, not malware: " + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cd")
    (root / "DICOM").mkdir()
    (root / "DICOM" / "IM1").write_bytes(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    (root / "TOOLS").mkdir()
    (root / "TOOLS" / "VIEWER.BIN").write_bytes(PAYLOAD)
    return root


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("clamdb") / "radguard-test.hdb"
    db.write_text(f"{hashlib.md5(PAYLOAD).hexdigest()}:{len(PAYLOAD)}:RadGuard.Test.Payload\n")
    return db


def _options(clamscan: str, db: str) -> ScanOptions:
    return ScanOptions(workers=1, engines=EngineConfig(yara=False, clamscan=clamscan, clamav_db=db))


def _detections(report) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {f.path: [x.message for x in f.findings if x.check_id == "media.antivirus-detection"]
            for f in report.files}


def test_clamscan_flags_the_file_on_a_folder(medium: Path, database: Path) -> None:
    clamscan = require("clamscan")
    report = scan_medium(medium, _options(clamscan, str(database)))
    hits = _detections(report)
    assert [p for p, v in hits.items() if v] == ["TOOLS/VIEWER.BIN"]
    assert "RadGuard.Test.Payload" in hits["TOOLS/VIEWER.BIN"][0]
    assert report.verdict == Verdict.DANGEROUS
    assert "database" in report.engines["clamav"]


def test_clamscan_sees_iso_members_through_stdin(medium: Path, database: Path,
                                                  tmp_path: Path) -> None:
    clamscan = require("clamscan")
    iso = tmp_path / "cd.iso"
    subprocess.run([require("genisoimage"), "-quiet", "-o", str(iso), "-R", "-J", str(medium)],
                   check=True)
    report = scan_medium(iso, _options(clamscan, str(database)))
    hits = _detections(report)
    flagged = [p for p, v in hits.items() if v]
    assert len(flagged) == 1 and flagged[0].upper().endswith("VIEWER.BIN")
    assert len(report.files) == 2


def test_clamscan_without_a_database_is_stated_not_hidden(medium: Path, tmp_path: Path) -> None:
    clamscan = require("clamscan")
    empty = tmp_path / "empty-db"
    empty.mkdir()
    report = scan_medium(medium, _options(clamscan, str(empty)))
    unavailable = [x for f in report.files for x in f.findings
                   if x.check_id == "media.engine-unavailable"]
    assert len(unavailable) == len(report.files)
    assert report.verdict != Verdict.CLEAN
