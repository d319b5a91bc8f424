"""The shared core: settings precedence, findings round trip, error messages, public surface."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import radguard
from radguard.config import SETTINGS, Settings, load_settings
from radguard.errors import ConfigError, LimitExceeded, RadGuardError
from radguard.findings import ControlRef, Evidence, Finding, Severity, Verdict, worst


def test_public_surface_is_explicit() -> None:
    assert sorted(radguard.__all__) == sorted(
        ["ControlRef", "Evidence", "Finding", "RadGuardError", "Severity", "Verdict", "__version__"])
    for name in radguard.__all__:
        assert hasattr(radguard, name)


def test_settings_precedence_default_file_env_option(tmp_path: Path) -> None:
    cfg = tmp_path / "radguard.toml"
    cfg.write_text('station = "from-file"\nworkers = 3\nmax_depth = 10\n[destinations.pacs]\n'
                   'url = "dimse://PACS@127.0.0.1:4242"\n')
    env = {"RADGUARD_HOME": str(tmp_path), "RADGUARD_WORKERS": "5"}
    s = load_settings(None, env, max_depth=None, operator="alice")
    assert s.station == "from-file"  # file, found in RADGUARD_HOME
    assert s.workers == 5  # environment beats file
    assert s.max_depth == 10  # file beats default; None option ignored
    assert s.operator_name == "alice"  # option
    assert s.section("destinations")["pacs"]["url"].startswith("dimse://")
    assert s.db_url == f"sqlite:///{tmp_path / 'radguard.db'}"


def test_every_setting_is_declared_with_help() -> None:
    names = {d.name for d in SETTINGS}
    assert names == {f for f in Settings.__dataclass_fields__ if f != "extra"}
    assert all(d.help for d in SETTINGS)


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("workers = 'many'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, {})
    assert "workers" in str(info.value) and info.value.remedy
    cfg.write_text("this is = = not toml")
    with pytest.raises(ConfigError) as info2:
        load_settings(cfg, {})
    assert info2.value.subject == str(cfg)


def test_finding_json_round_trip() -> None:
    f = Finding("media.trailing-data", Severity.MEDIUM, "12 bytes after the data set",
                Evidence("a/b.dcm", 1024, {"length": 12}),
                (ControlRef("NIST-CSF-2.0", "DE.CM-09"),), "review", "medium-1")
    assert Finding.from_dict(f.to_dict()) == f
    assert f.to_dict()["offset"] == 1024


def test_verdicts_and_severities_order() -> None:
    assert worst([Verdict.CLEAN, Verdict.DANGEROUS, Verdict.SUSPICIOUS]) == Verdict.DANGEROUS
    assert worst([]) == Verdict.CLEAN
    assert max(Severity) == Severity.CRITICAL
    with pytest.raises(ValueError):
        Severity.parse("catastrophic")


def test_errors_say_what_to_what_and_what_next() -> None:
    exc = LimitExceeded("too deep", limit="max_depth", subject="x.dcm", offset=10)
    assert isinstance(exc, RadGuardError)
    text = str(exc)
    assert "x.dcm" in text and "too deep" in text and "max_depth" in text
    assert exc.offset == 10


def test_scan_audit_goes_to_a_syslog_repository(tmp_path: Path) -> None:
    """With a repository configured, the scan's audit messages arrive over UDP (RFC 5426)."""
    from radguard.dicomio import ReadLimits
    from radguard.media.jobs import run_scan
    from radguard.media.scan import ScanOptions
    from radguard.samples import hostile

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    port = sock.getsockname()[1]
    medium = tmp_path / "m"
    medium.mkdir()
    (medium / "x.dcm").write_bytes(hostile.pe_polyglot())
    settings = load_settings(None, {"RADGUARD_HOME": str(tmp_path / "home")},
                             audit_syslog=f"udp://127.0.0.1:{port}", station="st1")
    report = run_scan(settings, str(medium), ScanOptions(workers=1, limits=ReadLimits()))
    assert report.verdict == Verdict.DANGEROUS
    got = [sock.recv(65535), sock.recv(65535)]
    sock.close()
    assert all(g.startswith(b"<85>1 ") for g in got)
    assert b"110107" in got[0] and b"110113" in got[1]
