"""Media jobs as the faces run them: scan, then record in the store and audit (PS3.15 A.5).

The CLI and the web app call these; they never print. Audit messages are emitted for every scan:
Data Import (A.5.3.5, 110107, Source Media) with the outcome of the scan, and a Security Alert
(A.5.3.11, 110113) when something dangerous was found.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from radguard.audit import AuditEmitter, builders
from radguard.audit.message import Outcome
from radguard.config import Settings
from radguard.findings import Verdict
from radguard.media.interface import MediumReport
from radguard.media.scan import ProgressFn, ScanOptions, scan_medium

if TYPE_CHECKING:
    from radguard.store import Store

__all__ = ["audit_scan", "record_medium_scan", "run_scan"]

STUDIES_PER_MESSAGE = 32  # about 27 KB per message: under the 32,768 octets every receiver takes
_OUTCOME = {Verdict.CLEAN: Outcome.SUCCESS, Verdict.SUSPICIOUS: Outcome.MINOR_FAILURE,
            Verdict.DANGEROUS: Outcome.SERIOUS_FAILURE}


def record_medium_scan(store: Store, report: MediumReport, settings: Settings) -> int:
    """Store a medium scan (scan row, one item per file, findings); returns the scan id."""
    from datetime import datetime

    from radguard.store.repo import ItemIn, record_scan

    items = [
        ItemIn(path=f.path, kind=f.kind, size=f.size, sha256=f.sha256, verdict=f.verdict,
               data={k: v for k, v in f.to_dict()["uids"].items()}, findings=f.findings)
        for f in report.files
    ]
    return record_scan(
        store, "media.scan", report.path, status="done", verdict=report.verdict,
        started_at=datetime.fromisoformat(report.started),
        finished_at=datetime.fromisoformat(report.finished),
        operator=settings.operator_name, station=settings.station_name,
        summary={"counts": report.counts, "engines": dict(report.engines),
                 "tables": dict(report.tables), "medium_kind": report.medium_kind},
        items=items, findings=report.findings,
    )


def audit_scan(emitter: AuditEmitter, report: MediumReport, settings: Settings) -> None:
    """Emit Data Import (attempt) and, for a dangerous medium, a Security Alert."""
    patients = sorted({f.identity["p_patient_id"] for f in report.files
                       if f.identity.get("p_patient_id")})
    studies = sorted({f.identity["study_uid"] for f in report.files if f.identity.get("study_uid")})
    sop_classes: dict[str, dict[str, int]] = {}
    by_study: dict[str, set[str]] = {}
    for f in report.files:
        if f.identity.get("study_uid") and f.identity.get("p_patient_id"):
            by_study.setdefault(f.identity["study_uid"], set()).add(f.identity["p_patient_id"])
        study, cls = f.identity.get("study_uid"), f.identity.get("sop_class_uid")
        if study and cls:
            sop_classes.setdefault(study, {}).setdefault(cls, 0)
            sop_classes[study][cls] += 1
    c = report.counts
    description = (f"media scan {report.verdict.label}: {c['files']} files, {c['clean']} clean, "
                   f"{c['suspicious']} suspicious, {c['dangerous']} dangerous (nothing imported yet)")
    # One message per batch of studies keeps each message well under what syslog receivers accept
    # (PS3.15 A.6: at least 32,768 octets) however large the medium.
    batches = [studies[i:i + STUDIES_PER_MESSAGE]
               for i in range(0, len(studies), STUDIES_PER_MESSAGE)] or [[]]
    messages = []
    for n, batch in enumerate(batches, start=1):
        batch_patients = sorted({p for study in batch for p in by_study.get(study, ())}) \
            if batch else patients
        messages.append(builders.data_import(
            user=settings.operator_name, station=settings.station_name, media_id=report.path,
            patient_ids=batch_patients[:STUDIES_PER_MESSAGE], study_uids=batch,
            sop_classes={k: sop_classes[k] for k in batch if k in sop_classes},
            site=settings.site or None, outcome=_OUTCOME[report.verdict],
            description=description + (f" [part {n} of {len(batches)}]" if len(batches) > 1 else ""),
        ))
    emitter.emit_many(messages)
    if report.verdict == Verdict.DANGEROUS:
        dangerous = [f.path for f in report.files if f.verdict == Verdict.DANGEROUS][:20]
        emitter.emit(builders.security_alert(
            "110132", station=settings.station_name, subject=report.path,
            user=settings.operator_name, site=settings.site or None,
            details=[f"dangerous file: {p}" for p in dangerous],
            description=f"dangerous content on outside medium: {c['dangerous']} files",
        ))


def run_scan(settings: Settings, path: str, options: ScanOptions,
             progress: ProgressFn | None = None, *, record: bool = True) -> MediumReport:
    """Scan ``path``, record the scan in the store and audit it; returns the report with its id.

    Raises
    ------
    MediumUnreadable
        The medium cannot be opened (audited as a failed Data Import before raising).
    """
    from radguard.errors import MediumUnreadable

    emitter = AuditEmitter.from_settings(settings)
    try:
        report = scan_medium(path, options, progress)
    except MediumUnreadable as exc:
        emitter.emit(builders.data_import(
            user=settings.operator_name, station=settings.station_name, media_id=str(path),
            patient_ids=[], study_uids=[], site=settings.site or None,
            outcome=Outcome.SERIOUS_FAILURE, description=f"medium unreadable: {exc.message}"))
        raise
    if record:
        from radguard.store import Store

        store = Store.open(settings.db_url)
        try:
            report = replace(report, scan_id=record_medium_scan(store, report, settings))
        finally:
            store.close()
    audit_scan(emitter, report, settings)
    return report
