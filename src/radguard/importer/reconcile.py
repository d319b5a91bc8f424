"""Patient reconciliation on import (IHE RAD Import Reconciliation Workflow, RAD TF-1 21).

Outside Patient ID (0010,0020) / Issuer of Patient ID (0010,0021) are mapped to the local ones, from
the operator's ``--patient-id``/``--issuer`` or a CSV rule file with the header
``outside_patient_id,outside_issuer,local_patient_id,local_issuer`` (an empty outside issuer
matches any issuer). The outside identifiers are kept as an item of Other Patient IDs Sequence
(0010,1002). With none of these, the import stops before sending unless the operator chose
``--keep-ids``. ``new_uids`` replaces Study/Series/SOP Instance UIDs by UIDs derived from the package
id and the old UID, so a resumed import derives the same ones (nothing doubled).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from radguard.dicomio.uids import derive_uid
from radguard.importer.errors import ReconciliationNeeded
from radguard.importer.interface import ImportOptions

__all__ = ["Reconciler", "Rule", "load_rules"]

HEADER = ("outside_patient_id", "outside_issuer", "local_patient_id", "local_issuer")
MAX_RULES = 1_000_000


@dataclass(frozen=True, slots=True)
class Rule:
    outside_id: str
    outside_issuer: str
    local_id: str
    local_issuer: str


def load_rules(path: str) -> list[Rule]:
    """Read a reconciliation CSV.

    Raises
    ------
    ReconciliationNeeded
        The file cannot be read or lacks the header columns.
    """
    try:
        with open(Path(path), encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not set(HEADER) <= set(reader.fieldnames):
                raise ReconciliationNeeded("rule file lacks the columns " + ",".join(HEADER),
                                           subject=path, remedy="add the header line")
            rules = []
            for n, row in enumerate(reader):
                if n >= MAX_RULES:
                    break
                if row["outside_patient_id"] and row["local_patient_id"]:
                    rules.append(Rule(row["outside_patient_id"].strip(),
                                      (row["outside_issuer"] or "").strip(),
                                      row["local_patient_id"].strip(),
                                      (row["local_issuer"] or "").strip()))
            return rules
    except OSError as exc:
        raise ReconciliationNeeded(f"cannot read the rule file: {exc.strerror}", subject=path,
                                   remedy="check the --rules path") from exc


class Reconciler:
    """Applies the reconciliation and UID policy of :class:`ImportOptions` to data sets."""

    def __init__(self, options: ImportOptions, package_id: str):
        self.options = options
        self.package_id = package_id
        self.rules = load_rules(options.rules) if options.rules else []

    @property
    def passthrough(self) -> bool:
        """True when no data set can change (outside IDs kept on purpose, UIDs kept)."""
        o = self.options
        return o.keep_ids and not (o.patient_id or self.rules or o.new_uids)

    def target(self, outside_id: str, outside_issuer: str) -> tuple[str, str] | None:
        """The local (id, issuer) for an outside patient, or ``None`` to keep the outside ones."""
        if self.options.patient_id:
            return self.options.patient_id, self.options.issuer or ""
        for r in self.rules:
            if r.outside_id == outside_id and r.outside_issuer in ("", outside_issuer):
                return r.local_id, r.local_issuer
        if self.options.keep_ids:
            return None
        raise ReconciliationNeeded(
            "an outside patient has no local identifier", subject="Patient ID",
            remedy="give --patient-id/--issuer, a --rules CSV with a line for this patient, or "
            "--keep-ids to import the outside identifiers unchanged")

    def needs_change(self, outside_id: str, outside_issuer: str) -> bool:
        t = self.target(outside_id, outside_issuer)
        return self.options.new_uids or (t is not None and t != (outside_id, outside_issuer))

    def apply(self, ds: Dataset) -> tuple[str, ...]:
        """Change ``ds`` in place; return the changes, for the import report."""
        changes: list[str] = []
        old_id = str(ds.get("PatientID", ""))
        old_issuer = str(ds.get("IssuerOfPatientID", ""))
        target = self.target(old_id, old_issuer)
        if target is not None and target != (old_id, old_issuer):
            item = Dataset()
            item.PatientID = old_id
            if old_issuer:
                item.IssuerOfPatientID = old_issuer
            item.TypeOfPatientID = "TEXT"
            others = list(ds.get("OtherPatientIDsSequence", []))
            ds.OtherPatientIDsSequence = [*others, item]
            ds.PatientID = target[0]
            if target[1]:
                ds.IssuerOfPatientID = target[1]
            elif "IssuerOfPatientID" in ds:
                del ds.IssuerOfPatientID
            changes.append(f"Patient ID {old_id!r} (issuer {old_issuer!r}) -> {target[0]!r} "
                           f"(issuer {target[1]!r}); outside IDs kept in Other Patient IDs "
                           "Sequence")
        if self.options.new_uids:
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                old = str(ds.get(keyword, ""))
                if old:
                    new = derive_uid(self.package_id, keyword, old)
                    setattr(ds, keyword, new)
                    changes.append(f"{keyword} {old} -> {new}")
        return tuple(changes)
