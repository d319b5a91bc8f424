"""The repository API: plain values in, frozen values out, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from radguard.errors import StoreError
from radguard.findings import Finding, Severity, Verdict
from radguard.store import (
    FindingDiff,
    ItemIn,
    Store,
    add_findings,
    diff_findings,
    findings_for_asset,
    findings_for_scan,
    fingerprint,
    get_asset,
    get_job,
    get_scan,
    items_for_scan,
    list_assets,
    list_scans,
    record_scan,
    save_job,
    upsert_asset,
)

MakeFinding = Callable[..., Finding]
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_record_and_read_back_a_scan(store: Store, make_finding: MakeFinding) -> None:
    # Given a media scan with two files, one of them with a finding, and a medium-level finding
    bad = make_finding()
    medium_level = make_finding("media.dicomdir-missing", path="", details={"root": "."})
    items = [
        ItemIn("DICOM/IMG0001", size=1024, sha256="ab" * 32, verdict=Verdict.DANGEROUS,
               data={"sop_class": "1.2.840.10008.5.1.4.1.1.2"}, findings=[bad]),
        ItemIn("DICOM/IMG0002", size=2048, sha256="cd" * 32, verdict="clean"),
    ]
    # When it is recorded
    scan_id = record_scan(
        store, "media.scan", "/media/cdrom", status="done", verdict=Verdict.DANGEROUS,
        started_at=T0, finished_at=T0 + timedelta(seconds=42), operator="tech1",
        station="media-pc", summary={"files": 2, "dangerous": 1}, items=items,
        findings=[medium_level],
    )
    # Then the scan reads back with its values, tz-aware
    scan = get_scan(store, scan_id)
    assert scan is not None
    assert (scan.kind, scan.subject, scan.status, scan.verdict) == (
        "media.scan", "/media/cdrom", "done", "dangerous")
    assert scan.started_at == T0 and scan.started_at.tzinfo is not None
    assert scan.finished_at == T0 + timedelta(seconds=42)
    assert (scan.operator, scan.station) == ("tech1", "media-pc")
    assert scan.summary == {"files": 2, "dangerous": 1}
    assert scan.radguard_version
    assert (scan.item_count, scan.finding_count) == (2, 2)
    # And the items, in order
    stored_items = items_for_scan(store, scan_id)
    assert [(i.path, i.size, i.verdict) for i in stored_items] == [
        ("DICOM/IMG0001", 1024, "dangerous"), ("DICOM/IMG0002", 2048, "clean")]
    assert stored_items[0].data == {"sop_class": "1.2.840.10008.5.1.4.1.1.2"}
    # And the findings rebuild the original values, linked to their item
    stored = findings_for_scan(store, scan_id)
    assert [s.finding for s in stored] == [bad, medium_level]
    assert stored[0].item_id == stored_items[0].id
    assert stored[1].item_id is None
    assert stored[0].fingerprint == fingerprint(bad)
    assert stored[0].created_at.tzinfo is not None
    # And the results are immutable values
    with pytest.raises(dataclasses.FrozenInstanceError):
        scan.status = "x"  # type: ignore[misc]


def test_finding_json_round_trip_survives_the_store(
    store: Store, make_finding: MakeFinding
) -> None:
    original = make_finding(details={"nested": {"a": [1, 2]}, "count": 3}, offset=None)
    scan_id = record_scan(store, "assess", "PACS1", findings=[original])
    (stored,) = findings_for_scan(store, scan_id)
    assert stored.finding.to_dict() == original.to_dict()
    assert Finding.from_dict(stored.finding.to_dict()) == original


def test_record_scan_is_all_or_nothing(store: Store, make_finding: MakeFinding) -> None:
    # Given findings pointed at an asset that does not exist (foreign key)
    with pytest.raises(StoreError):
        record_scan(store, "assess", "PACS1", findings=[make_finding()], asset_id=999_999)
    # Then no part of the scan was kept
    assert list_scans(store) == []


def test_list_scans_newest_first_by_kind_with_limit(store: Store) -> None:
    ids = [record_scan(store, kind, f"s{n}", started_at=T0 + timedelta(minutes=n))
           for n, kind in enumerate(["media.scan", "assess", "media.scan", "deid"])]
    assert [s.id for s in list_scans(store)] == list(reversed(ids))
    assert [s.id for s in list_scans(store, kind="media.scan")] == [ids[2], ids[0]]
    assert [s.id for s in list_scans(store, limit=1)] == [ids[3]]


def test_upsert_asset_creates_then_updates(store: Store) -> None:
    # Given a new DICOM node
    first = upsert_asset(store, "dicom-node", "PACS1", address="10.0.0.5:104",
                         ae_title="PACS1", data={"vendor": "X"}, seen_at=T0)
    # When it is seen again with a new address and more data
    later = T0 + timedelta(days=1)
    again = upsert_asset(store, "dicom-node", "PACS1", address="10.0.0.6:104",
                         data={"software": "1.2"}, seen_at=later)
    # Then it is the same asset, updated, first_seen kept, data merged
    assert again == first
    asset = get_asset(store, "dicom-node", "PACS1")
    assert asset is not None
    assert asset.address == "10.0.0.6:104"
    assert asset.ae_title == "PACS1"
    assert asset.data == {"vendor": "X", "software": "1.2"}
    assert (asset.first_seen, asset.last_seen) == (T0, later)
    # And an older sighting does not move last_seen backwards
    upsert_asset(store, "dicom-node", "PACS1", seen_at=T0 - timedelta(days=3))
    assert get_asset(store, "dicom-node", "PACS1").last_seen == later  # type: ignore[union-attr]
    # And (kind, name) is the identity: same name, other kind, other asset
    other = upsert_asset(store, "device", "PACS1")
    assert other != first
    assert [a.kind for a in list_assets(store)] == ["device", "dicom-node"]
    assert [a.name for a in list_assets(store, kind="device")] == ["PACS1"]
    assert get_asset(store, "device", "nope") is None


def test_findings_for_asset_newest_first(store: Store, make_finding: MakeFinding) -> None:
    node = upsert_asset(store, "dicom-node", "CT1", ae_title="CT1")
    record_scan(store, "assess", "CT1", asset_id=node,
                findings=[make_finding("assess.tls-absent", asset="CT1")])
    later = add_findings(store, [make_finding("assess.echo-open", asset="CT1")], asset_id=node)
    found = findings_for_asset(store, node)
    assert [f.finding.check_id for f in found] == ["assess.echo-open", "assess.tls-absent"]
    assert found[0].id == later[0] and found[0].scan_id is None
    assert [f.finding.check_id for f in findings_for_asset(store, node, limit=1)] == [
        "assess.echo-open"]


def test_diff_findings_tells_new_fixed_unchanged(store: Store, make_finding: MakeFinding) -> None:
    a = make_finding("assess.tls-absent", path=None, details={})
    b = make_finding("assess.echo-open", path=None, details={})
    c = make_finding("assess.weak-cipher", path=None, details={"cipher": "RC4"})
    before = record_scan(store, "assess", "CT1", findings=[a, b])
    # A reworded message or a new offset is still the same problem
    b_again = dataclasses.replace(b, message="reworded", severity=Severity.LOW)
    after = record_scan(store, "assess", "CT1", findings=[b_again, c])
    diff = diff_findings(store, before, after)
    assert diff == FindingDiff(
        new=frozenset({fingerprint(c)}),
        fixed=frozenset({fingerprint(a)}),
        unchanged=frozenset({fingerprint(b)}),
    )
    new, fixed, unchanged = diff
    assert (len(new), len(fixed), len(unchanged)) == (1, 1, 1)
    with pytest.raises(StoreError, match="does not exist") as info:
        diff_findings(store, before, 424242)
    assert info.value.remedy


def test_fingerprint_is_stable_and_discriminating(make_finding: MakeFinding) -> None:
    base = make_finding(details={"a": 1, "b": 2})
    assert fingerprint(base) == fingerprint(make_finding(details={"b": 2, "a": 1}))
    assert fingerprint(base) == fingerprint(dataclasses.replace(base, message="other"))
    assert fingerprint(base) == fingerprint(make_finding(details={"a": 1, "b": 2}, offset=99))
    assert fingerprint(base) != fingerprint(make_finding(details={"a": 1, "b": 3}))
    assert fingerprint(base) != fingerprint(make_finding(details={"a": 1, "b": 2}, asset="CD-2"))
    assert fingerprint(base) != fingerprint(make_finding(details={"a": 1, "b": 2}, path="x"))
    assert len(fingerprint(base)) == 64


def test_job_journal_resumes(store: Store) -> None:
    assert get_job(store, "import:abc") is None
    created = save_job(store, "import", "import:abc", state="running", progress={"done": []})
    save_job(store, "import", "import:abc", state="running", progress={"done": ["1.2.3"]})
    resumed = get_job(store, "import:abc")
    assert resumed is not None
    assert resumed.id == created.id
    assert resumed.progress == {"done": ["1.2.3"]}
    assert resumed.updated_at >= resumed.created_at
    finished = save_job(store, "import", "import:abc", state="done")
    assert finished.progress == {"done": ["1.2.3"]}  # None keeps the progress
    assert finished.state == "done"
