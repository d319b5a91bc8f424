"""What subsystems call to keep and read results: plain values in, frozen values out.

Every function takes an open :class:`~radguard.store.db.Store` first and runs in its own short
transaction; none returns a session or an ORM object. Timestamps are tz-aware UTC. Findings go in as
:class:`radguard.findings.Finding` and come back as :class:`StoredFinding`, whose ``finding``
rebuilds the original value.

Raises
------
StoreError
    From every function, when the database refuses (see :class:`~radguard.store.db.Store`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radguard import __version__
from radguard.errors import StoreError
from radguard.findings import ControlRef, Evidence, Finding, Severity, Verdict
from radguard.store.db import Store
from radguard.store.models import Asset, FindingRecord, Job, Scan, ScanItem, utcnow

__all__ = [
    "AssetOut",
    "FindingDiff",
    "ItemIn",
    "ItemOut",
    "JobOut",
    "ScanOut",
    "StoredFinding",
    "add_findings",
    "diff_findings",
    "findings_for_asset",
    "findings_for_scan",
    "fingerprint",
    "get_asset",
    "get_job",
    "get_scan",
    "items_for_scan",
    "list_assets",
    "list_scans",
    "record_scan",
    "save_job",
    "upsert_asset",
]


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class ItemIn:
    """One file or node of a scan, as given to :func:`record_scan`.

    ``findings`` are stored linked to this item (and to the scan). ``data`` holds small JSON-safe
    values, never PHI.
    """

    path: str
    kind: str = "file"
    size: int | None = None
    sha256: str | None = None
    verdict: Verdict | str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    findings: Sequence[Finding] = ()


@dataclass(frozen=True, slots=True)
class ItemOut:
    """A stored scan item."""

    id: int
    scan_id: int
    path: str
    kind: str
    size: int | None
    sha256: str | None
    verdict: str | None
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ScanOut:
    """A stored scan, with the number of its items and findings."""

    id: int
    kind: str
    subject: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    verdict: str | None
    operator: str
    station: str
    summary: Mapping[str, Any]
    radguard_version: str
    item_count: int
    finding_count: int


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A stored finding: the :class:`Finding` plus where it is attached and its fingerprint."""

    id: int
    scan_id: int | None
    item_id: int | None
    asset_id: int | None
    created_at: datetime
    fingerprint: str
    finding: Finding


@dataclass(frozen=True, slots=True)
class AssetOut:
    """A stored inventory asset."""

    id: int
    kind: str
    name: str
    address: str | None
    ae_title: str | None
    data: Mapping[str, Any]
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class JobOut:
    """A journal entry of a resumable job."""

    id: int
    kind: str
    key: str
    state: str
    progress: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


class FindingDiff(NamedTuple):
    """Fingerprints of a later scan compared with an earlier one; unpacks as
    ``new, fixed, unchanged``."""

    new: frozenset[str]
    fixed: frozenset[str]
    unchanged: frozenset[str]


# ---------------------------------------------------------------------------------------------
# Conversions


def _json_safe(value: Any) -> Any:
    # Findings' details are meant to be JSON-safe already; a stray value (bytes, a Path) is kept
    # as its text rather than losing the finding.
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def _label(verdict: Verdict | str | None) -> str | None:
    if verdict is None:
        return None
    return verdict.label if isinstance(verdict, Verdict) else str(verdict)


def fingerprint(finding: Finding) -> str:
    """A stable hash (hex SHA-256) identifying the problem a finding reports.

    Built from the check id, the finding's asset, the evidence path and the evidence details
    (canonical JSON, sorted keys). The message, severity, offset and remedy are left out so that
    rewording a message or re-rating a check does not make an old problem look new.
    """
    canonical = json.dumps(
        {
            "check": finding.check_id,
            "asset": finding.asset,
            "path": finding.evidence.path,
            "details": _json_safe(dict(finding.evidence.details)),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _finding_row(
    finding: Finding,
    *,
    scan_id: int | None,
    item_id: int | None,
    asset_id: int | None,
    now: datetime,
) -> FindingRecord:
    return FindingRecord(**_finding_values(finding, scan_id=scan_id, item_id=item_id,
                                           asset_id=asset_id, now=now))


def _finding_values(
    finding: Finding,
    *,
    scan_id: int | None,
    item_id: int | None,
    asset_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "item_id": item_id,
        "asset_id": asset_id,
        "check_id": finding.check_id,
        "severity": finding.severity.label,
        "message": finding.message,
        "path": finding.evidence.path,
        "offset": finding.evidence.offset,
        "evidence": _json_safe(finding.evidence.to_dict()),
        "controls": [str(c) for c in finding.controls],
        "remedy": finding.remedy,
        "asset": finding.asset,
        "created_at": now,
        "fingerprint": fingerprint(finding),
    }


def _finding_out(row: FindingRecord) -> StoredFinding:
    evidence = row.evidence or {}
    finding = Finding(
        check_id=row.check_id,
        severity=Severity.parse(row.severity),
        message=row.message,
        evidence=Evidence(
            path=row.path,
            offset=row.offset,
            details=dict(evidence.get("details") or {}),
        ),
        controls=tuple(ControlRef.parse(c) for c in row.controls),
        remedy=row.remedy,
        asset=row.asset,
    )
    return StoredFinding(
        id=row.id,
        scan_id=row.scan_id,
        item_id=row.item_id,
        asset_id=row.asset_id,
        created_at=row.created_at,
        fingerprint=row.fingerprint,
        finding=finding,
    )


def _item_out(row: ScanItem) -> ItemOut:
    return ItemOut(
        id=row.id, scan_id=row.scan_id, path=row.path, kind=row.kind, size=row.size,
        sha256=row.sha256, verdict=row.verdict, data=dict(row.data),
    )


def _asset_out(row: Asset) -> AssetOut:
    return AssetOut(
        id=row.id, kind=row.kind, name=row.name, address=row.address, ae_title=row.ae_title,
        data=dict(row.data), first_seen=row.first_seen, last_seen=row.last_seen,
    )


def _job_out(row: Job) -> JobOut:
    return JobOut(
        id=row.id, kind=row.kind, key=row.key, state=row.state, progress=dict(row.progress),
        created_at=row.created_at, updated_at=row.updated_at,
    )


def _scans_out(session: Session, rows: Sequence[Scan]) -> list[ScanOut]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    items: dict[int | None, int] = {
        scan_id: count
        for scan_id, count in session.execute(
            select(ScanItem.scan_id, func.count()).where(ScanItem.scan_id.in_(ids))
            .group_by(ScanItem.scan_id)
        )
    }
    findings: dict[int | None, int] = {
        scan_id: count
        for scan_id, count in session.execute(
            select(FindingRecord.scan_id, func.count()).where(FindingRecord.scan_id.in_(ids))
            .group_by(FindingRecord.scan_id)
        )
    }
    return [
        ScanOut(
            id=r.id, kind=r.kind, subject=r.subject, started_at=r.started_at,
            finished_at=r.finished_at, status=r.status, verdict=r.verdict, operator=r.operator,
            station=r.station, summary=dict(r.summary), radguard_version=r.radguard_version,
            item_count=items.get(r.id, 0), finding_count=findings.get(r.id, 0),
        )
        for r in rows
    ]


# ---------------------------------------------------------------------------------------------
# Scans and findings


def record_scan(
    store: Store,
    kind: str,
    subject: str,
    *,
    status: str = "done",
    verdict: Verdict | str | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    operator: str = "",
    station: str = "",
    summary: Mapping[str, Any] | None = None,
    items: Iterable[ItemIn] = (),
    findings: Iterable[Finding] = (),
    asset_id: int | None = None,
    radguard_version: str = __version__,
) -> int:
    """Store one scan with its items and findings, all in one transaction.

    Parameters
    ----------
    kind:
        ``media.scan``, ``assess``, ``deid``, ``import``, ``export``...
    subject:
        What was worked on: a path, a mount point, a target.
    status:
        How the run ended (``done``, ``failed``, ``aborted``...).
    verdict:
        The overall verdict, stored as its label.
    started_at, finished_at:
        Tz-aware; both default to now.
    operator, station:
        Who ran it, where (``Settings.operator_name`` / ``station_name``).
    summary:
        Small JSON-safe counters; never PHI.
    items:
        Per file / per node results; each item's own findings are linked to it.
    findings:
        Findings of the scan as a whole (not tied to an item).
    asset_id:
        Inventory asset every finding of this scan concerns (a node, a medium), if any.

    Returns
    -------
    int
        The new scan's id.

    Raises
    ------
    StoreError
        The database refused; nothing of the scan is stored.
    """
    now = utcnow()
    with store.session() as session:
        scan = Scan(
            kind=kind, subject=subject, status=status, verdict=_label(verdict),
            started_at=started_at or now, finished_at=finished_at or now,
            operator=operator, station=station, summary=_json_safe(dict(summary or {})),
            radguard_version=radguard_version,
        )
        session.add(scan)
        session.flush()
        # bulk statements (insertmanyvalues with RETURNING in parameter order): a 20,000-file
        # medium was 20,000 ORM flushes, 20 s, longer than the scan itself
        item_list = list(items)
        if item_list:
            ids = session.scalars(
                insert(ScanItem).returning(ScanItem.id, sort_by_parameter_order=True),
                [{"scan_id": scan.id, "path": i.path, "kind": i.kind, "size": i.size,
                  "sha256": i.sha256, "verdict": _label(i.verdict),
                  "data": _json_safe(dict(i.data))} for i in item_list],
            ).all()
            rows = [_finding_values(f, scan_id=scan.id, item_id=item_id, asset_id=asset_id,
                                    now=now)
                    for item, item_id in zip(item_list, ids, strict=True) for f in item.findings]
            if rows:
                session.execute(insert(FindingRecord), rows)
        session.add_all(
            _finding_row(f, scan_id=scan.id, item_id=None, asset_id=asset_id, now=now)
            for f in findings
        )
        return scan.id


def add_findings(
    store: Store,
    findings: Iterable[Finding],
    *,
    scan_id: int | None = None,
    item_id: int | None = None,
    asset_id: int | None = None,
) -> list[int]:
    """Store findings attached to a scan, an item and/or an asset (each optional).

    Returns
    -------
    list[int]
        The new finding ids, in the order given.

    Raises
    ------
    StoreError
        A referenced scan, item or asset does not exist, or the database refused.
    """
    now = utcnow()
    with store.session() as session:
        rows = [
            _finding_row(f, scan_id=scan_id, item_id=item_id, asset_id=asset_id, now=now)
            for f in findings
        ]
        session.add_all(rows)
        session.flush()
        return [r.id for r in rows]


def get_scan(store: Store, scan_id: int) -> ScanOut | None:
    """The scan with id ``scan_id``, or ``None``."""
    with store.read_session() as session:
        row = session.get(Scan, scan_id)
        return _scans_out(session, [row])[0] if row is not None else None


def list_scans(store: Store, kind: str | None = None, limit: int = 50) -> list[ScanOut]:
    """The newest scans first (by start time, then id), optionally of one ``kind``."""
    query = select(Scan).order_by(Scan.started_at.desc(), Scan.id.desc()).limit(limit)
    if kind is not None:
        query = query.where(Scan.kind == kind)
    with store.read_session() as session:
        return _scans_out(session, session.scalars(query).all())


def items_for_scan(store: Store, scan_id: int) -> list[ItemOut]:
    """The items of a scan, in the order they were recorded."""
    query = select(ScanItem).where(ScanItem.scan_id == scan_id).order_by(ScanItem.id)
    with store.read_session() as session:
        return [_item_out(r) for r in session.scalars(query)]


def findings_for_scan(store: Store, scan_id: int) -> list[StoredFinding]:
    """The findings of a scan (its items' included), in the order they were recorded."""
    query = select(FindingRecord).where(FindingRecord.scan_id == scan_id).order_by(
        FindingRecord.id
    )
    with store.read_session() as session:
        return [_finding_out(r) for r in session.scalars(query)]


def findings_for_asset(
    store: Store, asset_id: int, *, limit: int | None = None
) -> list[StoredFinding]:
    """The findings attached to an asset, newest first."""
    query = (
        select(FindingRecord)
        .where(FindingRecord.asset_id == asset_id)
        .order_by(FindingRecord.created_at.desc(), FindingRecord.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    with store.read_session() as session:
        return [_finding_out(r) for r in session.scalars(query)]


def diff_findings(store: Store, previous_scan_id: int, current_scan_id: int) -> FindingDiff:
    """Compare the findings of two scans by fingerprint.

    Returns
    -------
    FindingDiff
        ``new``: in the current scan only; ``fixed``: in the previous scan only; ``unchanged``:
        in both.

    Raises
    ------
    StoreError
        Either scan does not exist.
    """
    with store.read_session() as session:
        found: dict[int, frozenset[str]] = {}
        for scan_id in (previous_scan_id, current_scan_id):
            if session.get(Scan, scan_id) is None:
                raise StoreError(
                    f"scan {scan_id} does not exist", subject=store.url,
                    remedy="list the scans (list_scans) and pass ids from it",
                )
            found[scan_id] = frozenset(
                session.scalars(
                    select(FindingRecord.fingerprint).where(FindingRecord.scan_id == scan_id)
                )
            )
    before, after = found[previous_scan_id], found[current_scan_id]
    return FindingDiff(new=after - before, fixed=before - after, unchanged=before & after)


# ---------------------------------------------------------------------------------------------
# Assets


def upsert_asset(
    store: Store,
    kind: str,
    name: str,
    *,
    address: str | None = None,
    ae_title: str | None = None,
    data: Mapping[str, Any] | None = None,
    seen_at: datetime | None = None,
) -> int:
    """Create the asset ``(kind, name)`` or update it, and return its id.

    On update, ``last_seen`` becomes ``seen_at`` (default now; never moved backwards),
    ``address`` and ``ae_title`` are replaced when given (not ``None``), and ``data`` is merged
    key by key into the stored data. ``first_seen`` never changes.
    """
    seen = seen_at or utcnow()
    clean = _json_safe(dict(data or {}))
    for attempt in range(2):
        try:
            with store.session() as session:
                row = session.scalars(
                    select(Asset).where(Asset.kind == kind, Asset.name == name)
                ).one_or_none()
                if row is None:
                    row = Asset(
                        kind=kind, name=name, address=address, ae_title=ae_title, data=clean,
                        first_seen=seen, last_seen=seen,
                    )
                    session.add(row)
                else:
                    if address is not None:
                        row.address = address
                    if ae_title is not None:
                        row.ae_title = ae_title
                    if clean:
                        row.data = {**row.data, **clean}
                    row.last_seen = max(row.last_seen, seen)
                session.flush()
                return row.id
        except StoreError as exc:
            # Another writer (PostgreSQL) inserted the same asset first: retry once as an update.
            if attempt == 0 and isinstance(exc.__cause__, IntegrityError):
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def get_asset(store: Store, kind: str, name: str) -> AssetOut | None:
    """The asset ``(kind, name)``, or ``None``."""
    with store.read_session() as session:
        row = session.scalars(
            select(Asset).where(Asset.kind == kind, Asset.name == name)
        ).one_or_none()
        return _asset_out(row) if row is not None else None


def list_assets(store: Store, kind: str | None = None) -> list[AssetOut]:
    """All assets, optionally of one ``kind``, ordered by kind and name."""
    query = select(Asset).order_by(Asset.kind, Asset.name)
    if kind is not None:
        query = query.where(Asset.kind == kind)
    with store.read_session() as session:
        return [_asset_out(r) for r in session.scalars(query)]


# ---------------------------------------------------------------------------------------------
# Job journal


def save_job(
    store: Store,
    kind: str,
    key: str,
    *,
    state: str,
    progress: Mapping[str, Any] | None = None,
) -> JobOut:
    """Create or update the journal entry of the job ``key``.

    ``progress`` replaces the stored progress when given (``None`` keeps it). Call it after each
    unit of work is durable, so a restarted job resumes from :func:`get_job`'s progress.
    """
    now = utcnow()
    clean = None if progress is None else _json_safe(dict(progress))
    with store.session() as session:
        row = session.scalars(select(Job).where(Job.key == key)).one_or_none()
        if row is None:
            row = Job(kind=kind, key=key, state=state, progress=clean or {}, created_at=now,
                      updated_at=now)
            session.add(row)
        else:
            row.state = state
            if clean is not None:
                row.progress = clean
            row.updated_at = now
        session.flush()
        return _job_out(row)


def get_job(store: Store, key: str) -> JobOut | None:
    """The journal entry of the job ``key``, or ``None`` if it never started."""
    with store.read_session() as session:
        row = session.scalars(select(Job).where(Job.key == key)).one_or_none()
        return _job_out(row) if row is not None else None
