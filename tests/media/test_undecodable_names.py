"""A medium whose file names are not valid UTF-8 (bytes a Windows or old Mac CD may carry, or a
hostile one) is scanned, reported and stored: the name is flagged and shown with \\xNN escapes,
the file itself is still read by its real name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium


def _medium(tmp_path: Path) -> Path:
    root = tmp_path / "cd"
    root.mkdir()
    ct = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    with open(os.path.join(os.fsencode(root), b"IMG\xff1.dcm"), "wb") as fh:
        fh.write(ct)
    os.mkdir(os.path.join(os.fsencode(root), b"D\xe9P"))
    with open(os.path.join(os.fsencode(root), b"D\xe9P", b"x.txt"), "wb") as fh:
        fh.write(b"plain text")
    os.symlink(b"/etc/\xfe", os.path.join(os.fsencode(root), b"link\xfd"))
    return root


def test_undecodable_names_are_flagged_and_reported(tmp_path: Path) -> None:
    report = scan_medium(_medium(tmp_path), ScanOptions(workers=1))
    paths = sorted(f.path for f in report.files)
    assert paths == ["D\\xe9P/x.txt", "IMG\\xff1.dcm"]
    dicom = next(f for f in report.files if f.path == "IMG\\xff1.dcm")
    assert dicom.kind == "dicom" and dicom.sha256
    unsafe = [x for x in report.findings if x.check_id == "media.filename-unsafe"]
    assert len(unsafe) >= 3 and all("not valid UTF-8" in x.message for x in unsafe)
    assert report.verdict != Verdict.CLEAN
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")  # no lone surrogates left


def test_cli_records_the_scan_and_writes_json(tmp_path: Path) -> None:
    medium = _medium(tmp_path)
    env = {**os.environ, "RADGUARD_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "radguard.cli", "media", "scan", str(medium),
                             "--format", "json", "-o", str(tmp_path / "r.json")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    data = json.loads((tmp_path / "r.json").read_text("utf-8"))
    assert {f["path"] for f in data["files"]} == {"D\\xe9P/x.txt", "IMG\\xff1.dcm"}
    journal = b"".join(p.read_bytes() for p in (tmp_path / "home" / "audit").rglob("*.log"))
    assert b"110107" in journal  # Data Import audit written
