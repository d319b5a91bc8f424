"""Station keys (0600, refused when exposed) and quarantine release/purge (explicit, audited)."""

from __future__ import annotations

import os
import stat

import pytest

from radguard.keys import KeyFileUnsafe, KeyStoreError, TrustStore, load_station_key
from radguard.media.sanitize import sanitize_medium
from radguard.quarantine import QuarantineError, QuarantineStore, purge, release


def test_station_key_is_created_once_with_private_permissions(settings):
    key = load_station_key(settings.home_path, settings.station_name)
    path = settings.home_path / "keys" / "station-ed25519.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    again = load_station_key(settings.home_path, settings.station_name)
    assert again.key_id == key.key_id and "PRIVATE" not in repr(again)
    own = TrustStore(settings.home_path, settings.station_name).keys()
    assert [(k.key_id, k.source) for k in own] == [(key.key_id, "own")]


def test_an_exposed_private_key_is_refused(settings):
    load_station_key(settings.home_path, settings.station_name)
    path = settings.home_path / "keys" / "station-ed25519.pem"
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileUnsafe, match="chmod 600"):
        load_station_key(settings.home_path, settings.station_name)


def test_trusting_garbage_is_refused(settings, tmp_path):
    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-rsa AAAA not ours\n")
    with pytest.raises(KeyStoreError, match="not a RadGuard public key"):
        TrustStore(settings.home_path, "x").trust(bad)


def test_release_and_purge_need_a_reason_and_are_audited(settings, options, make_medium,
                                                         tmp_path):
    report = sanitize_medium(settings, str(make_medium()), tmp_path / "pkg", options)
    poly = next(f for f in report.files if f.path == "DICOM/POLY0001")
    store = QuarantineStore(settings.home_path)
    with pytest.raises(QuarantineError, match="reason"):
        release(settings, poly.sha256[:12], tmp_path / "out", operator="admin", reason=" ")
    done = release(settings, poly.sha256[:12], tmp_path / "out", operator="admin",
                   reason="vendor analysis of the polyglot")
    assert done.path.read_bytes()[:2] == b"MZ"
    assert store.get(poly.sha256).state == "released"
    assert store.object_path(poly.sha256).exists()  # a release never removes the original
    with pytest.raises(QuarantineError, match="exists"):
        release(settings, poly.sha256, tmp_path / "out", operator="admin", reason="again")
    purge(settings, poly.sha256, operator="admin", reason="analysed and kept offline")
    assert not store.object_path(poly.sha256).exists()
    with pytest.raises(QuarantineError):
        store.get(poly.sha256)
    from tests.custody.test_sanitize import _journal

    journal = _journal(settings)
    assert journal.count('csd-code="110132"') >= 2
