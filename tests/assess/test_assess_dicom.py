"""DIMSE checks against real peers on loopback: Orthanc (default, hardened, weak), DCMTK dcmqrscp with
an open query database, pynetdicom SCPs, and scripted raw-PDU peers."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from radguard.assess import KnownPeer
from tests.assess.conftest import assess, details, ids, node
from tests.assess.dcmtk import Proc, dcmtk, start, storescp
from tests.assess.scripted import RawPeer, pynetdicom_scp
from tests.support.peers import OrthancPeer, free_port

CT01 = KnownPeer("CT01", "10.9.9.9")


def test_orthanc_default_accepts_random_called_aet_and_unknown_echo(
        orthanc_default: OrthancPeer) -> None:
    # Given Orthanc's default configuration, When assessed, Then both AE title checks fire
    r = assess([f"127.0.0.1:{orthanc_default.dicom_port}/ORTHANC"],
               ["dicom.called-aet-not-enforced", "dicom.calling-aet-not-enforced"])
    n = r.nodes[0]
    assert n.reachable and n.transport == "plain"
    assert ids(n) == {"dicom.called-aet-not-enforced", "dicom.calling-aet-not-enforced"}
    assert [d["service"] for d in details(n, "dicom.calling-aet-not-enforced")] == ["echo"]


def test_orthanc_hardened_is_quiet(orthanc_hardened: OrthancPeer) -> None:
    r = assess([f"127.0.0.1:{orthanc_hardened.dicom_port}/ORTHANC"],
               ["dicom.called-aet-not-enforced", "dicom.calling-aet-not-enforced",
                "dicom.calling-aet-spoofable", "dicom.query-open", "dicom.store-open",
                "dicom.retrieve-open"], intrusive=True, peers=[CT01])
    n = r.nodes[0]
    assert n.reachable
    assert n.findings == ()
    assert n.checks["dicom.calling-aet-spoofable"] == "ran"


def test_orthanc_weak_is_spoofable_and_open_to_query_and_get(orthanc_weak: OrthancPeer) -> None:
    r = assess([f"127.0.0.1:{orthanc_weak.dicom_port}/ORTHANC"],
               ["dicom.calling-aet-spoofable", "dicom.query-open",
                "dicom.calling-aet-not-enforced", "dicom.retrieve-open"],
               intrusive=True, peers=[CT01])
    n = r.nodes[0]
    assert {"dicom.calling-aet-spoofable", "dicom.query-open", "dicom.retrieve-open"} <= ids(n)
    spoof = details(n, "dicom.calling-aet-spoofable")[0]
    assert spoof["peer_aet"] == "CT01" and "echo" in spoof["served"]
    services = {d["service"] for d in details(n, "dicom.calling-aet-not-enforced")}
    assert services == {"query", "retrieve"}  # echo is refused: DicomAlwaysAllowEcho false
    assert details(n, "dicom.retrieve-open")[0]["service"] == "C-GET"


def test_store_open_puts_labelled_object_and_deletes_it(orthanc_default: OrthancPeer) -> None:
    before = orthanc_default.rest("/instances")
    r = assess([f"127.0.0.1:{orthanc_default.dicom_port}/ORTHANC", orthanc_default.url],
               ["dicom.store-open"], intrusive=True)
    n = node(r, orthanc_default.dicom_port)
    [f] = [f for f in n.findings if f.check_id == "dicom.store-open"]
    assert f.evidence.details["cleaned"] is True and "deleted" in f.message
    assert orthanc_default.rest("/instances") == before


def test_store_open_is_not_run_without_intrusive(orthanc_default: OrthancPeer) -> None:
    r = assess([f"127.0.0.1:{orthanc_default.dicom_port}/ORTHANC"])
    assert "dicom.store-open" not in r.nodes[0].checks
    assert "dicom.retrieve-open" not in r.nodes[0].checks


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    folder = tmp_path_factory.mktemp("dcmqrscp")
    db = folder / "db"
    db.mkdir()
    src = Path(get_testdata_file("CT_small.dcm"))
    shutil.copy(src, db / "ct.dcm")
    port = free_port()
    (folder / "dcmqrscp.cfg").write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nDCMQRSCP {db} RW (10, 1024mb) ANY\nAETable END\n")
    subprocess.run([dcmtk("dcmqridx"), str(db), str(db / "ct.dcm")], check=True)
    peer = start("dcmqrscp", ["-c", str(folder / "dcmqrscp.cfg"), str(port)], folder, port=port)
    yield peer
    peer.stop()


def test_dcmqrscp_open_database_answers_query_without_leaking_phi(dcmqrscp: Proc) -> None:
    r = assess([f"127.0.0.1:{dcmqrscp.port}/DCMQRSCP"],
               ["dicom.query-open", "dicom.calling-aet-not-enforced"])
    n = r.nodes[0]
    assert "dicom.query-open" in ids(n)
    q = details(n, "dicom.query-open")[0]
    assert q["matches_seen"] == 1 and len(q["salted_hash"]) == 32
    ct = dcmread(get_testdata_file("CT_small.dcm"))
    text = json.dumps(r.to_dict())
    for phi in (str(ct.PatientName), ct.PatientID, ct.StudyDate, ct.StudyInstanceUID):
        assert phi not in text


def test_storescp_without_query_is_not_query_open(tmp_path: Path) -> None:
    peer = storescp(tmp_path)
    try:
        r = assess([f"127.0.0.1:{peer.port}/STORESCP"], ["dicom.query-open", "dicom.fingerprint"])
    finally:
        peer.stop()
    n = r.nodes[0]
    assert ids(n) == {"dicom.fingerprint"}
    assert n.fingerprint["roles"] == ["storage"]
    assert n.fingerprint["implementation_version"].startswith("OFFIS_DCMTK")


def test_pynetdicom_promiscuous_move_delivers_to_radguard(tmp_path: Path) -> None:
    move_port = free_port()
    server, port = pynetdicom_scp(promiscuous_move=move_port)
    try:
        r = assess([f"127.0.0.1:{port}/QRSCP"], ["dicom.retrieve-open"], intrusive=True,
                   move_port=move_port)
    finally:
        server.shutdown()
    services = {d["service"] for d in details(r.nodes[0], "dicom.retrieve-open")}
    assert services == {"C-GET", "C-MOVE"}


def test_pynetdicom_checked_caller_is_quiet() -> None:
    server, port = pynetdicom_scp(require_calling=("KNOWNCT",))
    try:
        r = assess([f"127.0.0.1:{port}/QRSCP"],
                   ["dicom.retrieve-open", "dicom.query-open", "dicom.calling-aet-not-enforced",
                    "dicom.called-aet-not-enforced", "dicom.identity-plaintext"], intrusive=True)
    finally:
        server.shutdown()
    n = r.nodes[0]
    assert n.reachable and n.findings == ()
    assert n.fingerprint["association"] == "reject"


def test_identity_accepted_over_plaintext() -> None:
    server, port = pynetdicom_scp(identity=True)
    try:
        r = assess([f"127.0.0.1:{port}/QRSCP"], ["dicom.identity-plaintext"])
    finally:
        server.shutdown()
    assert details(r.nodes[0], "dicom.identity-plaintext")[0]["behaviour"] == "verified"


def test_identity_ignored_is_quiet() -> None:
    server, port = pynetdicom_scp(identity=False)
    try:
        r = assess([f"127.0.0.1:{port}/QRSCP"], ["dicom.identity-plaintext"])
    finally:
        server.shutdown()
    assert r.nodes[0].checks["dicom.identity-plaintext"] == "ran"
    assert r.nodes[0].findings == ()


@pytest.mark.parametrize(("mode", "reasons"), [
    ("drop", ("closed", "reset")), ("silent", ("silent",)), ("reset", ("reset", "closed"))])
def test_odd_peers_are_results_with_reasons(mode: str, reasons: tuple[str, ...]) -> None:
    peer = RawPeer(mode)
    try:
        r = assess([f"127.0.0.1:{peer.port}/ANY"], timeout=1.0)
    finally:
        peer.close()
    n = r.nodes[0]
    assert n.reachable and n.reason.startswith(reasons)
    if mode == "silent":  # a statement about the wait, never "not DICOM"
        assert "no answer within 1 s" in n.reason
        assert n.fingerprint["association"] == "silent"
    assert n.findings == ()
    site = ("dicom.no-tls", "dicom.tls-optional")
    assert all(v.startswith("not run") for k, v in n.checks.items() if k not in site)


def test_malformed_ae_titles_are_reported_not_trusted() -> None:
    peer = RawPeer("malformed-ae")
    try:
        r = assess([f"127.0.0.1:{peer.port}/ANY"], ["dicom.fingerprint"], timeout=1.0)
    finally:
        peer.close()
    fp = r.nodes[0].fingerprint
    assert fp["association"] == "accept"
    assert fp["ae_title_well_formed"] is False
    assert fp["implementation_version"] == "ODD\\x01DEVICE"


def test_refused_port_is_unreachable() -> None:
    r = assess([f"127.0.0.1:{free_port()}/ANY"])
    n = r.nodes[0]
    assert not n.reachable and n.reason.startswith("refused")
