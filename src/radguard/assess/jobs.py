"""Assessment jobs as the faces run them: audit, assess, record in the store, compare with the past.

- Audit (PS3.15 A.5): a Security Alert (A.5.3.11, type 110132 Use of Restricted Function) when the
  assessment starts and when it ends (with its outcome); a Network Entry (A.5.3.9, Attach) for each
  reachable node seen for the first time; a Security Alert (110129 Security Configuration) per node
  with findings above info, listing the check ids.
- Store: one asset per node (kind ``dicom-node``, with its fingerprint), and one scan per node (kind
  ``assess``, subject the node, its findings attached to the scan and the asset); the node's previous
  scan is compared with :func:`~radguard.store.repo.diff_findings`.
- The salt of the query hashes lives in ``HOME/assess/salt`` (created 0600, never printed).

The store (SQLAlchemy, Alembic) is imported only when results are kept.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from radguard.assess.checks import Check
from radguard.assess.politeness import Politeness
from radguard.assess.probe import ProbeOptions
from radguard.assess.report import AssessReport, Changes, NodeResult
from radguard.assess.runner import DEFAULT_WORKERS, ProgressFn, run_assessment
from radguard.assess.targets import Target
from radguard.audit import AuditEmitter, builders
from radguard.audit.message import Outcome
from radguard.config import Settings
from radguard.findings import Severity

if TYPE_CHECKING:
    from radguard.store import Store

__all__ = ["ASSET_KIND", "audit_end", "audit_start", "load_salt", "record", "run_job"]

ASSET_KIND = "dicom-node"
_OUTCOME = {Severity.INFO: Outcome.SUCCESS, Severity.LOW: Outcome.MINOR_FAILURE,
            Severity.MEDIUM: Outcome.MINOR_FAILURE, Severity.HIGH: Outcome.SERIOUS_FAILURE,
            Severity.CRITICAL: Outcome.MAJOR_FAILURE}


def load_salt(home: Path) -> bytes:
    """The installation's secret salt for query hashes, created on first use (mode 0600)."""
    path = home / "assess" / "salt"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        salt = secrets.token_bytes(32)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(salt)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path.read_bytes()


def audit_start(emitter: AuditEmitter, settings: Settings, targets: list[str],
                intrusive: bool) -> None:
    emitter.emit(builders.security_alert(
        "110132", station=settings.station_name, user=settings.operator_name,
        subject=f"assess:{len(targets)} targets", site=settings.site or None,
        details=[f"target: {t}" for t in targets[:50]], outcome=Outcome.SUCCESS,
        description=f"security assessment started by {settings.operator_name}: "
        f"{len(targets)} targets, intrusive={'yes' if intrusive else 'no'}"))


def audit_end(emitter: AuditEmitter, settings: Settings, report: AssessReport,
              new_nodes: set[str]) -> None:
    for node in report.nodes:
        if node.reachable and node.target in new_nodes:
            emitter.emit(builders.network_entry(
                "attach", station=settings.station_name, node=node.host,
                site=settings.site or None,
                description=f"node first seen by assessment: {node.target}"))
        bad = [f for f in node.findings if f.severity > Severity.INFO]
        if bad:
            emitter.emit(builders.security_alert(
                "110129", station=settings.station_name, subject=node.target,
                user=settings.operator_name, site=settings.site or None,
                details=sorted({f"{f.check_id} ({f.severity.label})" for f in bad}),
                outcome=_OUTCOME[node.worst],
                description=f"assessment findings on {node.target}: {len(bad)}"))
    s = report.summary()
    emitter.emit(builders.security_alert(
        "110132", station=settings.station_name, user=settings.operator_name,
        subject=f"assess:{s['nodes']} targets", site=settings.site or None,
        outcome=_OUTCOME[report.worst],
        description=f"security assessment finished: {s['reachable']}/{s['nodes']} reachable, "
        f"{s['findings']} findings, worst {s['worst']}"))


def _changes(store: Store, node: NodeResult, scan_id: int) -> Changes:
    from radguard.store.repo import diff_findings, findings_for_scan, list_scans

    previous = [s for s in list_scans(store, kind="assess", limit=500)
                if s.subject == node.target and s.id < scan_id]
    if not previous:
        return Changes(None)
    prev = previous[0].id
    diff = diff_findings(store, prev, scan_id)
    ids = {sf.fingerprint: sf.finding.check_id
           for sid in (prev, scan_id) for sf in findings_for_scan(store, sid)}
    gone = [ids[f] for f in diff.fixed]
    return Changes(prev, new=tuple(sorted(ids[f] for f in diff.new)),
                   fixed=tuple(sorted(c for c in gone if _rechecked(node, c))),
                   unchanged=tuple(sorted(ids[f] for f in diff.unchanged)),
                   not_rechecked=tuple(sorted(c for c in gone if not _rechecked(node, c))))


def _rechecked(node: NodeResult, check_id: str) -> bool:
    """Whether this run looked again at what ``check_id`` found: only then may a finding that is
    gone count as fixed. An unreachable node, or a check left out (``--only``) or not run, says
    nothing about an earlier finding."""
    return node.reachable and node.checks.get(check_id) == "ran"


def record(store: Store, report: AssessReport, settings: Settings) -> tuple[AssessReport, set[str]]:
    """Store assets and scans; return the report with scan ids and changes, and the names of
    nodes seen for the first time."""
    from radguard.store.repo import ItemIn, get_asset, record_scan, upsert_asset

    new_nodes: set[str] = set()
    nodes = []
    started = dt.datetime.fromisoformat(report.started)
    finished = dt.datetime.fromisoformat(report.finished)
    for node in report.nodes:
        if get_asset(store, ASSET_KIND, node.target) is None:
            new_nodes.add(node.target)
        asset_id = upsert_asset(
            store, ASSET_KIND, node.target, address=node.host, ae_title=node.aet,
            data={"port": node.port, "service": "dimse" if node.kind == "dicom" else "http",
                  "transport": node.transport, "reachable": node.reachable,
                  **({"fingerprint": node.fingerprint} if node.fingerprint else {})})
        scan_id = record_scan(
            store, "assess", node.target, status="done" if node.reachable else "unreachable",
            verdict=node.worst.label if node.findings else None, started_at=started,
            finished_at=finished, operator=settings.operator_name,
            station=settings.station_name, asset_id=asset_id,
            summary={"reason": node.reason, "checks": node.checks, "tables": report.tables,
                     "intrusive": report.options.get("intrusive", False)},
            items=[ItemIn(path=node.target, kind=ASSET_KIND, data={"reachable": node.reachable},
                          findings=node.findings)])
        nodes.append(replace(node, scan_id=scan_id, changes=_changes(store, node, scan_id)))
    return replace(report, nodes=tuple(nodes)), new_nodes


def run_job(settings: Settings, targets: list[Target], checks: list[type[Check]],
            options: ProbeOptions, policy: Politeness, *, workers: int = DEFAULT_WORKERS,
            progress: ProgressFn | None = None, keep: bool = True) -> AssessReport:
    """Audit, assess, record (``keep``) and audit the end; returns the report with changes.

    Raises
    ------
    StoreError
        The store refused (the assessment itself ran and was audited).
    """
    emitter = AuditEmitter.from_settings(settings)
    audit_start(emitter, settings, [t.name for t in targets], options.intrusive)
    report = run_assessment(targets, checks, options, policy, workers=workers, progress=progress)
    new_nodes: set[str] = set()
    if keep:
        from radguard.store import Store

        store = Store.open(settings.db_url)
        try:
            report, new_nodes = record(store, report, settings)
        finally:
            store.close()
    audit_end(emitter, settings, report, new_nodes)
    return report
