"""``radguard assess`` as a subprocess against a live storescp: JSON shape, exit codes, store,
changes since the previous run, audit journal, dry-run contacting nothing, SARIF and HTML."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from radguard.store import Store
from radguard.store.repo import list_assets
from tests.assess.dcmtk import storescp
from tests.support.peers import free_port


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RADGUARD_HOME=str(home), RADGUARD_STATION="test-station",
               RADGUARD_OPERATOR="tester")
    radguard = str(Path(sys.executable).parent / "radguard")
    if args[0] == "assess":
        args = (*args, "--rate", "100")
    return subprocess.run([radguard, *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    peer = storescp(tmp_path_factory.mktemp("cli-scp"))
    yield peer
    peer.stop()


def test_json_report_store_changes_and_audit(tmp_path: Path, scp) -> None:  # type: ignore[no-untyped-def]
    target = f"127.0.0.1:{scp.port}/STORESCP"
    first = _run(tmp_path, "assess", target, "--format", "json", "--timeout", "3")
    assert first.returncode == 1, first.stderr
    report = json.loads(first.stdout)
    [n] = report["nodes"]
    assert n["target"] == target and n["reachable"] is True
    assert n["fingerprint"]["roles"] == ["storage"]
    assert {"id", "severity", "message", "evidence", "remedy"} <= set(n["findings"][0])
    assert n["changes"]["previous_scan_id"] is None
    second = json.loads(_run(tmp_path, "assess", target, "--format", "json",
                             "--timeout", "3").stdout)
    ch = second["nodes"][0]["changes"]
    assert ch["previous_scan_id"] == n["scan_id"]
    assert ch["new"] == [] and ch["fixed"] == []
    assert "dicom.called-aet-not-enforced" in ch["unchanged"]
    store = Store.open(f"sqlite:///{tmp_path / 'radguard.db'}")
    try:
        [asset] = list_assets(store, "dicom-node")
    finally:
        store.close()
    assert asset.name == target and asset.data["fingerprint"]["roles"] == ["storage"]
    journal = b"".join(p.read_bytes() for p in (tmp_path / "audit" / "journal").glob("*.log"))
    assert journal.count(b"110113") >= 4  # Security Alert: start, node findings, end (x2 runs)
    assert b"110108" in journal  # Network Entry for the node first seen


def test_dry_run_contacts_nothing(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    accepted: list[object] = []

    def watch() -> None:
        for _ in range(10):
            with contextlib.suppress(OSError):
                accepted.append(listener.accept())

    t = threading.Thread(target=watch)
    t.start()
    port = listener.getsockname()[1]
    r = _run(tmp_path, "assess", f"127.0.0.1:{port}/PACS", "http://127.0.0.1:9/", "--dry-run",
             "--intrusive")
    t.join()
    listener.close()
    assert r.returncode == 0, r.stderr
    assert accepted == []
    assert "C-STORE-RQ of an 8x8 Secondary Capture" in r.stdout
    assert "GET {root}/studies?limit=1" in r.stdout


def test_fingerprint_depth_option(tmp_path: Path) -> None:
    # full depth is planned as more associations; an unknown depth is refused before any contact
    full = _run(tmp_path, "assess", "127.0.0.1:104/PACS", "--only", "dicom.fingerprint",
                "--dry-run", "--fingerprint-depth", "full")
    assert full.returncode == 0, full.stderr
    assert "discovery tier" in full.stdout and "more A-ASSOCIATE-RQ" in full.stdout
    bad = _run(tmp_path, "assess", "127.0.0.1:104/PACS", "--fingerprint-depth", "deep")
    assert bad.returncode == 2 and "compact or full" in bad.stderr


def test_unreachable_only_exits_2_and_bad_target_exits_2(tmp_path: Path) -> None:
    r = _run(tmp_path, "assess", f"127.0.0.1:{free_port()}/X", "--format", "json")
    assert r.returncode == 2
    assert json.loads(r.stdout)["nodes"][0]["reason"].startswith("refused")
    bad = _run(tmp_path, "assess", "127.0.0.1/NOPORT")
    assert bad.returncode == 2 and "no port given" in bad.stderr


def test_sarif_and_html(tmp_path: Path, scp) -> None:  # type: ignore[no-untyped-def]
    target = f"127.0.0.1:{scp.port}/STORESCP"
    out = tmp_path / "r.sarif"
    r = _run(tmp_path, "assess", target, "--only", "dicom.called-aet-not-enforced",
             "--format", "sarif", "--output", str(out), "--no-record")
    assert r.returncode == 1
    sarif = json.loads(out.read_text())
    assert sarif["runs"][0]["results"][0]["ruleId"] == "dicom.called-aet-not-enforced"
    html = _run(tmp_path, "assess", target, "--only", "dicom.fingerprint", "--format", "html",
                "--no-record")
    assert html.returncode == 0 and "OFFIS_DCMTK" in html.stdout




def test_silent_node_is_named_with_the_wait_and_the_timeouts_are_reported(tmp_path: Path) -> None:
    from tests.assess.scripted import RawPeer

    peer = RawPeer("silent")
    try:
        done = _run(tmp_path, "assess", f"127.0.0.1:{peer.port}", "--only", "dicom.fingerprint",
                    "--format", "json", "--timeout", "1", "--connect-timeout", "2",
                    "--no-record")
    finally:
        peer.close()
    report = json.loads(done.stdout)
    assert report["options"]["timeout"] == 1 and report["options"]["connect_timeout"] == 2
    [n] = report["nodes"]
    assert n["reason"] == "silent: no answer within 1 s to the A-ASSOCIATE-RQ"
    assert f"127.0.0.1:{peer.port}" in done.stderr and "no answer within 1 s" in done.stderr
    assert "not assessed" in done.stderr


def test_defaults_wait_30_s_for_an_answer_and_5_s_for_a_connection(tmp_path: Path) -> None:
    done = _run(tmp_path, "assess", f"127.0.0.1:{free_port()}", "--only", "dicom.fingerprint",
                "--format", "json", "--no-record")
    options = json.loads(done.stdout)["options"]
    assert (options["timeout"], options["connect_timeout"]) == (30.0, 5.0)
