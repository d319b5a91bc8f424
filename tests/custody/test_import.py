"""media import against real peers on loopback: Orthanc (DIMSE, STOW-RS), storescp with TLS."""

from __future__ import annotations

import base64
import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from radguard.importer import (
    DestinationInvalid,
    DestinationUnavailable,
    ImportOptions,
    ReconciliationNeeded,
    import_package,
    parse_destination,
)
from radguard.media.custody import PackageRefusedDetail
from radguard.media.sanitize import sanitize_medium
from tests.custody.conftest import real_file
from tests.custody.pki import make_pki
from tests.custody.test_sanitize import _journal
from tests.support.peers import require, running, start_orthanc, start_storescp

ALLOW_FIND = {"DicomAlwaysAllowFind": True}


def _series_medium(root: Path, count: int) -> Path:
    """``count`` real CT images as one new study (new UIDs), like a CD from another hospital."""
    (root / "DICOM").mkdir(parents=True)
    base = pydicom.dcmread(real_file("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    for i in range(count):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.PatientID, ds.IssuerOfPatientID = "OUT-778", "OTHER-HOSP"
        ds.save_as(root / "DICOM" / f"IM{i:05d}", enforce_file_format=True)
    return root


@pytest.fixture
def package(settings, options, tmp_path) -> Path:
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", 12)), out, options)
    return out


def _count(orthanc) -> int:
    return int(orthanc.rest("/statistics")["CountInstances"])


def test_dimse_import_reconciles_and_orthanc_holds_every_instance(settings, package, tmp_path):
    with running(start_orthanc(tmp_path / "orthanc", overrides=ALLOW_FIND)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        report = import_package(settings, package, to,
                                ImportOptions(patient_id="LOC-1", issuer="OUR-HOSP"))
        assert report.complete and report.counts["confirmed"] == 12
        assert _count(orthanc) == 12  # ground truth: Orthanc's own index
        instance = orthanc.rest("/instances")[0]
        tags = orthanc.rest(f"/instances/{instance}/simplified-tags")
        assert tags["PatientID"] == "LOC-1" and tags["IssuerOfPatientID"] == "OUR-HOSP"
        others = [(o.get("PatientID"), o.get("IssuerOfPatientID"))
                  for o in tags["OtherPatientIDsSequence"]]
        assert ("OUT-778", "OTHER-HOSP") in others
        assert any("OUT-778" in line for line in report.reconciliation)
        # a rerun sends nothing and doubles nothing
        again = import_package(settings, package, to,
                               ImportOptions(patient_id="LOC-1", issuer="OUR-HOSP"))
        assert again.resumed and again.sent_this_run == 0 and again.complete
        assert _count(orthanc) == 12
    journal = _journal(settings)
    assert 'csd-code="110107"' in journal and 'csd-code="110104"' in journal
    assert 'csd-code="110155"' in journal  # Source Media role


def test_stow_rs_import_confirmed_by_qido(settings, package, tmp_path):
    with running(start_orthanc(tmp_path / "orthanc")) as orthanc:
        report = import_package(settings, package, orthanc.dicomweb, ImportOptions(keep_ids=True))
        assert report.complete and report.counts["confirmed"] == 12
        assert _count(orthanc) == 12


@pytest.mark.parametrize("tamper", ["byte", "missing", "unsigned"])
def test_a_tampered_package_sends_nothing_and_raises_a_security_alert(settings, package,
                                                                      tmp_path, tamper):
    member = package / "files" / "000004.dcm"
    if tamper == "byte":
        data = bytearray(member.read_bytes())
        data[700] ^= 0xFF
        member.write_bytes(bytes(data))
    elif tamper == "missing":
        member.unlink()
    else:
        (package / "manifest.sig").unlink()
    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        with pytest.raises(PackageRefusedDetail) as info:
            import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert _count(orthanc) == 0
    expected = "manifest.sig" if tamper == "unsigned" else "files/000004.dcm"
    assert info.value.problems[0].name == expected
    journal = _journal(settings)
    assert 'csd-code="110113"' in journal and 'EventOutcomeIndicator="8"' in journal


def test_unmapped_patient_stops_before_sending(settings, package, tmp_path):
    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False,
                               overrides=ALLOW_FIND)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        with pytest.raises(ReconciliationNeeded, match="no local identifier"):
            import_package(settings, package, to, ImportOptions())
        assert _count(orthanc) == 0
        rules = tmp_path / "rules.csv"
        rules.write_text("outside_patient_id,outside_issuer,local_patient_id,local_issuer\n"
                         "OUT-778,OTHER-HOSP,LOC-9,OUR-HOSP\n")
        report = import_package(settings, package, to, ImportOptions(rules=str(rules)))
        assert report.complete
        tags = orthanc.rest(f"/instances/{orthanc.rest('/instances')[0]}/simplified-tags")
        assert tags["PatientID"] == "LOC-9"


def test_a_pacs_refusing_or_dropping_instances_is_reported_per_instance(settings, options,
                                                                         tmp_path):
    """Orthanc refuses an unknown SOP class (context not accepted, status 0x0122 without sending)
    and silently drops one instance through a Lua filter (success status, but not stored): the
    first is "refused" with its meaning, the second "missing" after the C-FIND check."""
    medium = _series_medium(tmp_path / "cd", 6)
    odd = pydicom.dcmread(medium / "DICOM" / "IM00005")
    odd.SOPClassUID = "1.2.826.0.1.3680043.9.9999.1"
    odd.file_meta.MediaStorageSOPClassUID = odd.SOPClassUID
    odd.save_as(medium / "DICOM" / "IM00005", enforce_file_format=True)
    victim = str(pydicom.dcmread(medium / "DICOM" / "IM00002").SOPInstanceUID)
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(medium), out, options)
    lua = tmp_path / "filter.lua"
    lua.write_text("function ReceivedInstanceFilter(dicom, origin, info)\n"
                   f"  return dicom.SOPInstanceUID ~= '{victim}'\nend\n")
    overrides = {**ALLOW_FIND, "LuaScripts": [str(lua)], "UnknownSopClassAccepted": False}
    with running(start_orthanc(tmp_path / "orthanc", overrides=overrides)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        report = import_package(settings, out, to, ImportOptions(keep_ids=True))
        states = {i.sop_instance_uid: i for i in report.instances}
        refused = [i for i in report.instances if i.state == "refused"]
        assert [i.sop_instance_uid for i in refused] == [str(odd.SOPInstanceUID)]
        assert refused[0].status == 0x0122 and "SOP class" in refused[0].meaning
        assert states[victim].state == "missing"
        assert not report.complete and report.counts["confirmed"] == 4
        assert _count(orthanc) == 4


def test_killed_import_resumes_and_sends_only_the_rest(settings, options, tmp_path):
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", 80)), out, options)
    with running(start_orthanc(tmp_path / "orthanc", overrides=ALLOW_FIND)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        env = {**os.environ, "RADGUARD_HOME": str(settings.home_path),
               "RADGUARD_STATION": settings.station_name}
        proc = subprocess.Popen([sys.executable, "-c", "from radguard.cli import main; main()",
                                 "media", "import", str(out), "--to", to, "--keep-ids"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while _count(orthanc) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = _count(orthanc)
        assert 0 < before < 80, "the import must be killed mid-way"
        report = import_package(settings, out, to, ImportOptions(keep_ids=True))
        assert report.resumed and report.complete
        assert report.sent_this_run <= 80 - before + 16  # at most one unjournalled batch again
        assert _count(orthanc) == 80  # nothing lost, nothing doubled


def test_tls_bcp195_with_client_certificate_into_storescp(settings, package, tmp_path,
                                                         monkeypatch):
    # `uv run` puts .venv/bin first, where pynetdicom installs its own `storescp`: use DCMTK's
    monkeypatch.setenv("PATH", f"/usr/bin:{os.environ['PATH']}")
    assert require("storescp") == "/usr/bin/storescp"
    pki = make_pki(tmp_path / "pki")
    store = tmp_path / "received"
    extra = ["+tls", str(pki["server_key"]), str(pki["server_cert"]), "+cf", str(pki["ca"]),
             "--profile-bcp195", "--require-peer-cert"]
    with running(start_storescp(store, extra=extra)) as scp:
        base = f"dimse://{scp.aet}@127.0.0.1:{scp.port}?tls=1&ca={pki['ca']}&timeout=5"
        with pytest.raises(DestinationUnavailable):  # no client certificate: refused
            import_package(settings, package, base, ImportOptions(keep_ids=True))
        to = f"{base}&cert={pki['client_cert']}&key={pki['client_key']}"
        report = import_package(settings, package, to, ImportOptions(keep_ids=True))
        assert report.sent_this_run == 12 and report.counts["refused"] == 0
        assert "C-FIND" in report.confirmation_error  # storescp cannot answer queries
        received = sorted(store.iterdir())
        assert len(received) == 12
        sops = {str(pydicom.dcmread(p).SOPInstanceUID) for p in received}
        assert sops == {i.sop_instance_uid for i in report.instances}


def test_destinations_are_checked():
    with pytest.raises(DestinationInvalid, match="loopback"):
        parse_destination("http://pacs.example.org/dicom-web")
    with pytest.raises(DestinationInvalid, match="URL"):
        parse_destination("https://user:pw@pacs.example.org/dicom-web")
    peer = parse_destination("dimse://PACS@127.0.0.1:11112?tls=1&calling=MEDIA1")
    assert (peer.called_aet, peer.calling_aet, peer.tls is not None) == ("PACS", "MEDIA1", True)
    assert base64  # keep import for future header checks


def _journal_records(settings) -> list[dict]:
    folder = settings.home_path / "import" / "journal"
    return [json.loads(line) for p in folder.iterdir() for line in p.read_text().splitlines()]


def test_parallel_associations_send_each_instance_once_and_confirm_all(settings, options,
                                                                      tmp_path):
    """Given 24 instances and three associations, each instance is journalled as sent exactly
    once, confirmed by the destination's answer, and Orthanc holds 40."""
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", 24)), out, options)
    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False,
                               overrides=ALLOW_FIND)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        seen: list[int] = []
        report = import_package(settings, out, to, ImportOptions(keep_ids=True, associations=3),
                                progress=lambda done, total, name: seen.append(done))
        assert report.complete and report.sent_this_run == 24
        assert _count(orthanc) == 24
    assert seen[-1] == 24 and seen == sorted(seen)
    records = _journal_records(settings)
    sent = [r["name"] for r in records if r["state"] == "sent"]
    assert len(sent) == len(set(sent)) == 24
    assert {r["name"] for r in records if r["state"] == "confirmed"} == set(sent)


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_member_changed_after_verification_is_never_sent(settings, options, tmp_path,
                                                           monkeypatch, in_memory):
    """A member altered on disk after the package was verified: with the verified bytes held in
    memory the verified bytes are sent (the alteration never reaches the PACS); without (budget
    0) the hash is checked again on the bytes read, and the import stops before sending it."""
    from radguard.importer import run

    if not in_memory:
        monkeypatch.setattr(run, "KEEP_VERIFIED_BYTES", 0)
    out = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", 12)), out, options)
    victim = out / "files" / "000010.dcm"
    original = victim.read_bytes()

    def tamper(done: int, total: int, name: str) -> None:
        if victim.read_bytes() == original:
            data = bytearray(original)
            data[-10] ^= 0xFF  # a pixel byte: still a valid DICOM file
            victim.write_bytes(bytes(data))

    with running(start_orthanc(tmp_path / "orthanc", dicomweb=False,
                               overrides=ALLOW_FIND)) as orthanc:
        to = f"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}"
        opts = ImportOptions(keep_ids=True, associations=1, confirm_while_sending=False)
        if in_memory:
            report = import_package(settings, out, to, opts, progress=tamper)
            assert report.complete and _count(orthanc) == 12
            sop = next(i.sop_instance_uid for i in report.instances
                       if i.name == "files/000010.dcm")
            found = orthanc.rest("/tools/lookup", method="POST", body=sop.encode())
            stored = httpx.get(f"{orthanc.url}/instances/{found[0]['ID']}/file").content
            assert stored.endswith(original[-200:])  # the verified pixels, not the altered ones
        else:
            with pytest.raises(PackageRefusedDetail, match="changed during import") as info:
                import_package(settings, out, to, opts, progress=tamper)
            assert info.value.problems[0].name == "files/000010.dcm"
            assert 0 < _count(orthanc) < 12
