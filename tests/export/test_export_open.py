"""``export_media`` / ``open_export`` (issue 5): PDI layout, interoperability, integrity, atomicity.

Given real DICOM files of recognisable patients, the encrypted medium carries no patient name or ID
in plaintext, OpenSSL decrypts every file, and ``open`` gives a PDI file-set that pydicom's FileSet
and DCMTK read; a wrong password, a tampered file and a missing file each fail clearly and leave
nothing behind.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.fileset import FileSet

from radguard.audit import AuditEmitter
from radguard.audit.message import AuditMessage
from radguard.config import Settings
from radguard.export import (
    MissingFile,
    OpenOptions,
    TamperedFile,
    TargetExists,
    WeakPassword,
    WrongKey,
    WrongPassword,
    open_export,
)
from tests.export.conftest import PASSWORD, Recipient, Sources
from tests.export.helpers import export, plain_files
from tests.support.peers import require

FILE_ID = re.compile(r"^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?$")


def _phi(sources: Sources) -> list[bytes]:
    return [s.encode() for s in (*sources.names, *sources.ids)] + [
        n.split("^")[0].encode() for n in sources.names]


def _open(medium: Path, out: Path, settings: Settings, **kw: object) -> object:
    return open_export(medium, out, OpenOptions(**kw), settings,  # type: ignore[arg-type]
                       emitter=AuditEmitter.from_settings(settings))


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".radguard-")]


def test_encrypted_folder_layout_has_no_plaintext_phi(tmp_path: Path, sources: Sources,
                                                      settings: Settings,
                                                      recipient: Recipient) -> None:
    result = export(sources, tmp_path / "medium", settings, recipient)
    root = tmp_path / "medium"
    assert result.instances == 5 and result.studies == 4 and result.encrypted
    assert [s.reason for s in result.skipped] == ["not a DICOM PS3.10 file"]
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert {"DICOMDIR", "README.TXT", "INDEX.HTM", "MANIFEST.JSN", "MANIFEST.SIG"} <= set(names)
    for name in names:
        assert all(FILE_ID.match(part) for part in name.split("/")), name
        assert not name.lower().endswith((".exe", ".inf", ".bat", ".js"))
    plain = {p.name for p in plain_files(root)}
    assert plain == {"README.TXT", "INDEX.HTM", "MANIFEST.JSN", "MANIFEST.SIG"}
    for p in plain_files(root):
        data = p.read_bytes()
        for needle in _phi(sources):
            assert needle not in data, (p.name, needle)
    assert b"<script" not in (root / "INDEX.HTM").read_bytes().lower()
    assert b"openssl cms -decrypt" in (root / "README.TXT").read_bytes()
    assert not _leftovers(tmp_path)


def test_openssl_decrypts_every_file_of_the_medium(tmp_path: Path, sources: Sources,
                                                   settings: Settings,
                                                   recipient: Recipient) -> None:
    export(sources, tmp_path / "m", settings, recipient)
    manifest = json.loads((tmp_path / "m" / "MANIFEST.JSN").read_bytes())
    originals = {p.read_bytes() for p in sources.files()}
    decrypted = []
    for entry in manifest["entries"]:
        if not entry["enveloped"]:
            continue
        out = tmp_path / "o"
        r = subprocess.run([require("openssl"), "cms", "-decrypt", "-inform", "DER", "-in",
                            str(tmp_path / "m" / entry["path"]), "-recip", str(recipient.cert),
                            "-inkey", str(recipient.key), "-out", str(out)], capture_output=True)
        assert r.returncode == 0, r.stderr
        decrypted.append(out.read_bytes())
    assert originals <= set(decrypted)  # every source file, byte for byte (+ the DICOMDIR)
    assert len(decrypted) == len(originals) + 1


def test_open_gives_a_pdi_file_set_pydicom_and_dcmtk_read(tmp_path: Path, sources: Sources,
                                                          settings: Settings) -> None:
    export(sources, tmp_path / "m", settings)
    result = _open(tmp_path / "m", tmp_path / "plain", settings, password=PASSWORD)
    plain = tmp_path / "plain"
    fs = FileSet(pydicom.dcmread(plain / "DICOMDIR"))
    assert len(fs) == 5
    loaded = {str(i.load().SOPInstanceUID) for i in fs}
    assert loaded == {str(pydicom.dcmread(p).SOPInstanceUID) for p in sources.files()}
    assert {r for r in (str(p) for p in fs.find_values("PatientID"))} == set(sources.ids)
    dump = subprocess.run([require("dcmdump"), "DICOMDIR"], cwd=plain, capture_output=True,
                          text=True)
    assert dump.returncode == 0 and dump.stdout.count("DirectoryRecordType") >= 5 + 4
    # dcmmkdir in update mode without writing (-w) on a copy: it reads our DICOMDIR (offsets,
    # records) and checks every file (transfer syntax, encoding and resolution checks off: the
    # test files are JPEG 2000, implicit VR...); any W:/E: line is a failure
    check = tmp_path / "check"
    shutil.copytree(plain, check)
    mk = subprocess.run([require("dcmmkdir"), "-w", "+U", "+r", "-Pgp", "+I", "-Nxc", "-Nec",
                         "-Nrc", "DICOM"], cwd=check, capture_output=True, text=True)
    assert mk.returncode == 0, mk.stderr
    complaints = [line for line in (mk.stdout + mk.stderr).splitlines()
                  if re.match(r"[WEF]:", line) and "expected but" not in line
                  and "inventing" not in line]  # about the test files, not the DICOMDIR
    assert complaints == [], mk.stderr
    assert result.files == 5 + 3 and result.encrypted  # DICOM files + DICOMDIR, README, INDEX


def test_iso_image_read_by_isoinfo_and_xorriso_and_opened(tmp_path: Path, sources: Sources,
                                                          settings: Settings) -> None:
    iso = tmp_path / "export.iso"
    result = export(sources, iso, settings, iso=True, media="cd")
    assert result.media[0].path == str(iso) and iso.stat().st_size % 2048 == 0
    listing = subprocess.run([require("isoinfo"), "-l", "-i", str(iso)], capture_output=True,
                             text=True)
    assert listing.returncode == 0 and "DICOMDIR.;1" in listing.stdout
    assert "IM000001.;1" in listing.stdout
    joliet = subprocess.run(["isoinfo", "-J", "-f", "-i", str(iso)], capture_output=True,
                            text=True)
    assert "/DICOM/PA000001/ST000001/SE000001/IM000001" in joliet.stdout.splitlines()
    xo = subprocess.run([require("xorriso"), "-indev", str(iso), "-find", "/", "-type", "f"],
                        capture_output=True, text=True)
    assert "'/README.TXT'" in xo.stdout or "/README.TXT" in xo.stdout
    data = iso.read_bytes()
    for needle in _phi(sources):
        assert needle not in data, needle
    _open(iso, tmp_path / "plain", settings, password=PASSWORD)
    assert len(FileSet(pydicom.dcmread(tmp_path / "plain" / "DICOMDIR"))) == 5


def test_certificate_recipient_opens_with_key(tmp_path: Path, sources: Sources,
                                              settings: Settings, recipient: Recipient) -> None:
    export(sources, tmp_path / "m", settings, recipient, password=None)
    with pytest.raises(WrongPassword):
        _open(tmp_path / "m", tmp_path / "x", settings, password=PASSWORD)
    _open(tmp_path / "m", tmp_path / "p", settings, key_pem=recipient.key.read_bytes(),
          cert_pem=recipient.cert.read_bytes())
    assert (tmp_path / "p" / "DICOMDIR").read_bytes()[128:132] == b"DICM"
    assert not (tmp_path / "x").exists() and not _leftovers(tmp_path)


def test_wrong_password_tampered_and_missing_leave_nothing(tmp_path: Path, sources: Sources,
                                                           settings: Settings) -> None:
    medium = tmp_path / "m"
    export(sources, medium, settings)
    with pytest.raises(WrongPassword) as wrong:
        _open(medium, tmp_path / "o1", settings, password="Wrong-Password-123")
    assert wrong.value.subject  # names the file
    image = next((medium / "DICOM").rglob("IM000001"))
    original = image.read_bytes()
    image.write_bytes(original[:-40] + bytes(40))
    with pytest.raises(TamperedFile, match="SHA-256"):
        _open(medium, tmp_path / "o2", settings, password=PASSWORD)
    image.unlink()
    with pytest.raises(MissingFile, match="missing"):
        _open(medium, tmp_path / "o3", settings, password=PASSWORD)
    image.write_bytes(original)
    body = (medium / "MANIFEST.JSN").read_bytes()
    (medium / "MANIFEST.JSN").write_bytes(body.replace(b'"medium_count":1', b'"medium_count":2'))
    with pytest.raises(TamperedFile, match="signature"):
        _open(medium, tmp_path / "o4", settings, password=PASSWORD)
    (medium / "MANIFEST.JSN").write_bytes(body)
    with pytest.raises(WrongKey, match="encrypted"):
        _open(medium, tmp_path / "o5", settings)
    for name in ("o1", "o2", "o3", "o4", "o5"):
        assert not (tmp_path / name).exists()
    assert not _leftovers(tmp_path)
    (medium / "AUTORUN.INF").write_text("[autorun]\nopen=evil.exe\n")
    result = _open(medium, tmp_path / "ok", settings, password=PASSWORD)
    assert result.ignored == ("AUTORUN.INF",)  # type: ignore[attr-defined]
    assert not (tmp_path / "ok" / "AUTORUN.INF").exists()


def test_refuses_to_overwrite(tmp_path: Path, sources: Sources, settings: Settings) -> None:
    export(sources, tmp_path / "m", settings)
    (tmp_path / "exists").mkdir()
    with pytest.raises(TargetExists):
        _open(tmp_path / "m", tmp_path / "exists", settings, password=PASSWORD)
    with pytest.raises(TargetExists):
        export(sources, tmp_path / "m", settings)
    assert list((tmp_path / "exists").iterdir()) == []


def test_weak_password_refused_before_anything_is_written(tmp_path: Path, sources: Sources,
                                                          settings: Settings) -> None:
    with pytest.raises(WeakPassword):
        export(sources, tmp_path / "m", settings, password="Password1234")
    assert not (tmp_path / "m").exists()


def test_export_is_audited_as_export_to_destination_media(tmp_path: Path, sources: Sources,
                                                          settings: Settings) -> None:
    export(sources, tmp_path / "m", settings, media="cd")
    messages = [AuditMessage.from_xml(x) for x in
                AuditEmitter.from_settings(settings).journal_records()]
    exports = [m for m in messages if m.event.event_id.code == "110106"]
    assert len(exports) == 1
    msg = exports[0]
    media = [p for p in msg.participants if any(c.code == "110154" for c in p.role_codes)]
    assert len(media) == 1 and media[0].media_type is not None
    assert media[0].media_type.code == "110032"
    studies = [o for o in msg.objects if o.type_code == 2]
    assert len(studies) == 4
    assert all(o.life_cycle == 10 and o.encrypted is True for o in studies)
    assert {o.object_id for o in msg.objects if o.type_code == 1} == set(sources.ids)


def test_unencrypted_export_needs_explicit_choice(tmp_path: Path, sources: Sources,
                                                  settings: Settings) -> None:
    from radguard.export import ExportError

    with pytest.raises(ExportError, match="needs --recipient"):
        export(sources, tmp_path / "m", settings, password=None)
    result = export(sources, tmp_path / "p", settings, password=None, encrypt=False)
    assert not result.encrypted
    assert len(FileSet(pydicom.dcmread(tmp_path / "p" / "DICOMDIR"))) == 5
    opened = _open(tmp_path / "p", tmp_path / "o", settings)
    assert not opened.encrypted  # type: ignore[attr-defined]
