"""Every built-in detection rule fires on the pattern it describes and stays quiet otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from tests.audit_repo.messages import one_line, syslog

from radguard.audit import builders
from radguard.audit.message import AuditMessage, Outcome
from radguard.audit.repository import Detector, RuleError, builtin_pack, parse_message
from radguard.audit.repository.detect import Alert
from radguard.audit.repository.replay import replay, split_messages
from radguard.audit.repository.rules import Context, parse_pack

T0 = datetime(2025, 11, 28, 10, 0, tzinfo=UTC)  # Friday 10:00 UTC, inside working hours
STUDY = "1.2.826.0.1.3680043.8.498."
CTX = Context(params={"honeytoken_patients": ["HT-0001"],
                      "honeytoken_studies": ["1.2.826.0.1.3680043.8.498.999"],
                      "known_destinations": ["ARCHIVE2"]},
              inventory=frozenset({"ws1", "pacs1"}))


def run(rule: str, messages: Iterable[AuditMessage]) -> list[Alert]:
    parsed = [parse_message(syslog(m), transport="tcp", peer="10.0.0.5", received_at=T0)
              for m in messages]
    return replay(Detector(builtin_pack(), CTX, only=[rule]), parsed)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def accessed(user: str, n: int, *, spread: float = 1.0, node: str = "ws1") -> list[AuditMessage]:
    return [builders.instances_accessed(user=user, station=node, patient_ids=[f"P{i}"],
                                        study_uids=[f"{STUDY}{i}"], when=at(i * spread))
            for i in range(n)]


def transferred(dest: str, *, when: datetime = T0, outcome: Outcome = Outcome.SUCCESS,
                description: str | None = None, dest_host: str | None = None) -> AuditMessage:
    return builders.instances_transferred(station="PACS1", source="PACS1", destination=dest,
                                          destination_host=dest_host, patient_ids=["P1"],
                                          study_uids=[f"{STUDY}1"], requestor="destination",
                                          when=when, outcome=outcome, description=description)


def login_failures(user: str, n: int, *, every: float = 0.1) -> list[AuditMessage]:
    return [builders.user_authentication("login", user=user, station="ws1",
                                         outcome=Outcome.SERIOUS_FAILURE, when=at(i * every))
            for i in range(n)]


def test_pack_is_versioned_and_every_rule_is_documented() -> None:
    pack = builtin_pack()
    assert pack.version and len(pack.rules) == 11
    for rule in pack.rules:
        assert rule.description and rule.controls and rule.remedy, rule.id


# --- one user / one node touching many patients -----------------------------------------------


def test_many_patients_per_user_fires() -> None:
    alerts = run("audit.many-patients-per-user", accessed("mallory", 51))
    assert [(a.subject_kind, a.subject) for a in alerts] == [("requestor", "mallory")]
    assert len(alerts[0].record_ids) == 51


def test_many_patients_per_user_quiet_under_threshold_or_spread_out() -> None:
    assert run("audit.many-patients-per-user", accessed("alice", 50)) == []
    assert run("audit.many-patients-per-user", accessed("alice", 80, spread=2.0)) == []


def test_many_patients_per_node_fires_and_stays_quiet() -> None:
    many = [builders.instances_transferred(
        station="PACS1", source="PACS1", destination="WS9", destination_host="10.9.9.9",
        requestor="destination", patient_ids=[f"P{i}"], study_uids=[f"{STUDY}{i}"],
        when=at(i * 0.1)) for i in range(201)]
    alerts = run("audit.many-patients-per-node", many)
    assert alerts and alerts[0].subject == "10.9.9.9"
    assert run("audit.many-patients-per-node", many[:200]) == []


# --- destinations, hours ----------------------------------------------------------------------


def test_unknown_destination_fires() -> None:
    alerts = run("audit.unknown-destination", [transferred("EVIL_AE", dest_host="203.0.113.7")])
    assert alerts and alerts[0].subject in ("EVIL_AE", "203.0.113.7")


def test_known_destinations_stay_quiet() -> None:
    quiet = [transferred("WS1"), transferred("ARCHIVE2"),
             transferred("EVIL_AE", outcome=Outcome.MINOR_FAILURE)]
    assert run("audit.unknown-destination", quiet) == []


def _export(when: datetime) -> AuditMessage:
    return builders.data_export(user="bob", station="ws1", media_id="CD1", patient_ids=["P1"],
                                study_uids=[f"{STUDY}1"], encrypted=True, when=when)


def test_export_outside_hours_fires_at_night_and_weekend() -> None:
    night = datetime(2025, 11, 28, 2, 30, tzinfo=UTC)
    sunday = datetime(2025, 11, 30, 11, 0, tzinfo=UTC)
    alerts = run("audit.export-outside-hours", [_export(night), _export(sunday)])
    assert [a.subject for a in alerts] == ["bob", "bob"]


def test_export_in_working_hours_is_quiet() -> None:
    assert run("audit.export-outside-hours", [_export(T0), _export(at(8 * 60))]) == []


# --- bursts ----------------------------------------------------------------------------------


def test_auth_failure_burst_fires() -> None:
    alerts = run("audit.auth-failure-burst", login_failures("admin", 11))
    assert len(alerts) == 1 and alerts[0].subject == "admin"


def test_auth_failures_below_threshold_or_successes_are_quiet() -> None:
    assert run("audit.auth-failure-burst", login_failures("admin", 10)) == []
    ok = [builders.user_authentication("login", user="admin", station="ws1", when=at(i * 0.1))
          for i in range(30)]
    assert run("audit.auth-failure-burst", ok) == []


def _rejects(n: int, every: float = 0.05) -> list[AuditMessage]:
    return [transferred("WS1", when=at(i * every), outcome=Outcome.MINOR_FAILURE,
                        description="association rejected: called AE title not recognized")
            for i in range(n)]


def test_association_reject_burst_fires_and_stays_quiet() -> None:
    assert len(run("audit.association-reject-burst", _rejects(21))) == 1
    assert run("audit.association-reject-burst", _rejects(20)) == []
    assert run("audit.association-reject-burst", _rejects(40, every=1.0)) == []


def _tls_failures(n: int) -> list[AuditMessage]:
    return [builders.security_alert("110126", station="PACS1", subject="tls://10.6.6.6",
                                    outcome=Outcome.MINOR_FAILURE, when=at(i * 0.1),
                                    description="TLS handshake failed") for i in range(n)]


def test_tls_failure_burst_fires_and_stays_quiet() -> None:
    assert len(run("audit.tls-failure-burst", _tls_failures(11))) == 1
    assert run("audit.tls-failure-burst", _tls_failures(10)) == []


# --- honeytokens, deletions, recording stopped, silence --------------------------------------


def test_honeytoken_patient_and_study_fire() -> None:
    by_patient = builders.instances_accessed(user="eve", station="ws1", patient_ids=["HT-0001"],
                                             study_uids=[f"{STUDY}5"], when=T0)
    by_study = builders.instances_accessed(user="eve", station="ws1", patient_ids=["P5"],
                                           study_uids=["1.2.826.0.1.3680043.8.498.999"],
                                           when=at(1))
    alerts = run("audit.honeytoken-access", [by_patient, by_study])
    assert len(alerts) == 2 and {a.subject for a in alerts} == {"eve"}
    assert alerts[0].to_finding().asset == "eve"


def test_honeytoken_rule_quiet_on_ordinary_patients() -> None:
    assert run("audit.honeytoken-access", accessed("alice", 5)) == []


def _deletions(n: int, every: float) -> list[AuditMessage]:
    return [builders.study_deleted(user="bob", station="PACS1", patient_ids=[f"P{i}"],
                                   study_uids=[f"{STUDY}{i}"], when=at(i * every))
            for i in range(n)]


def test_study_deletion_rate_fires_and_stays_quiet() -> None:
    assert len(run("audit.study-deletion-rate", _deletions(21, 0.5))) == 1
    assert run("audit.study-deletion-rate", _deletions(20, 0.5)) == []
    assert run("audit.study-deletion-rate", _deletions(60, 10)) == []


def test_audit_recording_stopped_fires_and_started_is_quiet() -> None:
    stopped = builders.security_alert("110133", station="PACS1", when=T0)
    started = builders.security_alert("110134", station="PACS1", when=T0)
    alerts = run("audit.recording-stopped", [stopped])
    assert len(alerts) == 1 and alerts[0].subject == "PACS1"
    assert run("audit.recording-stopped", [started]) == []


def _heartbeat(station: str, when: datetime) -> AuditMessage:
    return builders.network_entry("attach", station=station, when=when)


def test_node_gone_silent_fires() -> None:
    msgs = [_heartbeat("MODALITY1", T0)] + [_heartbeat("PACS1", at(m)) for m in (30, 61, 62)]
    alerts = run("audit.node-silent", msgs)
    assert [a.subject for a in alerts] == ["MODALITY1"]


def test_nodes_that_keep_talking_are_quiet() -> None:
    msgs = [_heartbeat(s, at(m)) for m in range(0, 240, 30) for s in ("MODALITY1", "PACS1")]
    assert run("audit.node-silent", msgs) == []


# --- the rule language ------------------------------------------------------------------------


def test_a_malformed_rule_names_itself() -> None:
    text = "rules:\n  - {id: x.bad, severity: high, description: d, kind: event, " \
           "match: {colour: red}}\n"
    with pytest.raises(RuleError) as err:
        parse_pack(text, "test.yaml")
    assert err.value.subject == "x.bad" and "colour" in err.value.message


def test_split_messages_reads_journal_lines_and_single_documents() -> None:
    one = syslog(accessed("a", 1)[0])
    assert split_messages(b"%d %s\n%d %s\n" % (len(one), one, len(one), one)) == [one, one]
    line = syslog(one_line(accessed("a", 1)[0]))
    assert split_messages(line + b"\n" + line + b"\n") == [line, line]
    assert len(split_messages(accessed("a", 1)[0].to_xml())) == 1


def test_event_id_dispatch_gives_the_alerts_of_evaluating_every_rule() -> None:
    # Detector skips rules whose match requires other EventIDs; on mixed traffic that fires
    # most rules it must raise exactly what evaluating every rule on every record raises.
    from tests.audit_repo.messages import every_a53_message

    from radguard.audit.repository.detect import required_event_ids

    traffic = (accessed("alice", 60) + login_failures("bob", 15) + list(
        every_a53_message().values()) + [transferred("UNKNOWN9", when=at(3)),
                                         transferred("ARCHIVE2", when=at(4)),
                                         builders.instances_accessed(
                                             user="eve", station="ws1", patient_ids=["HT-0001"],
                                             study_uids=[f"{STUDY}7"], when=at(5))]) * 2
    parsed = [parse_message(syslog(m), transport="tcp", peer="10.0.0.5", received_at=T0)
              for m in traffic]
    fast = Detector(builtin_pack(), CTX)
    every = Detector(builtin_pack(), CTX)
    every._for_event = lambda _event_id: every.evaluators  # type: ignore[method-assign]
    alerts = replay(fast, parsed)
    assert [a.to_dict() for a in alerts] == [a.to_dict() for a in replay(every, parsed)]
    assert len({a.rule_id for a in alerts}) >= 4
    assert required_event_ids("r", {"any": [{"event_id": "1"}, {"event_id": ["2", 3]}]}) == {
        "1", "2", "3"}
    assert required_event_ids("r", {"any": [{"event_id": "1"}, {"outcome": [0]}]}) is None
