"""STOW-RS import into an Orthanc that requires HTTP basic authentication (issue 3 review).

Orthanc runs with ``AuthenticationEnabled`` and one ``RegisteredUsers`` account. The destination
gives the user name in the query and the password through ``RADGUARD_DEST_PASSWORD`` (credentials
never in the URL, see radguard.importer.destination). The right password imports and QIDO-RS
confirms every instance; a wrong one stops with a clear error naming HTTP 401 and the credentials,
Orthanc holds nothing and the journal records no instance as sent or confirmed; the same package
imports completely afterwards with the right password.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from radguard.importer import DestinationUnavailable, ImportOptions, import_package
from radguard.media.sanitize import sanitize_medium
from tests.custody.test_import import _series_medium
from tests.support.peers import running, start_orthanc

USER, PASSWORD = "importer", "s3cret-Import-pw"
AUTH = {"AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD}}


@pytest.fixture
def package(settings, options, tmp_path) -> Path:
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", 6)), out, options)
    return out


def _count(orthanc) -> int:
    return int(orthanc.rest("/statistics", auth=(USER, PASSWORD))["CountInstances"])


def _journal_states(settings) -> list[str]:
    folder = settings.home_path / "import" / "journal"
    if not folder.exists():
        return []
    return [json.loads(line)["state"] for p in folder.iterdir()
            for line in p.read_text().splitlines() if line.strip()]


def test_wrong_password_is_a_clear_error_and_nothing_is_half_recorded(settings, package, tmp_path,
                                                                      monkeypatch):
    with running(start_orthanc(tmp_path / "orthanc", overrides=AUTH)) as orthanc:
        # the server really requires the credentials
        assert httpx.get(f"{orthanc.url}/statistics", timeout=10).status_code == 401
        to = f"{orthanc.dicomweb}?username={USER}"
        monkeypatch.setenv("RADGUARD_DEST_PASSWORD", "not-the-password")
        with pytest.raises(DestinationUnavailable) as info:
            import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert "401" in info.value.message and "credentials" in (info.value.remedy or "")
        assert "not-the-password" not in str(info.value) + (info.value.remedy or "")
        assert _count(orthanc) == 0
        assert not {"sent", "confirmed"} & set(_journal_states(settings))

        monkeypatch.setenv("RADGUARD_DEST_PASSWORD", PASSWORD)
        report = import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert report.complete and report.counts["confirmed"] == 6
        assert report.sent_this_run == 6
        assert _count(orthanc) == 6  # ground truth: Orthanc's index
    assert _journal_states(settings).count("confirmed") == 6


def test_right_password_from_a_destination_profile(settings, package, tmp_path, monkeypatch):
    """A named profile in the config file carries the user name and password."""
    from radguard.config import load_settings

    with running(start_orthanc(tmp_path / "orthanc", overrides=AUTH)) as orthanc:
        config = tmp_path / "radguard.toml"
        config.write_text(f'[destinations.research-pacs]\nurl = "{orthanc.dicomweb}"\n'
                          f'username = "{USER}"\npassword = "{PASSWORD}"\n')
        monkeypatch.delenv("RADGUARD_DEST_PASSWORD", raising=False)
        with_profile = load_settings(environ={"RADGUARD_HOME": str(settings.home_path),
                                              "RADGUARD_CONFIG": str(config)},
                                     station=settings.station_name, operator="tech1")
        report = import_package(with_profile, package, "research-pacs",
                                ImportOptions(keep_ids=True))
        assert report.complete and report.counts["confirmed"] == 6
        assert _count(orthanc) == 6
