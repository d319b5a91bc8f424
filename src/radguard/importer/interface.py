"""Values of the importer: options, per-instance results and the import report (issue 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from radguard import __version__
from radguard.dimse.status import StatusMeaning

__all__ = ["ImportOptions", "ImportReport", "InstanceResult", "Outgoing", "Sender"]


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to import: reconciliation inputs and UID policy."""

    patient_id: str | None = None
    issuer: str | None = None
    rules: str | None = None  # CSV file of outside -> local identifiers
    keep_ids: bool = False  # import outside identifiers unchanged (explicit choice)
    new_uids: bool = False  # new Study/Series/SOP Instance UIDs (deterministic per package)
    batch: int = 50  # instances per STOW-RS request
    associations: int = 2  # DIMSE associations used in parallel (1-8; a peer may grant fewer)
    confirm_while_sending: bool = True  # DIMSE: C-FIND sent instances on one more association


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One instance ready to send: identity and the encoded data set (no File Meta)."""

    name: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    transfer_syntax: str
    dataset: bytes | memoryview  # a view into part10, not a copy
    part10: bytes  # the whole file, for STOW-RS


@dataclass(frozen=True, slots=True)
class InstanceResult:
    """What happened to one instance of the package."""

    name: str
    sop_instance_uid: str
    study_uid: str
    state: str  # confirmed | sent | refused | missing | pending
    status: int | None = None
    meaning: str = ""
    changes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sop_instance_uid": self.sop_instance_uid,
                "study_uid": self.study_uid, "state": self.state,
                "status": None if self.status is None else f"0x{self.status:04X}",
                "meaning": self.meaning, "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The result of one ``media import`` run (resumed runs included)."""

    package: str
    package_id: str
    signed_by: str
    station: str
    destination: str
    instances: tuple[InstanceResult, ...]
    resumed: bool = False
    sent_this_run: int = 0
    bytes_this_run: int = 0
    seconds: float = 0.0
    reconciliation: tuple[str, ...] = field(default_factory=tuple)
    confirmation_error: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds: verify, send, confirm
    commitment: dict[str, Any] = field(default_factory=dict)  # storage commitment summary

    @property
    def counts(self) -> dict[str, int]:
        c = {"instances": len(self.instances), "confirmed": 0, "sent": 0, "refused": 0,
             "missing": 0, "pending": 0}
        for i in self.instances:
            c[i.state] += 1
        return c

    @property
    def complete(self) -> bool:
        return self.counts["confirmed"] == len(self.instances)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "radguard.media.import/1", "radguard_version": __version__,
                "package": self.package, "package_id": self.package_id,
                "signed_by": self.signed_by, "station": self.station,
                "destination": self.destination, "resumed": self.resumed,
                "complete": self.complete, "counts": self.counts,
                "sent_this_run": self.sent_this_run, "bytes_this_run": self.bytes_this_run,
                "seconds": round(self.seconds, 3), "reconciliation": list(self.reconciliation),
                "confirmation_error": self.confirmation_error, "timings": dict(self.timings),
                "commitment": dict(self.commitment),
                "instances": [i.to_dict() for i in self.instances]}


class Sender(Protocol):
    """A destination: send instances over one of ``lanes`` parallel channels, then say which of
    the sent instances (study UID -> SOP Instance UIDs) it holds."""

    label: str

    @property
    def lanes(self) -> int: ...

    def open(self) -> None: ...

    def send(self, batch: list[Outgoing], lane: int = 0) -> list[StatusMeaning]: ...

    def held(self, wanted: Mapping[str, Sequence[str]]) -> set[str]: ...

    def close(self) -> None: ...
