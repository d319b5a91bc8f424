"""Real public files (pydicom's test data and pydicom-data): what DCMTK reads, RadGuard judges clean.

Issue 2: every file of pydicom's test data that DCMTK's dcmdump reads without error and that has a
zero preamble must scan clean.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from radguard.dicomio import open_path, walk
from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium
from tests.conftest import pydicom_data_dirs


def _zero_preamble_dicom_files() -> list[Path]:
    files = []
    for root in pydicom_data_dirs():
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            with open(p, "rb") as fh:
                head = fh.read(132)
            if len(head) == 132 and head[128:] == b"DICM" and not any(head[:128]):
                files.append(p)
    return files


@pytest.fixture(scope="module")
def dcmdump_verdicts() -> dict[Path, bool]:
    """For every zero-preamble PS3.10 file of the real data: does DCMTK's dcmdump read it?"""
    dcmdump = shutil.which("dcmdump", path="/usr/bin:/bin") or shutil.which("dcmdump")
    if dcmdump is None:
        pytest.skip("dcmdump (Debian dcmtk) not installed")
    candidates = _zero_preamble_dicom_files()
    assert len(candidates) > 100, "pydicom test data should be present"
    return {p: subprocess.run([dcmdump, "-q", str(p)], capture_output=True).returncode == 0
            for p in candidates}


def test_every_file_dcmdump_reads_scans_clean(tmp_path: Path,
                                              dcmdump_verdicts: dict[Path, bool]) -> None:
    readable = [p for p, ok in dcmdump_verdicts.items() if ok]
    assert len(readable) > 100
    medium = tmp_path / "medium"
    medium.mkdir()
    for i, p in enumerate(readable):
        shutil.copyfile(p, medium / f"{i:04d}_{p.name}")
    report = scan_medium(medium, ScanOptions(workers=2))
    bad = [(f.path, [x.check_id for x in f.findings]) for f in report.files
           if f.verdict != Verdict.CLEAN]
    assert bad == []
    assert report.counts["dicom"] + report.counts["dicomdir"] == len(readable)


def test_files_dcmdump_rejects_are_not_clean(dcmdump_verdicts: dict[Path, bool]) -> None:
    """The converse: a file DCMTK cannot read to its end is at least suspicious for RadGuard."""
    rejected = [p for p, ok in dcmdump_verdicts.items() if not ok]
    assert rejected, "pydicom ships deliberately broken files"
    for p in rejected:
        res = walk(open_path(p))
        assert res.problems or res.trailing_length, p.name


def test_scan_never_writes_to_the_medium(tmp_path: Path) -> None:
    medium = tmp_path / "m"
    medium.mkdir()
    src = pydicom_data_dirs()[0] / "test_files" / "CT_small.dcm"
    shutil.copyfile(src, medium / "CT_small.dcm")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in medium.rglob("*")}
    medium.chmod(0o555)
    try:
        scan_medium(medium, ScanOptions(workers=1))
    finally:
        medium.chmod(0o755)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in medium.rglob("*")}
    assert before == after
