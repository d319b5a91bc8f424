"""Immutable results of de-identification: per attribute, per data set, per file and per run.

No value of the original data set is ever kept in these results (DESIGN.md invariant 4): a change
names the attribute, its path in the data set, the action and the reason, never the value.
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from radguard.findings import Finding

__all__ = ["Change", "DeidChanges", "DeidRunReport", "FileDeidReport", "FileStatus"]


@dataclass(frozen=True, slots=True)
class Change:
    """One attribute changed: ``path`` like ``(0008,1140)[0].(0008,1155)``; ``action`` D, Z, X, K,
    C or U (K appears when an option kept what the Basic Profile would have changed)."""

    path: str
    name: str
    action: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "name": self.name, "action": self.action, "reason": self.reason}

    def __reduce__(self) -> tuple[Any, tuple[str, str, str, str]]:
        # Pickled as its four strings: a run sends tens of thousands of changes from the
        # workers, and the generic slots pickling (a Python-level state call per object) was
        # the main cost of moving results between processes.
        return Change, (self.path, self.name, self.action, self.reason)


@dataclass(frozen=True, slots=True)
class DeidChanges:
    """What :func:`radguard.deid.deidentify_dataset` did to one data set.

    ``applied`` are the option ids actually carried out on this data set (the method codes written);
    ``uncleaned`` says what an option asked for but could not be done (never passed silently);
    ``original_patient`` / ``new_patient`` and the study UIDs serve the audit message only.
    """

    changes: tuple[Change, ...]
    applied: tuple[str, ...]
    uncleaned: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    original_patient_id: str = field(default="", repr=False)
    original_study_uid: str = field(default="", repr=False)
    new_patient_id: str = ""
    new_study_uid: str = ""
    sop_class_uid: str = ""

    def counts(self) -> dict[str, int]:
        return dict(Counter(c.action for c in self.changes))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return DeidChanges, tuple(getattr(self, name) for name in self.__slots__)

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": list(self.applied),
            "uncleaned": list(self.uncleaned),
            "notes": list(self.notes),
            "counts": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
        }


class FileStatus(enum.StrEnum):
    """Outcome of one file."""

    DEIDENTIFIED = "deidentified"
    INCOMPLETE = "incomplete"
    """Written, but an option could not be fully applied (see ``uncleaned``)."""
    REFUSED = "refused"
    """Not DICOM, hostile or unreadable: nothing written (see ``findings``)."""
    FAILED = "failed"
    """Could not be written (disk, permissions)."""


@dataclass(frozen=True, slots=True)
class FileDeidReport:
    """One input file: where it went and what was done (or why nothing was)."""

    source: str
    output: str | None
    status: FileStatus
    changes: DeidChanges | None = None
    findings: tuple[Finding, ...] = ()
    message: str = ""
    pending: str | None = None
    """Temporary file still to be synced and renamed to ``output`` (batch runs only)."""
    engine: str = ""
    """Which path de-identified the file: ``bytes`` (byte-level, :mod:`radguard.deid.fastpath`) or
    ``pydicom``; empty when nothing was written."""
    fallback: str = ""
    """Why the byte-level path did not serve this file (empty when it did or was not tried)."""

    @property
    def ok(self) -> bool:
        return self.status in (FileStatus.DEIDENTIFIED, FileStatus.INCOMPLETE)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return FileDeidReport, tuple(getattr(self, name) for name in self.__slots__)

    def to_json(self) -> str:
        """This report as compact JSON (what :meth:`DeidRunReport.to_json` joins)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "status": self.status.value,
            "message": self.message,
            "engine": self.engine,
            "fallback": self.fallback,
            "findings": [f.to_dict() for f in self.findings],
            **(self.changes.to_dict() if self.changes is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class DeidRunReport:
    """A whole run (``radguard deid INPUT --out OUTPUT``); JSON shape documented in docs/deid.md."""

    input: str
    output: str
    options: tuple[str, ...]
    preset: str | None
    files: tuple[FileDeidReport, ...]
    tables: Mapping[str, str]
    started: str
    finished: str
    seconds: float
    radguard_version: str
    audit: str = ""
    files_json: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """Each file's :meth:`FileDeidReport.to_json`, made by the workers when the caller asked for
    them (``deidentify_tree(..., json=True)``), in the order of ``files``; empty otherwise."""

    def counts(self) -> dict[str, int]:
        counts = Counter(f.status.value for f in self.files)
        return {"files": len(self.files), **{s.value: counts.get(s.value, 0) for s in FileStatus}}

    @property
    def ok(self) -> bool:
        return all(f.status == FileStatus.DEIDENTIFIED for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "files": [f.to_dict() for f in self.files]}

    def to_json(self) -> str:
        """``json.dumps(self.to_dict(), ensure_ascii=False, default=str)`` (compact, one line):
        the files' parts come from ``files_json`` when the workers made them, so the serial end
        of a run only joins them."""
        if len(self.files_json) != len(self.files):
            return json.dumps(self.to_dict(), ensure_ascii=False, default=str)
        head = json.dumps({**self._head(), "files": []}, ensure_ascii=False, default=str)
        return f"{head[:-2]}{', '.join(self.files_json)}]}}"

    def _head(self) -> dict[str, Any]:
        return {
            "radguard_version": self.radguard_version,
            "input": self.input,
            "output": self.output,
            "options": list(self.options),
            "preset": self.preset,
            "tables": dict(self.tables),
            "started": self.started,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
            "files_per_second": round(len(self.files) / self.seconds, 1) if self.seconds else None,
            "counts": self.counts(),
            "audit": self.audit,
        }
