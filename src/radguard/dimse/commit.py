"""Storage Commitment Push Model as SCU (PS3.4 Annex J): ask the peer to commit what was sent.

:func:`request_commitment`:

1. starts a short-lived SCP (pynetdicom) for the Storage Commitment Push Model SOP Class
   (1.2.840.10008.1.20.1) on ``CommitSettings.host:port`` with AE title ``ae_title``; it accepts
   only associations called to that AE title and calling from the peer's AE title, and only
   N-EVENT-REPORTs whose Transaction UID (0008,1195) is one of this request's;
2. sends N-ACTION-RQ (action type 1, instance 1.2.840.10008.1.20.1.1, PS3.4 J.3.2) with a fresh
   Transaction UID and a Referenced SOP Sequence (0008,1199) of at most ``batch`` instances per
   transaction;
3. waits at most ``timeout`` seconds for the N-EVENT-REPORT of every transaction (event type 1: all
   committed, 2: failures exist; J.3.3) and stops the SCP.

Only a SOP Instance UID the peer listed in the Referenced SOP Sequence of a report, and that was
asked for, is ``committed``; one listed in the Failed SOP Sequence (0008,1198) is ``failed`` with
its Failure Reason (0008,1197). Everything else (no report before the timeout, N-ACTION refused,
SCP port busy) is simply not in the result: the caller checks it another way (C-FIND).
The report association is plain TCP (the commitment SCP has no TLS).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from radguard.dimse.association import CommitSettings, Peer, open_association
from radguard.dimse.errors import AssociationFailed

__all__ = ["COMMITMENT_INSTANCE", "COMMITMENT_SOP_CLASS", "CommitResult", "failure_reason",
           "request_commitment"]

COMMITMENT_SOP_CLASS = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
_SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


@dataclass(frozen=True, slots=True)
class CommitResult:
    """Reported instances: ``committed`` SOP Instance UIDs, ``failed`` UID -> Failure Reason;
    ``unreported`` counts instances asked about without a report; ``note`` says why, if any."""

    committed: frozenset[str] = frozenset()
    failed: dict[str, int] = field(default_factory=dict)
    unreported: int = 0
    note: str = ""


@functools.cache
def _reasons() -> dict[str, str]:
    text = resources.files("radguard.data.custody").joinpath("commitment-failure.json")
    data: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return {k.upper(): str(v) for k, v in data["reasons"].items()}


def failure_reason(code: int) -> str:
    """Meaning of a Failure Reason (0008,1197) code (PS3.4 J.3.2.1.1)."""
    return _reasons().get(f"{code:04X}", "Unknown failure reason")


class _Collector:
    """The N-EVENT-REPORT handler: keeps reports of known transactions."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.wanted: set[str] = set()
        self.reports: dict[str, Dataset] = {}

    def on_report(self, event: Any) -> tuple[int, None]:
        info = event.event_information
        uid = str(info.get("TransactionUID", "")) if info is not None else ""
        with self.lock:
            if uid not in self.wanted:
                return 0x0119, None  # Class / Instance conflict: not ours
            self.reports[uid] = info
            self.lock.notify_all()
        return 0x0000, None


def _request(sop_pairs: Sequence[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = generate_uid()
    items = []
    for sop_class, sop in sop_pairs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


def request_commitment(peer: Peer, items: Sequence[tuple[str, str]],
                       settings: CommitSettings | None = None) -> CommitResult:
    """Ask ``peer`` to commit ``items`` ((SOP Class UID, SOP Instance UID) pairs); see the module
    docstring. Never raises for a peer or network problem: those instances are unreported."""
    cfg = settings or peer.commit or CommitSettings()
    if not items:
        return CommitResult()
    from pynetdicom import AE, evt  # here, not at import: pynetdicom costs ~0.3 s at start-up

    collector = _Collector()
    scp = AE(ae_title=cfg.ae_title)
    scp.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    scp.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    scp.require_called_aet = True
    scp.require_calling_aet = [peer.called_aet]
    scp.network_timeout = scp.acse_timeout = scp.dimse_timeout = cfg.timeout
    scp.add_supported_context(COMMITMENT_SOP_CLASS, _SYNTAXES, scu_role=True, scp_role=True)
    why = "the server did not start"
    try:
        server = scp.start_server((cfg.host, cfg.port), block=False,
                                  evt_handlers=[(evt.EVT_N_EVENT_REPORT, collector.on_report)])
    except OSError as exc:
        server = None
        why = str(exc)
    if server is None:
        return CommitResult(unreported=len(items),
                            note=f"cannot listen on {cfg.host}:{cfg.port} for the commitment "
                                 f"report: {why}")
    try:
        note = _send_actions(peer, items, cfg, collector)
        deadline = time.monotonic() + cfg.timeout
        with collector.lock:
            while set(collector.reports) != collector.wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    note = note or "no commitment report before the timeout"
                    break
                collector.lock.wait(left)
            reports = list(collector.reports.values())
    finally:
        server.shutdown()
    return _result(items, reports, note)


def _send_actions(peer: Peer, items: Sequence[tuple[str, str]], cfg: CommitSettings,
                  collector: _Collector) -> str:
    """N-ACTION per batch; returns a note if some transaction could not be requested."""
    try:
        assoc = open_association(peer, [(COMMITMENT_SOP_CLASS, _SYNTAXES)])
    except AssociationFailed as exc:
        return f"storage commitment not available: {exc.message}"
    note = ""
    try:
        for start in range(0, len(items), max(1, cfg.batch)):
            req = _request(items[start:start + max(1, cfg.batch)])
            with collector.lock:
                collector.wanted.add(str(req.TransactionUID))
            status, _ = assoc.send_n_action(req, 1, COMMITMENT_SOP_CLASS, COMMITMENT_INSTANCE)
            code = int(getattr(status, "Status", 0xFFFF)) if status else 0xFFFF
            if code != 0x0000:
                with collector.lock:
                    collector.wanted.discard(str(req.TransactionUID))
                note = f"N-ACTION refused by the peer (status 0x{code:04X})"
                if not assoc.is_established:
                    break
    finally:
        if assoc.is_established:
            assoc.release()
    return note


def _result(items: Sequence[tuple[str, str]], reports: list[Dataset], note: str) -> CommitResult:
    asked = {sop for _, sop in items}
    committed: set[str] = set()
    failed: dict[str, int] = {}
    for info in reports:
        for item in info.get("ReferencedSOPSequence", []):
            uid = str(item.get("ReferencedSOPInstanceUID", ""))
            if uid in asked:
                committed.add(uid)
        for item in info.get("FailedSOPSequence", []):
            uid = str(item.get("ReferencedSOPInstanceUID", ""))
            if uid in asked and uid not in committed:
                failed[uid] = int(item.get("FailureReason", 0x0110))
    unreported = len(asked - committed - set(failed))
    return CommitResult(frozenset(committed), failed, unreported, note)
