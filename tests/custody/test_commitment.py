"""Storage Commitment Push Model (PS3.4 Annex J) against a real Orthanc on loopback.

Orthanc sends the N-EVENT-REPORT on a new association to the AE it knows as RADGUARD in
DicomModalities; what RadGuard reports as confirmed is checked in Orthanc's own index (REST).
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from radguard.dimse import CommitSettings, Peer
from radguard.dimse.commit import failure_reason, request_commitment
from radguard.importer import DestinationInvalid, ImportOptions, import_package, parse_destination
from radguard.media.sanitize import sanitize_medium
from tests.custody.conftest import real_file
from tests.custody.test_import import _series_medium
from tests.support.peers import free_port, running, start_orthanc


def _modality(port: int) -> dict[str, object]:
    return {"DicomModalities": {"RADGUARD": ["RADGUARD", "127.0.0.1", port]}}


def _held(orthanc) -> set[str]:
    """SOP Instance UIDs in Orthanc's index (ground truth)."""
    return {i["MainDicomTags"]["SOPInstanceUID"]
            for i in orthanc.rest("/instances?expand")}


def _journal(settings) -> list[dict[str, object]]:
    folder = settings.home_path / "import" / "journal"
    return [json.loads(line) for p in sorted(folder.glob("*.jsonl"))
            for line in p.read_text().splitlines()]


@pytest.fixture
def package(settings, options, tmp_path) -> Path:
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", 12)), out, options)
    return out


def test_import_confirmed_by_storage_commitment(settings, package, tmp_path):
    port = free_port()
    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False,
                               overrides=_modality(port))) as orthanc:
        to = (f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
              f"?commit=1&commit_port={port}&commit_batch=5")  # 3 transactions
        report = import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert report.complete and report.counts["confirmed"] == 12
        assert report.commitment["committed"] == 12 and report.commitment["unreported"] == 0
        assert report.commitment["fallback"] == ""
        confirmed = {i.sop_instance_uid for i in report.instances if i.state == "confirmed"}
        assert confirmed <= _held(orthanc) and len(confirmed) == 12
        by = [r.get("by") for r in _journal(settings) if r["state"] == "confirmed"]
        assert by == ["storage-commitment"] * 12  # not by the C-FIND check
        again = import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert again.resumed and again.sent_this_run == 0 and again.complete
        assert len(_held(orthanc)) == 12


def test_no_report_before_the_timeout_falls_back_to_c_find(settings, package, tmp_path):
    """Orthanc knows RADGUARD at a port where nobody listens: no report arrives, the instances
    are confirmed by C-FIND and the report says so."""
    listen, wrong = free_port(), free_port()
    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False,
                               overrides=_modality(wrong))) as orthanc:
        to = (f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
              f"?commit=1&commit_port={listen}&commit_timeout=2")
        report = import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert report.commitment["committed"] == 0 and report.commitment["unreported"] == 12
        assert report.commitment["fallback"] == "C-FIND"
        assert "timeout" in report.commitment["note"]
        assert report.complete
        assert {i.sop_instance_uid for i in report.instances} <= _held(orthanc)
        assert not any(r.get("by") for r in _journal(settings))


def test_an_instance_the_pacs_does_not_hold_is_reported_failed_with_its_reason(tmp_path):
    port = free_port()
    ct = pydicom.dcmread(real_file("CT_small.dcm"))
    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False,
                               overrides=_modality(port))) as orthanc:
        orthanc.rest("/instances", method="POST", body=real_file("CT_small.dcm").read_bytes())
        peer = Peer("127.0.0.1", orthanc.dicom_port, orthanc.aet)
        absent = pydicom.uid.generate_uid()
        result = request_commitment(peer, [(ct.SOPClassUID, ct.SOPInstanceUID),
                                           (ct.SOPClassUID, absent)],
                                    CommitSettings(port=port, timeout=20))
        assert result.committed == {ct.SOPInstanceUID} <= _held(orthanc)
        assert result.failed == {absent: 0x0112} and result.unreported == 0
    assert failure_reason(0x0112) == "No such object instance"


def test_commit_options_are_checked():
    peer = parse_destination("dimse://PACS@127.0.0.1:104?commit=1&commit_port=4242&commit_aet=RG")
    assert isinstance(peer, Peer) and peer.commit == CommitSettings("RG", "127.0.0.1", 4242)
    with pytest.raises(DestinationInvalid, match="commit_host"):
        parse_destination("dimse://PACS@10.0.0.9:104?commit=1")
    with pytest.raises(DestinationInvalid, match="without TLS"):
        parse_destination("dimse://PACS@127.0.0.1:104?commit=1&tls=1")
