"""media sanitize: rebuild, exclude, quarantine, sign (issue 3, offline half)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import os
import stat

import pydicom
import pytest

from radguard.audit.emitter import read_journal
from radguard.dicomio import ReadLimits, walk
from radguard.dicomio.source import MemorySource
from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID
from radguard.errors import MediaError
from radguard.keys import TrustStore
from radguard.media.custody import verify_package
from radguard.media.sanitize import sanitize_medium
from radguard.quarantine import QuarantineStore


def _journal(settings) -> str:
    folder = settings.home_path / "audit" / "journal"
    return "".join(r.decode() for p in sorted(folder.glob("*.log")) for r in read_journal(p))


def test_sanitize_rebuilds_clean_files_and_holds_the_rest(settings, options, make_medium,
                                                          tmp_path):
    # Given a medium with real files, a TIFF-preamble file, a polyglot, trailing data and autorun
    medium = make_medium()
    out = tmp_path / "pkg"
    # When it is sanitised
    report = sanitize_medium(settings, str(medium), out, options)
    # Then the clean DICOM files are packaged, rebuilt
    by_path = {f.path: f for f in report.files}
    packaged = {p for p, f in by_path.items() if f.disposition == "packaged"}
    assert packaged == {f"DICOM/IM{i:04d}" for i in range(5)} | {"DICOM/PRIV0001",
                                                                   "DICOM/TIFF0001"}
    assert by_path["DICOM/POLY0001"].reason.startswith("dangerous")
    assert by_path["DICOM/TRAIL001"].reason.startswith("suspicious")
    assert by_path["autorun.inf"].quarantined and by_path["autorun.inf"].disposition == "excluded"
    assert by_path["README.TXT"].reason == "not DICOM" and not by_path["README.TXT"].quarantined
    verified = verify_package(out, TrustStore(settings.home_path, settings.station_name))
    manifest = verified.manifest
    assert len(manifest.files) == 7 and manifest.station == "media-station"
    assert manifest.medium["scan_id"] == report.scan.scan_id
    for entry in manifest.files:
        data = (out / entry.name).read_bytes()
        assert data[:128] == bytes(128) and data[128:132] == b"DICM"
        result = walk(MemorySource(data), ReadLimits())
        assert result.completed and not result.problems and result.trailing_length == 0
        assert result.meta[0x00020012] == IMPLEMENTATION_CLASS_UID
        original = (medium / entry.original_path).read_bytes()
        assert data != original  # rebuilt, not copied
    tiff = next(e for e in manifest.files if e.original_path == "DICOM/TIFF0001")
    assert any("preamble" in c for c in tiff.changes)
    # the dangerous original is in quarantine, read-only, with its reasons
    store = QuarantineStore(settings.home_path)
    poly = store.get(by_path["DICOM/POLY0001"].sha256)
    assert poly.verdict == "dangerous"
    assert any("media.preamble-executable" in r for r in poly.sightings[0].reasons)
    assert poly.sightings[0].scan_id == report.scan.scan_id
    mode = os.stat(store.object_path(poly.sha256)).st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    # the medium is untouched and the export was audited
    assert (medium / "DICOM" / "POLY0001").read_bytes()[:2] == b"MZ"
    journal = _journal(settings)
    assert 'csd-code="110106"' in journal and report.package_id in journal


@pytest.mark.parametrize(("policy", "kept", "gone"), [("none", set(), {0x23, 0x77}),
                                                      ("safe", {0x23}, {0x77}),
                                                      ("all", {0x23, 0x77}, set())])
def test_private_elements_follow_the_policy(settings, scan_options, make_medium, tmp_path,
                                            policy, kept, gone):
    medium = make_medium(hostile=False)
    options = dataclasses.replace(
        __import__("radguard.media.sanitize", fromlist=["x"]).SanitizeOptions(scan=scan_options),
        keep_private=policy)
    out = tmp_path / f"pkg-{policy}"
    sanitize_medium(settings, str(medium), out, options)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["original_path"] == "DICOM/PRIV0001")
    ds = pydicom.dcmread(io.BytesIO((out / entry["name"]).read_bytes()))
    found = set()
    for elem in ds:
        if elem.tag.group == 0x0019 and elem.tag.element >= 0x1000:
            found.add(elem.tag.element & 0xFF)
    assert kept <= found and not gone & found
    if policy == "none":
        assert not any(elem.tag.is_private for elem in ds)
    if policy == "safe":  # everything kept is in PS3.15 Table E.3.10-1
        from radguard.media.custody.rebuild import safe_private_table

        assert all((0x0019, "GEMS_ACQU_01", e) in safe_private_table() for e in found)
    assert manifest["policy"]["keep_private"] == policy


def test_suspicious_needs_a_named_override(settings, scan_options, make_medium, tmp_path):
    from radguard.media.sanitize import SanitizeOptions

    medium = make_medium()
    with pytest.raises(MediaError, match="operator"):
        sanitize_medium(settings, str(medium), tmp_path / "x",
                        SanitizeOptions(scan=scan_options, allow_suspicious=True))
    assert not (tmp_path / "x").exists()
    options = SanitizeOptions(scan=scan_options, allow_suspicious=True,
                              override_operator="Dr Who", override_reason="only copy of prior CT")
    report = sanitize_medium(settings, str(medium), tmp_path / "pkg", options)
    trail = next(f for f in report.files if f.path == "DICOM/TRAIL001")
    assert trail.disposition == "packaged"
    assert any("trailing bytes" in c for c in trail.changes)
    assert any("Dr Who" in c for c in trail.changes)
    poly = next(f for f in report.files if f.path == "DICOM/POLY0001")
    assert poly.disposition == "excluded"  # dangerous: never, whatever the override
    manifest = json.loads((tmp_path / "pkg" / "manifest.json").read_text())
    assert manifest["policy"]["override"] == {"operator": "Dr Who",
                                              "reason": "only copy of prior CT"}
    journal = _journal(settings)
    assert base64.b64encode(b"reason: only copy of prior CT").decode() in journal
    assert 'UserID="Dr Who"' in journal and 'csd-code="110113"' in journal


def test_archive_package_verifies_and_target_is_never_overwritten(settings, options,
                                                                  make_medium, tmp_path):
    medium = make_medium(hostile=False)
    out = tmp_path / "pkg.tar"
    sanitize_medium(settings, str(medium), out, dataclasses.replace(options, archive=True))
    assert out.is_file()
    verified = verify_package(out, TrustStore(settings.home_path, settings.station_name))
    assert len(verified.manifest.files) == 7
    with pytest.raises(MediaError, match="exists already"):
        sanitize_medium(settings, str(medium), out, options)


def test_the_package_carries_no_patient_identifiers(settings, options, make_medium, tmp_path):
    medium = make_medium(hostile=False)
    sanitize_medium(settings, str(medium), tmp_path / "pkg", options)
    text = (tmp_path / "pkg" / "manifest.json").read_text()
    ds = pydicom.dcmread(medium / "DICOM" / "IM0000")
    assert str(ds.PatientName) not in text and str(ds.PatientID) not in text
