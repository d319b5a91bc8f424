"""Real files through every option, readable afterwards by pydicom and DCMTK; the CLI end to end."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from radguard.audit import ActionCode, AuditMessage, read_journal
from radguard.deid import DeidOptions, FileStatus, Option, deidentify_file, deidentify_tree
from radguard.deid.verify import verify_file
from tests.support.peers import require

KEY = b"files-test-key-0123456789abcdef!"
REAL = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
        "rtplan.dcm", "rtstruct.dcm", "rtdose.dcm", "test-SR.dcm", "reportsi.dcm", "US1_UNCR.dcm",
        "SC_rgb.dcm", "JPEG2000.dcm", "emri_small.dcm", "waveform_ecg.dcm", "examples_overlay.dcm",
        "liver_1frame.dcm", "nested_priv_SQ.dcm", "priv_SQ.dcm", "image_dfl.dcm"]
ALL_OPTIONS = [o.value for o in Option if o != Option.RETAIN_FULL_DATES]
OPTION_SETS = [[], *[[o.value] for o in Option], ALL_OPTIONS,
               [o for o in ALL_OPTIONS if o != "retain-long-modified-dates"] + ["retain-long-full-dates"],
               ["tcia"], ["research"], ["teaching"], ["ai-vendor"]]


def _real_folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    (src / "study" / "series").mkdir(parents=True)
    for name in REAL:
        path = pydicom.data.get_testdata_file(name)
        if path is not None:
            shutil.copy(path, src / "study" / "series" / name)
    (src / "notes.txt").write_text("not dicom")
    (src / "hostile.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\xff")
    return src


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def real_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _real_folder(tmp_path_factory.mktemp("real"))


@pytest.mark.parametrize("names", OPTION_SETS, ids=lambda n: "+".join(n) or "basic")
def test_real_files_stay_readable_by_pydicom_and_dcmtk(real_input: Path, tmp_path: Path,
                                                        names: list[str]) -> None:
    dcmdump = require("dcmdump")
    before = _digest(real_input)
    options = DeidOptions.from_names(names, key=KEY, ocr=False)
    report = deidentify_tree(real_input, tmp_path / "out", options, workers=1)
    assert _digest(real_input) == before  # the input is never modified
    statuses = {Path(f.source).name: f.status for f in report.files}
    assert statuses["notes.txt"] == FileStatus.REFUSED
    assert statuses["hostile.dcm"] == FileStatus.REFUSED
    outputs = [Path(f.output) for f in report.files if f.output]
    assert len(outputs) >= len(REAL) - 2
    for out in outputs:
        assert out.relative_to(tmp_path / "out").parts[:2] == ("study", "series")
        ds = pydicom.dcmread(out)
        assert ds.PatientIdentityRemoved == "YES"
        assert "113100" in {i.CodeValue for i in ds.DeidentificationMethodCodeSequence}
    proc = subprocess.run([dcmdump, "-q", *map(str, outputs)], capture_output=True, text=True,
                          errors="replace", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "E: " not in proc.stderr


def test_verify_finds_nothing_in_outputs_and_residuals_in_originals(real_input: Path,
                                                                    tmp_path: Path) -> None:
    options = DeidOptions.from_names([], key=KEY)
    report = deidentify_tree(real_input, tmp_path / "out", options, workers=2)
    done = [f for f in report.files if f.ok]
    for f in done:
        assert verify_file(Path(f.output or ""), Path(f.source)) == [], f.source
    original = real_input / "study" / "series" / "CT_small.dcm"
    checks = {x.check_id for x in verify_file(original, original)}
    assert {"deid.not-marked", "deid.private-element", "deid.residual-date",
            "deid.residual-original-value"} <= checks


def test_single_file_gives_single_file_and_rename(tmp_path: Path) -> None:
    src = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    options = DeidOptions.from_names([], key=KEY, rename=True)
    report = deidentify_file(src, tmp_path / "one.dcm", options)
    assert report.status == FileStatus.DEIDENTIFIED
    assert Path(report.output or "").name.startswith("2.25.")
    plain = deidentify_file(src, tmp_path / "two.dcm", DeidOptions.from_names([], key=KEY))
    assert plain.output == str(tmp_path / "two.dcm") and (tmp_path / "two.dcm").exists()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from radguard.cli import main; main()", *args],
                          capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_cli_deid_then_verify_and_audit(real_input: Path, tmp_path: Path,
                                        radguard_home: Path) -> None:
    out = tmp_path / "out"
    proc = _cli("deid", str(real_input), "--out", str(out), "--retain-safe-private",
                "--preset", "tcia", "-f", "json", "--workers", "2")
    assert proc.returncode == 1, proc.stderr  # non-DICOM and hostile inputs are reported
    data = json.loads(proc.stdout)
    assert data["counts"]["refused"] == 2 and data["counts"]["failed"] == 0
    assert "retain-safe-private" in data["options"] and data["preset"] == "tcia"
    first = next(f for f in data["files"] if f["status"] == "deidentified")
    assert {"path", "name", "action", "reason"} <= set(first["changes"][0])
    ok = _cli("deid", "verify", str(out), "--original", str(real_input))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _cli("deid", "verify", str(real_input / "study"))
    assert bad.returncode == 1 and "deid.not-marked" in bad.stdout
    messages = [AuditMessage.from_xml(xml) for log in (radguard_home / "audit").rglob("*.log")
                for xml in read_journal(log)]
    deid = [m for m in messages if m.event.event_id.code == "110103"]
    assert deid and deid[-1].event.action == ActionCode.CREATE
    studies = [o for o in deid[-1].objects if o.type_code == 2]
    assert studies and all(o.life_cycle == 7 and o.anonymized for o in studies)
    assert (radguard_home / "keys" / "deid-project.key").stat().st_mode & 0o077 == 0
    key = (radguard_home / "keys" / "deid-project.key").read_bytes()
    assert key.hex() not in proc.stdout + proc.stderr
