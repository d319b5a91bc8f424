"""The results of an assessment as frozen values with ``to_dict()`` (the documented JSON).

JSON shape (docs/assess.md)::

    {"kind": "assess", "radguard_version", "started", "finished", "options", "tables",
     "summary": {"nodes", "reachable", "findings", "by_severity", "worst"},
     "nodes": [{"target", "kind", "host", "port", "aet", "reachable", "reason", "transport",
                "fingerprint", "findings": [{"id", "severity", "message", "evidence", "remedy",
                "controls", ...}], "checks": {id: "ran" | "not run: why"}, "connections",
                "changes": {"previous_scan_id", "new", "fixed", "unchanged"} | null,
                "scan_id"}]}
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from radguard import __version__
from radguard.findings import Finding, Severity

__all__ = ["AssessReport", "Changes", "NodeResult"]


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed on a node since its previous assessment (by finding fingerprint)."""

    previous_scan_id: int | None
    new: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    not_rechecked: tuple[str, ...] = ()
    """Earlier findings this run could not judge (node unreachable, check not run): not fixed."""

    def to_dict(self) -> dict[str, Any]:
        return {"previous_scan_id": self.previous_scan_id, "new": list(self.new),
                "fixed": list(self.fixed), "unchanged": list(self.unchanged),
                "not_rechecked": list(self.not_rechecked)}


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One target's result: reachable or not (with the reason), fingerprint, findings."""

    target: str
    kind: str
    host: str
    port: int
    aet: str | None
    reachable: bool
    reason: str
    transport: str | None
    fingerprint: dict[str, Any]
    findings: tuple[Finding, ...]
    checks: dict[str, str]
    connections: int
    scan_id: int | None = None
    changes: Changes | None = None

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.INFO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "kind": self.kind, "host": self.host, "port": self.port,
            "aet": self.aet, "reachable": self.reachable, "reason": self.reason,
            "transport": self.transport, "fingerprint": self.fingerprint,
            "findings": [f.to_dict() for f in self.findings], "checks": dict(self.checks),
            "connections": self.connections, "scan_id": self.scan_id,
            "changes": self.changes.to_dict() if self.changes else None,
        }


@dataclass(frozen=True, slots=True)
class AssessReport:
    """A whole assessment."""

    started: str
    finished: str
    nodes: tuple[NodeResult, ...]
    options: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)
    checks: tuple[dict[str, Any], ...] = ()

    @property
    def findings(self) -> list[Finding]:
        return [f for n in self.nodes for f in n.findings]

    @property
    def worst(self) -> Severity:
        return max((n.worst for n in self.nodes), default=Severity.INFO)

    def summary(self) -> dict[str, Any]:
        by = Counter(f.severity.label for f in self.findings)
        return {"nodes": len(self.nodes), "reachable": sum(n.reachable for n in self.nodes),
                "findings": len(self.findings),
                "by_severity": {s.label: by.get(s.label, 0) for s in Severity},
                "worst": self.worst.label}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "assess", "radguard_version": __version__, "started": self.started,
                "finished": self.finished, "options": dict(self.options),
                "tables": dict(self.tables), "summary": self.summary(),
                "checks": list(self.checks), "nodes": [n.to_dict() for n in self.nodes]}
