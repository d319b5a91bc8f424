"""A C-STORE peer that accepts the association but answers a failure status (issue 3 review).

The peer is a real DICOM application on loopback, built in the test with pynetdicom: it accepts
CT Image Storage and Study Root C-FIND, stores what it accepts, and answers 0xA700 (Refused: out
of resources, PS3.4 Table B.2-1) for the instances with an even Instance Number while it is
"full". Given such a peer, ``media import`` reports those instances as refused with the status
and its meaning, confirms the others by C-FIND, exits 1, and journals each instance's state;
when the peer has room again, the rerun is a resume that sends only the refused instances, and
every instance ends up stored exactly once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from typer.testing import CliRunner

from radguard.cli import app
from radguard.media.sanitize import sanitize_medium
from tests.custody.test_import import _series_medium
from tests.support.peers import free_port

pynetdicom = pytest.importorskip("pynetdicom")
FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND
AET = "FULLPACS"
COUNT = 8


@dataclass
class StorePeer:
    """What the peer stored (SOP Instance UID -> (study UID, times stored)) and refused."""

    full: bool = True
    stored: dict[str, list[str]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_store(self, event: Any) -> int:
        ds = event.dataset
        sop = str(ds.SOPInstanceUID)
        with self.lock:
            if self.full and int(ds.InstanceNumber) % 2 == 0:
                self.refused.append(sop)
                return 0xA700
            self.stored.setdefault(sop, []).append(str(ds.StudyInstanceUID))
        return 0x0000

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        study = str(query.get("StudyInstanceUID", "") or "")
        wanted = query.get("SOPInstanceUID", "")
        wanted_set = {str(u) for u in wanted} if isinstance(wanted, list | tuple) or \
            type(wanted).__name__ == "MultiValue" else ({str(wanted)} if wanted else set())
        with self.lock:
            held = [(sop, studies[0]) for sop, studies in self.stored.items()]
        for sop, sop_study in held:
            if (study and sop_study != study) or (wanted_set and sop not in wanted_set):
                continue
            answer = Dataset()
            answer.QueryRetrieveLevel = "IMAGE"
            answer.StudyInstanceUID = sop_study
            answer.SOPInstanceUID = sop
            yield 0xFF00, answer
        yield 0x0000, None


@pytest.fixture
def peer() -> Iterator[tuple[StorePeer, int]]:
    from pynetdicom import AE, evt

    state = StorePeer()
    ae = AE(ae_title=AET)
    ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_supported_context(FIND, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_STORE, state.on_store),
                                           (evt.EVT_C_FIND, state.on_find)])
    try:
        yield state, port
    finally:
        server.shutdown()


def _journal(settings) -> dict[str, dict[str, Any]]:
    """The latest journal record of each member."""
    latest: dict[str, dict[str, Any]] = {}
    for p in (settings.home_path / "import" / "journal").iterdir():
        for line in p.read_text().splitlines():
            rec = json.loads(line)
            latest[rec["name"]] = rec
    return latest


def _cli(settings, monkeypatch, *args: str) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("RADGUARD_HOME", str(settings.home_path))
    monkeypatch.setenv("RADGUARD_STATION", settings.station_name)
    result = CliRunner().invoke(app, ["media", "import", *args, "--keep-ids", "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def test_failure_status_is_reported_journalled_and_resumed(settings, options, tmp_path,
                                                           monkeypatch, peer):
    state, port = peer
    package = tmp_path / "pkg"
    sanitize_medium(settings, str(_series_medium(tmp_path / "cd", COUNT)), package, options)
    to = f"dimse://{AET}@127.0.0.1:{port}?timeout=10"

    code, report = _cli(settings, monkeypatch, str(package), "--to", to)
    assert code == 1 and report["complete"] is False
    by_sop = {i["sop_instance_uid"]: i for i in report["instances"]}
    refused = [i for i in report["instances"] if i["state"] == "refused"]
    assert {i["sop_instance_uid"] for i in refused} == set(state.refused)
    assert len(refused) == COUNT // 2
    assert all(i["status"] == "0xA700" and "out of resources" in i["meaning"].lower()
               for i in refused)
    assert report["counts"]["confirmed"] == COUNT // 2
    assert all(by_sop[sop]["state"] == "confirmed" for sop in state.stored)
    journal = _journal(settings)
    assert sorted(r["state"] for r in journal.values()) == sorted(
        ["refused"] * (COUNT // 2) + ["confirmed"] * (COUNT // 2))
    assert {r["sop"] for r in journal.values() if r["state"] == "refused"} == set(state.refused)

    state.full = False  # later: the peer has room again
    code, again = _cli(settings, monkeypatch, str(package), "--to", to)
    assert code == 0 and again["complete"] and again["resumed"]
    assert again["sent_this_run"] == COUNT // 2  # only the refused ones
    assert again["counts"]["confirmed"] == COUNT
    assert len(state.stored) == COUNT
    assert all(len(times) == 1 for times in state.stored.values())  # nothing doubled
    assert all(r["state"] == "confirmed" for r in _journal(settings).values())
