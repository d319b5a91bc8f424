"""Result values of the media subsystem: frozen, JSON-ready, rendered elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from radguard.findings import Finding, Verdict

__all__ = ["SCHEMA_VERSION", "FileKind", "FileReport", "MediumReport"]

FileKind = Literal["dicom", "dicomdir", "other"]
SCHEMA_VERSION = "1"
PUBLIC_IDENTITY_KEYS = frozenset({"study_uid", "series_uid", "sop_instance_uid", "sop_class_uid",
                                  "transfer_syntax"})
"""Identity keys that may leave the process (UIDs); patient values and hashes never do."""
_ENCODER = json.JSONEncoder(ensure_ascii=False)
"""``json.dumps(x, ensure_ascii=False)`` without building an encoder per call (once per file)."""
_JSON_CHUNK = 256
"""Files per piece of :meth:`MediumReport.iter_json` (one write each; memory stays bounded)."""


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
    _json: str | None = field(default=None, init=False, compare=False, repr=False)
    """:meth:`json_line` when a worker already wrote it (not an init field: ``replace`` drops it)."""

    def json_line(self) -> str:
        """``json.dumps(self.to_dict(), ensure_ascii=False)``, computed once (scan workers fill it
        in so that the parent process only joins lines)."""
        line = self._json
        if line is None:
            line = _ENCODER.encode(self.to_dict())
            object.__setattr__(self, "_json", line)
        return line

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
    _counts: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_counts", self._count())

    @property
    def counts(self) -> dict[str, int]:
        """Files per verdict and kind, findings and bytes (computed once)."""
        return dict(self._counts)

    def _count(self) -> dict[str, int]:
        counts = {"files": len(self.files), "clean": 0, "suspicious": 0, "dangerous": 0,
                  "dicom": 0, "dicomdir": 0, "other": 0, "findings": len(self.findings)}
        labels = {v: v.label for v in Verdict}
        findings = size = 0
        for f in self.files:
            counts[labels[f.verdict]] += 1
            counts[f.kind] += 1
            findings += len(f.findings)
            size += f.size
        counts["findings"] += findings
        counts["bytes"] = size
        return counts

    def iter_json(self) -> Iterator[str]:
        """The JSON document of :meth:`to_dict`, in pieces: one line per file, so that a report
        of any size is written without building it whole in memory (same content)."""
        head = self.to_dict(with_files=False)
        text = json.dumps(head, indent=2, ensure_ascii=False)
        yield text[: text.rindex("}")].rstrip() + ',\n  "files": ['
        files = self.files
        for start in range(0, len(files), _JSON_CHUNK):  # a few hundred lines per piece
            lines = [f.json_line() for f in files[start : start + _JSON_CHUNK]]
            yield ("\n    " if start == 0 else ",\n    ") + ",\n    ".join(lines)
        yield "\n  ]\n}\n"

    def to_dict(self, *, with_files: bool = True) -> dict[str, Any]:
        data = self._head()
        if with_files:
            data["files"] = [f.to_dict() for f in self.files]
        return data

    def _head(self) -> dict[str, Any]:
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
        }
