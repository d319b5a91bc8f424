"""A package altered in any way is refused, naming the member and the cause (issue 3)."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from radguard.config import load_settings
from radguard.keys import TrustStore, load_station_key
from radguard.media.custody import (
    PackageRefusedDetail,
    canonical_json,
    sign_manifest,
    verify_package,
)
from radguard.media.sanitize import sanitize_medium


@pytest.fixture
def package(settings, options, make_medium, tmp_path) -> Path:
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(make_medium(hostile=False)), out, options)
    return out


def _refusal(package: Path, settings) -> PackageRefusedDetail:
    with pytest.raises(PackageRefusedDetail) as info:
        verify_package(package, TrustStore(settings.home_path, settings.station_name))
    return info.value


def test_an_untouched_package_verifies(package, settings):
    verified = verify_package(package, TrustStore(settings.home_path, settings.station_name))
    assert verified.key_id == load_station_key(settings.home_path, "x").key_id


def test_one_flipped_byte_in_a_file_is_refused_naming_the_file(package, settings):
    target = package / "files" / "000003.dcm"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    exc = _refusal(package, settings)
    assert [(p.name, p.cause) for p in exc.problems] == [("files/000003.dcm", "altered")]
    assert "files/000003.dcm" in str(exc)


def test_a_missing_file_makes_the_package_incomplete(package, settings):
    (package / "files" / "000002.dcm").unlink()
    exc = _refusal(package, settings)
    assert ("files/000002.dcm", "incomplete") in [(p.name, p.cause) for p in exc.problems]


def test_an_added_file_is_refused(package, settings):
    shutil.copy(package / "files" / "000001.dcm", package / "files" / "000099.dcm")
    exc = _refusal(package, settings)
    assert [(p.name, p.cause) for p in exc.problems] == [("files/000099.dcm", "unexpected-file")]


def test_a_symlink_in_the_package_is_refused(package, settings, tmp_path):
    (tmp_path / "elsewhere").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere", package / "files" / "000098.dcm")
    exc = _refusal(package, settings)
    assert ("files/000098.dcm", "unexpected-file") in [(p.name, p.cause) for p in exc.problems]


def test_an_edited_manifest_breaks_the_signature(package, settings):
    manifest = json.loads((package / "manifest.json").read_bytes())
    manifest["operator"] = "someone else"
    (package / "manifest.json").write_bytes(canonical_json(manifest))
    exc = _refusal(package, settings)
    assert exc.causes == {"bad-signature"}


def test_a_re_hashed_file_with_edited_manifest_is_still_refused(package, settings):
    import hashlib

    target = package / "files" / "000001.dcm"
    data = target.read_bytes() + b"\0\0"
    target.write_bytes(data)
    manifest = json.loads((package / "manifest.json").read_bytes())
    manifest["files"][0].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    (package / "manifest.json").write_bytes(canonical_json(manifest))
    assert _refusal(package, settings).causes == {"bad-signature"}


def test_a_package_re_signed_by_an_unknown_key_is_refused(package, settings, tmp_path):
    other = load_station_key(tmp_path / "intruder", "intruder")
    manifest = json.loads((package / "manifest.json").read_bytes())
    manifest["key_id"] = other.key_id
    data = canonical_json(manifest)
    (package / "manifest.json").write_bytes(data)
    (package / "manifest.sig").write_bytes(sign_manifest(data, other))
    exc = _refusal(package, settings)
    assert exc.causes == {"unknown-key"}
    assert other.key_id in str(exc)


def test_an_unsigned_package_is_refused(package, settings):
    (package / "manifest.sig").unlink()
    assert _refusal(package, settings).causes == {"unsigned"}


def test_a_garbled_signature_is_refused(package, settings):
    (package / "manifest.sig").write_bytes(b"{not json")
    assert _refusal(package, settings).causes == {"unsigned"}


def test_a_missing_manifest_is_refused(package, settings):
    (package / "manifest.json").unlink()
    assert _refusal(package, settings).causes == {"incomplete"}


def test_a_trusted_key_from_another_station_is_accepted(package, settings, tmp_path):
    # Given the networked side with its own home, trusting the media station's exported key
    networked = load_settings(environ={"RADGUARD_HOME": str(tmp_path / "net")}, station="pacs-gw")
    store = TrustStore(networked.home_path, networked.station_name)
    with pytest.raises(PackageRefusedDetail) as info:
        verify_package(package, store)
    assert info.value.causes == {"unknown-key"}
    exported = tmp_path / "media.pub"
    exported.write_text(load_station_key(settings.home_path, settings.station_name).public_text)
    store.trust(exported)
    assert verify_package(package, store).station == "media-station"


def test_a_tar_with_a_traversal_member_is_refused(package, settings, tmp_path):
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for name in ("manifest.json", "manifest.sig"):
            tar.add(package / name, arcname=name)
        for f in sorted((package / "files").iterdir()):
            tar.add(f, arcname=f"files/{f.name}")
        tar.add(package / "files" / "000001.dcm", arcname="../../etc/evil")
    exc = _refusal(bad, settings)
    assert ("../../etc/evil", "unexpected-file") in [(p.name, p.cause) for p in exc.problems]
