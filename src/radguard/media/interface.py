"""Result values of the media subsystem: frozen, JSON-ready, rendered elsewhere."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from radguard.findings import Finding, Verdict

__all__ = ["SCHEMA_VERSION", "FileKind", "FileReport", "MediumReport"]

FileKind = Literal["dicom", "dicomdir", "other"]
SCHEMA_VERSION = "1"
PUBLIC_IDENTITY_KEYS = frozenset({"study_uid", "series_uid", "sop_instance_uid", "sop_class_uid",
                                  "transfer_syntax"})
"""Identity keys that may leave the process (UIDs); patient values and hashes never do."""


@dataclass(frozen=True, slots=True)
class FileReport:
    """The verdict on one file of a medium.

    ``identity`` holds UIDs (study, series, SOP instance/class, transfer syntax) and *salted hashes*
    of patient identity (never names, IDs or dates: invariant 4), for medium-level checks.
    ``references`` holds, for a DICOMDIR, its (file id, SOP instance UID) records.
    """

    path: str
    kind: FileKind
    size: int
    sha256: str | None
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    identity: Mapping[str, str] = field(default_factory=dict)
    references: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "sha256": self.sha256,
            "size": self.size,
            "verdict": self.verdict.label,
            "findings": [f.to_dict() for f in self.findings],
            "uids": {k: v for k, v in self.identity.items() if k in PUBLIC_IDENTITY_KEYS},
        }


@dataclass(frozen=True, slots=True)
class MediumReport:
    """The verdict on a whole medium: the worst of its files and of its own findings."""

    path: str
    medium_kind: str
    verdict: Verdict
    files: tuple[FileReport, ...]
    findings: tuple[Finding, ...]
    started: str
    finished: str
    engines: Mapping[str, str]
    tables: Mapping[str, str]
    radguard_version: str
    scan_id: int | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts = {"files": len(self.files), "clean": 0, "suspicious": 0, "dangerous": 0,
                  "dicom": 0, "dicomdir": 0, "other": 0, "findings": len(self.findings)}
        for f in self.files:
            counts[f.verdict.label] += 1
            counts[f.kind] += 1
            counts["findings"] += len(f.findings)
        counts["bytes"] = sum(f.size for f in self.files)
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": f"radguard.media.scan/{SCHEMA_VERSION}",
            "radguard_version": self.radguard_version,
            "scan_id": self.scan_id,
            "medium": {
                "path": self.path,
                "kind": self.medium_kind,
                "verdict": self.verdict.label,
                "counts": self.counts,
                "findings": [f.to_dict() for f in self.findings],
                "started": self.started,
                "finished": self.finished,
            },
            "engines": dict(self.engines),
            "tables": dict(self.tables),
            "files": [f.to_dict() for f in self.files],
        }
