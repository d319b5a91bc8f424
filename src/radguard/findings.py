"""The common currency of RadGuard: findings.

Every subsystem produces :class:`Finding` values (a check id, a severity, a message, evidence and the
controls the check maps to). Reports, the store, the dashboard and compliance read findings; none of
them knows how a finding was made. Values are frozen dataclasses; rendering lives in :mod:`radguard.formats`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ControlRef", "Evidence", "Finding", "Severity", "Verdict", "worst"]


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so that ``max()`` gives the worst."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}; use one of {[s.label for s in cls]}") from None


class Verdict(enum.IntEnum):
    """Verdict of a file or a medium (media scan); ordered so that ``max()`` gives the worst."""

    CLEAN = 0
    SUSPICIOUS = 1
    DANGEROUS = 2

    @property
    def label(self) -> str:
        return self.name.lower()


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """Return the worst of ``verdicts``, or ``CLEAN`` for none."""
    return max(verdicts, default=Verdict.CLEAN)


@dataclass(frozen=True, slots=True)
class ControlRef:
    """A reference to a control in a framework: ``ControlRef("NIST-CSF-2.0", "PR.DS-01")``."""

    framework: str
    control: str

    def __str__(self) -> str:
        return f"{self.framework}:{self.control}"

    @classmethod
    def parse(cls, text: str) -> ControlRef:
        framework, sep, control = text.partition(":")
        if not sep or not framework or not control:
            raise ValueError(f"control reference {text!r} must read FRAMEWORK:CONTROL")
        return cls(framework, control)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a finding was seen: a path (relative to the scanned root) and/or byte offset, and details.

    ``details`` holds small JSON-safe values only; never PHI (invariant 4 of DESIGN.md).
    """

    path: str | None = None
    offset: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "offset": self.offset, "details": dict(self.details)}


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation by one check.

    Attributes
    ----------
    check_id:
        Stable id of the check, e.g. ``media.preamble-executable``.
    severity:
        How bad it is.
    message:
        One sentence for an operator: what was seen.
    evidence:
        Where it was seen.
    controls:
        Controls the check maps to (MITA CSP 1, NIST CSF 2.0, HIPAA 164.312...).
    remedy:
        What to do about it.
    asset:
        The asset concerned (a medium, a node, a file), if any.
    """

    check_id: str
    severity: Severity
    message: str
    evidence: Evidence = field(default_factory=Evidence)
    controls: tuple[ControlRef, ...] = ()
    remedy: str = ""
    asset: str | None = None

    @property
    def offset(self) -> int | None:
        return self.evidence.offset

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, the shape documented in README (``id``, ``severity``, ``message``...)."""
        return {
            "id": self.check_id,
            "severity": self.severity.label,
            "message": self.message,
            "offset": self.evidence.offset,
            "path": self.evidence.path,
            "evidence": self.evidence.to_dict(),
            "remedy": self.remedy,
            "controls": [str(c) for c in self.controls],
            "asset": self.asset,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        ev = data.get("evidence") or {}
        return cls(
            check_id=str(data["id"]),
            severity=Severity.parse(str(data["severity"])),
            message=str(data["message"]),
            evidence=Evidence(
                path=ev.get("path", data.get("path")),
                offset=ev.get("offset", data.get("offset")),
                details=dict(ev.get("details") or {}),
            ),
            controls=tuple(ControlRef.parse(c) for c in data.get("controls", ())),
            remedy=str(data.get("remedy", "")),
            asset=data.get("asset"),
        )
