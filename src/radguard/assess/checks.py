"""The assessment checks: small classes with a stable id, severity, description, remedy and controls.

One registry (:data:`REGISTRY`) holds them; the CLI help (``--only``), the JSON, SARIF rules and the
docs derive from it. A check reads a probe (:mod:`radguard.assess.probe`) and returns findings; when
it cannot run on a node it raises :class:`NotRun` with the reason, which the report keeps. Controls
come from the versioned table ``controls.json``. ``target`` says what a check runs on: ``dicom`` (a
DIMSE endpoint), ``http`` (a URL) or ``site`` (all endpoints of one host together).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

from radguard.assess.tables import controls_for
from radguard.findings import ControlRef, Evidence, Finding, Severity

__all__ = ["REGISTRY", "Check", "NotRun", "all_checks", "register", "select"]


class NotRun(Exception):
    """The check could not run on this node; the message says why."""


class Check:
    """Base of the checks; subclasses declare class data and implement :meth:`run`."""

    id: ClassVar[str]
    severity: ClassVar[Severity]
    description: ClassVar[str]
    remedy: ClassVar[str]
    target: ClassVar[str] = "dicom"
    intrusive: ClassVar[bool] = False
    sends: ClassVar[tuple[str, ...]] = ()
    """What the check sends, in words (``--dry-run`` prints them)."""
    fingerprint_depth: ClassVar[str] = "compact"
    """Fingerprint depth the check needs (``full``: the whole SOP-class inventory); the run
    probes the deepest that a selected check or the user asks for."""

    @classmethod
    def controls(cls) -> tuple[ControlRef, ...]:
        return controls_for(cls.id)

    @classmethod
    def finding(cls, message: str, *, asset: str, severity: Severity | None = None,
                **details: Any) -> Finding:
        return Finding(cls.id, severity if severity is not None else cls.severity, message,
                       Evidence(path=asset, details=details), cls.controls(), cls.remedy, asset)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.id, "severity": cls.severity.label, "target": cls.target,
                "intrusive": cls.intrusive, "description": cls.description,
                "remedy": cls.remedy, "controls": [str(c) for c in cls.controls()],
                "sends": list(cls.sends)}

    @classmethod
    def plan(cls, fingerprint_depth: str) -> tuple[str, ...]:
        """What the check sends at this fingerprint depth (``--dry-run``); :attr:`sends` unless a
        check's traffic depends on the depth."""
        return cls.sends

    def run(self, probe: Any) -> list[Finding]:
        raise NotImplementedError


REGISTRY: dict[str, type[Check]] = {}


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: add a check to :data:`REGISTRY` (ids are unique)."""
    if cls.id in REGISTRY:
        raise ValueError(f"duplicate assess check id {cls.id}")
    REGISTRY[cls.id] = cls
    return cls


_MODULES = ("radguard.assess.checks_dicom", "radguard.assess.checks_tls",
            "radguard.assess.checks_web")


def all_checks() -> dict[str, type[Check]]:
    """Every registered check (importing the check modules once)."""
    for name in _MODULES:
        importlib.import_module(name)
    return REGISTRY


def select(only: Sequence[str], *, intrusive: bool) -> list[type[Check]]:
    """The checks to run: ``only`` ids (or all), intrusive ones only when allowed.

    Raises
    ------
    ValueError
        An id in ``only`` is not a check; the message lists the valid ids.
    """
    checks = all_checks()
    unknown = [c for c in only if c not in checks]
    if unknown:
        raise ValueError(f"unknown check id(s) {', '.join(unknown)}; valid: "
                         f"{', '.join(sorted(checks))}")
    chosen = [checks[c] for c in only] if only else list(checks.values())
    return sorted((c for c in chosen if intrusive or not c.intrusive), key=lambda c: c.id)
