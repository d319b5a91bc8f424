"""Quarantine actions as the faces run them: release and purge, both explicit and audited.

A release copies an original out of quarantine (it stays in the store) and needs an operator and a
reason; a purge deletes it and needs the same. Both emit a PS3.15 A.5.3.11 Security Alert with
EventTypeCode 110132 "Use of Restricted Function" naming the object, the operator and the reason.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from radguard.audit import AuditEmitter, builders
from radguard.audit.message import Outcome
from radguard.config import Settings
from radguard.keys.fsio import atomic_write
from radguard.quarantine.errors import QuarantineError
from radguard.quarantine.store import QuarantineItem, QuarantineStore

__all__ = ["Released", "purge", "release"]

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Released:
    """Where a released original was written."""

    item: QuarantineItem
    path: Path


def _require(operator: str, reason: str, action: str) -> None:
    if not operator.strip() or not reason.strip():
        raise QuarantineError(f"{action} needs a named operator and a reason",
                              remedy="give --operator NAME and --reason TEXT")


def _alert(settings: Settings, item: QuarantineItem, operator: str, what: str,
           details: list[str]) -> None:
    AuditEmitter.from_settings(settings).emit(builders.security_alert(
        "110132", station=settings.station_name, subject=f"quarantine:sha256:{item.sha256}",
        user=operator, site=settings.site or None, outcome=Outcome.SUCCESS,
        details=details, description=f"quarantine {what} ({item.verdict or 'unknown'} original)"))


def release(settings: Settings, ref: str, to_dir: Path, *, operator: str,
            reason: str) -> Released:
    """Copy the original ``ref`` to ``to_dir`` (never over an existing file) and audit it.

    Raises
    ------
    QuarantineError
        Missing operator or reason, unknown item, damaged object, or the target exists.
    """
    _require(operator, reason, "a release")
    store = QuarantineStore(settings.home_path)
    item = store.get(ref)
    data = store.read(item.sha256)
    base = posixpath.basename(item.sightings[0].path) if item.sightings else ""
    name = SAFE_NAME.sub("_", base).strip("._") or "original"
    target = to_dir / f"{name}.{item.sha256[:12]}"
    try:
        written = atomic_write(target, data, mode=0o644, exclusive=True)
    except OSError as exc:
        raise QuarantineError(f"cannot write the released copy: {exc.strerror}",
                              subject=str(target), remedy="choose a writable --to folder") from exc
    if not written:
        raise QuarantineError("a file of that name already exists", subject=str(target),
                              remedy="choose another --to folder or move the file away")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    item = store.add_release(item.sha256, {"when": when, "operator": operator,
                                           "reason": reason, "to": str(target)})
    _alert(settings, item, operator, "release", [f"reason: {reason}", f"copied to: {target}"])
    return Released(item, target)


def purge(settings: Settings, ref: str, *, operator: str, reason: str) -> QuarantineItem:
    """Delete the original ``ref`` and its record from quarantine, and audit it.

    Raises
    ------
    QuarantineError
        Missing operator or reason, or unknown item.
    """
    _require(operator, reason, "a purge")
    store = QuarantineStore(settings.home_path)
    item = store.remove(store.get(ref).sha256)
    _alert(settings, item, operator, "purge", [f"reason: {reason}",
                                               f"sightings: {len(item.sightings)}"])
    return item
