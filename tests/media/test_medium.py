"""Medium-level checks: DICOMDIR references, links, special files, identity, ISO images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet

from radguard.errors import MediumUnreadable
from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium
from radguard.samples import hostile
from radguard.samples.demo import build_iso
from tests.conftest import PYDICOM_TEST_FILES

REAL = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm"]


def _pdi(tmp_path: Path) -> Path:
    """A small PDI medium written by pydicom's FileSet from real files."""
    out = tmp_path / "pdi"
    fs = FileSet()
    for name in REAL:
        fs.add(str(PYDICOM_TEST_FILES / name))
    fs.write(str(out))
    return out


def _ids(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.check_id for f in report.findings}


def test_clean_pdi_medium_is_clean(tmp_path: Path) -> None:
    report = scan_medium(_pdi(tmp_path), ScanOptions(workers=1))
    assert report.verdict == Verdict.CLEAN, [f.to_dict() for f in report.findings]
    assert report.counts["dicomdir"] == 1
    assert report.counts["dicom"] == len(REAL)


def _rewrite_dicomdir(medium: Path, edit) -> None:  # type: ignore[no-untyped-def]
    ds = pydicom.dcmread(medium / "DICOMDIR")
    edit(ds)
    ds.save_as(medium / "DICOMDIR", enforce_file_format=True)


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # the hostile value is the point
def test_dicomdir_reference_that_escapes_is_reported(tmp_path: Path) -> None:
    medium = _pdi(tmp_path)

    def edit(ds):  # type: ignore[no-untyped-def]
        for rec in ds.DirectoryRecordSequence:
            if "ReferencedFileID" in rec:
                rec.ReferencedFileID = ["..", "..", "ETC", "PASSWD"]
                break

    _rewrite_dicomdir(medium, edit)
    report = scan_medium(medium, ScanOptions(workers=1))
    assert "dicomdir.reference-escapes" in _ids(report)
    assert report.verdict >= Verdict.SUSPICIOUS


def test_dicomdir_missing_and_unlisted_files(tmp_path: Path) -> None:
    medium = _pdi(tmp_path)
    listed = sorted(p for p in medium.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    listed[0].unlink()
    shutil.copyfile(PYDICOM_TEST_FILES / "CT_small.dcm", medium / "EXTRA")
    (medium / "EXTRA").rename(medium / "EXTRA.DCM")
    ds = pydicom.dcmread(medium / "EXTRA.DCM")
    ds.SOPInstanceUID = "2.25.4242"
    ds.file_meta.MediaStorageSOPInstanceUID = "2.25.4242"
    ds.save_as(medium / "EXTRA.DCM")
    report = scan_medium(medium, ScanOptions(workers=1))
    ids = _ids(report)
    assert "dicomdir.missing-file" in ids
    assert "dicomdir.unlisted-file" in ids
    unlisted = [f for f in report.findings if f.check_id == "dicomdir.unlisted-file"]
    assert [f.evidence.path for f in unlisted] == ["EXTRA.DCM"]


def test_dicomdir_uid_mismatch(tmp_path: Path) -> None:
    medium = _pdi(tmp_path)

    def edit(ds):  # type: ignore[no-untyped-def]
        for rec in ds.DirectoryRecordSequence:
            if "ReferencedSOPInstanceUIDInFile" in rec:
                rec.ReferencedSOPInstanceUIDInFile = "2.25.1"
                break

    _rewrite_dicomdir(medium, edit)
    assert "dicomdir.uid-mismatch" in _ids(scan_medium(medium, ScanOptions(workers=1)))


def test_links_and_special_files_are_reported_not_followed(tmp_path: Path) -> None:
    medium = tmp_path / "usb"
    medium.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("outside the medium")
    (medium / "link").symlink_to(outside)
    os.mkfifo(medium / "pipe")
    (medium / "ok.dcm").write_bytes(hostile.base_file())
    report = scan_medium(medium, ScanOptions(workers=1))
    ids = _ids(report)
    assert {"media.symlink", "media.special-file"} <= ids
    assert {f.path for f in report.files} == {"ok.dcm"}
    assert report.verdict == Verdict.SUSPICIOUS


def test_study_with_two_patients_is_suspicious(tmp_path: Path) -> None:
    medium = tmp_path / "m"
    medium.mkdir()
    (medium / "a.dcm").write_bytes(hostile.base_file(hostile.explicit_le(uid_suffix="1"),
                                                     uid_suffix="1"))
    (medium / "b.dcm").write_bytes(hostile.base_file(
        hostile.explicit_le(uid_suffix="2", patient_id="OTHER-9", patient_name="OTHER^PERSON"),
        uid_suffix="2"))
    report = scan_medium(medium, ScanOptions(workers=1))
    finding = next(f for f in report.findings if f.check_id == "study.identity-mismatch")
    assert "Patient ID" in finding.message and "Patient's Name" in finding.message
    text = str(report.to_dict())
    assert "OTHER^PERSON" not in text and "OTHER-9" not in text  # no PHI in the report


def test_iso_image_scans_like_the_folder(tmp_path: Path) -> None:
    medium = _pdi(tmp_path)
    (medium / "EVIL.DCM").write_bytes(hostile.pe_polyglot())
    iso = build_iso(medium, tmp_path / "disc.iso")
    folder = scan_medium(medium, ScanOptions(workers=1))
    image = scan_medium(iso, ScanOptions(workers=2))
    assert image.medium_kind == "iso"
    assert sorted((f.path, f.sha256, f.verdict) for f in image.files) == \
        sorted((f.path, f.sha256, f.verdict) for f in folder.files)


def test_unreadable_medium_is_an_error_with_remedy(tmp_path: Path) -> None:
    with pytest.raises(MediumUnreadable) as info:
        scan_medium(tmp_path / "nope")
    assert info.value.remedy


def test_other_files_executables_scripts_and_active_content(tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    medium.mkdir()
    (medium / "autorun.inf").write_text("[AutoRun]\nopen=setup.exe\n")
    (medium / "setup.exe").write_bytes(b"MZ" + bytes(200))
    (medium / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (medium / "viewer.lnk").write_bytes(bytes.fromhex("4c0000000114020000000000c000000000000046")
                                        + bytes(60))
    (medium / "index.htm").write_text("<html><body onload=\"x()\">hi</body></html>")
    (medium / "report.pdf").write_bytes(b"%PDF-1.7\n<< /OpenAction << /S /Launch /F (cmd) >> >>\n")
    (medium / "plain.pdf").write_bytes(b"%PDF-1.7\n<< /Type /Catalog >>\n%%EOF\n")
    (medium / "README.TXT").write_text("hello")
    report = scan_medium(medium, ScanOptions(workers=1))
    by = {f.path: f for f in report.files}
    assert by["autorun.inf"].verdict == Verdict.DANGEROUS
    assert "media.executable-file" in {x.check_id for x in by["setup.exe"].findings}
    assert "media.script-file" in {x.check_id for x in by["run.sh"].findings}
    assert "media.shortcut-file" in {x.check_id for x in by["viewer.lnk"].findings}
    assert "media.html-script" in {x.check_id for x in by["index.htm"].findings}
    assert "media.pdf-script" in {x.check_id for x in by["report.pdf"].findings}
    assert by["plain.pdf"].verdict == Verdict.CLEAN
    assert by["README.TXT"].verdict == Verdict.CLEAN
