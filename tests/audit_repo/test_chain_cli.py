"""The hash chain names the first tampered record; the ``radguard audit`` commands give the
documented JSON; RadGuard's own emitter writes straight into the repository."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.audit_repo.messages import every_a53_message, one_line, syslog
from typer.testing import CliRunner

from radguard.audit import AuditEmitter, builders
from radguard.audit.repository import (
    AlertSink,
    Detector,
    LocalRepository,
    RecordWriter,
    builtin_pack,
    parse_message,
    verify,
)
from radguard.cli import app
from radguard.store import Store, findings_for_scan

NOW = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)


def _fill(url: str, n: int = 5) -> list[int]:
    msgs = list(every_a53_message().values())[:n]
    with Store.open(url) as store:
        parsed = [parse_message(syslog(m), transport="tcp", peer="10.0.0.5", received_at=NOW)
                  for m in msgs]
        return RecordWriter(store).append(parsed)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RADGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RADGUARD_STATION", "test-station")
    monkeypatch.setenv("RADGUARD_OPERATOR", "tester")
    return tmp_path / "home"


def _url(home: Path) -> str:
    return f"sqlite:///{home / 'radguard.db'}"


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "radguard.db")


@pytest.mark.parametrize("tamper, broken", [
    ("UPDATE audit_records SET raw = raw || x'20' WHERE id = 3", 3),
    ("UPDATE audit_records SET outcome = 12 WHERE id = 2", 2),
    ("DELETE FROM audit_records WHERE id = 4", 5),
])
def test_verify_names_the_first_broken_record(home: Path, tamper: str, broken: int) -> None:
    _fill(_url(home))
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    with _db(home) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(tamper)
    result = runner.invoke(app, ["audit", "verify", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_broken"] == broken
    assert f"record {broken}" in report["problem"]


def test_search_json_has_the_documented_fields(home: Path) -> None:
    _fill(_url(home), 15)
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "search", "--event-id", "110112", "--format", "json"])
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.stdout)
    assert set(record) >= {"received_at", "source", "event_id", "event_type_codes", "outcome",
                           "participants", "participant_objects", "validity"}
    assert record["event_id"]["code"] == "110112" and record["validity"] == "valid"
    assert record["participant_objects"][0]["query"] == "(0010,0020)=P-1*"  # base64 decoded
    assert record["source"]["peer"] == "10.0.0.5"
    by_patient = json.loads(runner.invoke(app, ["audit", "search", "--patient", "P-1",
                                                "--format", "json"]).stdout)
    assert len(by_patient) == 8 and all(r["participant_objects"] for r in by_patient)
    by_study = runner.invoke(app, ["audit", "search", "--study",
                                   "1.2.826.0.1.3680043.8.498.1", "--user", "bob",
                                   "--outcome", "success", "--format", "jsonl"])
    assert len(by_study.stdout.splitlines()) == 4  # export, import, accessed, deleted
    table = runner.invoke(app, ["audit", "search", "--since", "36500d", "--limit", "3"])
    assert table.exit_code == 0 and "110" in table.stdout


def test_reading_the_log_is_audited(home: Path) -> None:
    _fill(_url(home), 2)
    CliRunner().invoke(app, ["audit", "search", "--format", "json"])
    journal = (home / "audit" / "journal").glob("*.log")
    text = b"".join(p.read_bytes() for p in journal)
    assert b'csd-code="110101"' in text  # Audit Log Used, PS3.15 A.5.3.2


def test_alerts_become_findings_log_lines_and_json(home: Path) -> None:
    url = _url(home)
    fails = [builders.user_authentication("login", user="admin", station="ws1", outcome=8,
                                          when=NOW) for _ in range(11)]
    with Store.open(url) as store:
        parsed = [parse_message(syslog(m), transport="udp", peer="10.0.0.7", received_at=NOW)
                  for m in fails]
        ids = RecordWriter(store).append(parsed)
        detector = Detector(builtin_pack())
        alerts = [a for m, i in zip(parsed, ids, strict=True) for a in detector.observe(m, i)]
        sink = AlertSink(store, home / "alerts.log")
        sink.publish(alerts)
        assert findings_for_scan is not None
    result = CliRunner().invoke(app, ["audit", "alerts", "--format", "json"])
    [alert] = json.loads(result.stdout)
    assert alert["rule_id"] == "audit.auth-failure-burst" and alert["severity"] == "high"
    assert alert["subject"] == {"kind": "requestor", "value": "admin"}
    assert alert["record_ids"] == ids and alert["finding_id"] is not None
    logged = json.loads((home / "alerts.log").read_text().splitlines()[0])
    assert logged["rule_id"] == "audit.auth-failure-burst"
    stats = json.loads(CliRunner().invoke(app, ["audit", "stats", "--format", "json"]).stdout)
    assert stats["total"]["stored"] == 11 and stats["total"]["alerted"] == 1
    assert stats["sources"]["10.0.0.7"]["stored"] == 11


def test_rules_list_and_rules_test(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["audit", "rules", "list", "--format",
                                            "json"]).stdout)
    assert len(listed["rules"]) == 11 and listed["version"]
    stopped = tmp_path / "stopped.log"
    stopped.write_bytes(syslog(one_line(builders.security_alert("110133", station="PACS1",
                                                                 when=NOW))) + b"\n")
    fired = runner.invoke(app, ["audit", "rules", "test", "audit.recording-stopped",
                                str(stopped), "--format", "json"])
    assert fired.exit_code == 1 and json.loads(fired.stdout)["alerts"][0]["record_ids"] == [1]
    quiet = runner.invoke(app, ["audit", "rules", "test", "audit.auth-failure-burst",
                                str(stopped)])
    assert quiet.exit_code == 0
    unknown = runner.invoke(app, ["audit", "rules", "test", "no.such-rule", str(stopped)])
    assert unknown.exit_code == 2


def test_emitter_writes_straight_into_the_repository(home: Path) -> None:
    url = _url(home)
    repo = LocalRepository(url, "test-station")
    emitter = AuditEmitter(home, "test-station", repository=repo)
    emitter.emit(builders.application_activity("start", station="test-station"))
    repo.close()
    with Store.open(url) as store:
        report = verify(store)
        found = json.loads(CliRunner().invoke(app, ["audit", "search", "--format",
                                                    "json"]).stdout)
    assert report.ok and report.checked >= 1
    local = [r for r in found if r["source"]["transport"] == "local"]
    assert local and local[-1]["event_id"]["code"] == "110100"
    assert local[-1]["validity"] == "valid" and local[-1]["reason"] is None


def test_emitter_from_settings_uses_the_local_repository(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "radguard.toml").write_text("[audit]\nlocal_repository = true\n")
    from radguard.config import load_settings

    emitter = AuditEmitter.from_settings(load_settings())
    assert emitter.repository is not None
    emitter.emit(builders.network_entry("attach", station="test-station"))
    with Store.open(_url(home)) as store:
        assert verify(store).checked == 1
