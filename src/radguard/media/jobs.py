"""Media jobs as the faces run them: scan, then record in the store and audit (PS3.15 A.5).

The CLI and the web app call these; they never print. Audit messages are emitted for every scan:
Data Import (A.5.3.5, 110107, Source Media) with the outcome of the scan, and a Security Alert
(A.5.3.11, 110113) when something dangerous was found.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from radguard.audit import AuditEmitter, builders
from radguard.audit.message import AuditMessage, Outcome
from radguard.config import Settings
from radguard.errors import AuditError
from radguard.findings import Verdict
from radguard.media.interface import MediumReport
from radguard.media.scan import ProgressFn, ScanOptions, scan_medium

if TYPE_CHECKING:
    from radguard.store import Store

__all__ = ["audit_scan", "record_medium_scan", "run_scan"]

STUDIES_PER_MESSAGE = 32  # about 27 KB per message: under the 32,768 octets every receiver takes
PARALLEL_MESSAGES = 64  # from this many Data Import messages on, two processes build them
CHILD_TIMEOUT = 300.0  # seconds the forked half may take before this process emits it itself
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
    patient_set: set[str] = set()
    sop_classes: dict[str, dict[str, int]] = {}
    by_study: dict[str, set[str]] = {}
    for f in report.files:  # one pass: 20,000 files cost milliseconds, not a second
        ident = f.identity
        study = ident.get("study_uid")
        patient = ident.get("p_patient_id")
        if patient:
            patient_set.add(patient)
        if not study:
            continue
        per_study = sop_classes.get(study)
        if per_study is None:
            per_study = sop_classes[study] = {}
            by_study[study] = set()
        if patient:
            by_study[study].add(patient)
        cls = ident.get("sop_class_uid")
        if cls:
            per_study[cls] = per_study.get(cls, 0) + 1
    patients = sorted(patient_set)
    studies = sorted(sop_classes)
    c = report.counts
    description = (f"media scan {report.verdict.label}: {c['files']} files, {c['clean']} clean, "
                   f"{c['suspicious']} suspicious, {c['dangerous']} dangerous (nothing imported yet)")
    # One message per batch of studies keeps each message well under what syslog receivers accept
    # (PS3.15 A.6: at least 32,768 octets) however large the medium.
    batches = [studies[i:i + STUDIES_PER_MESSAGE]
               for i in range(0, len(studies), STUDIES_PER_MESSAGE)] or [[]]
    # Read once: the settings compute these on each access (getpwuid, gethostname).
    user, station, site = settings.operator_name, settings.station_name, settings.site or None
    outcome = _OUTCOME[report.verdict]

    def build(first: int, last: int) -> list[AuditMessage]:
        messages = []
        for n in range(first, last):
            batch = batches[n]
            batch_patients = sorted({p for study in batch for p in by_study.get(study, ())}) \
                if batch else patients
            part = f" [part {n + 1} of {len(batches)}]" if len(batches) > 1 else ""
            messages.append(builders.data_import(
                user=user, station=station, media_id=report.path,
                patient_ids=batch_patients[:STUDIES_PER_MESSAGE], study_uids=batch,
                sop_classes={k: sop_classes[k] for k in batch if sop_classes[k]},
                site=site, outcome=outcome, description=description + part,
            ))
        return messages

    _emit_parts(emitter, build, len(batches))
    if report.verdict == Verdict.DANGEROUS:
        dangerous = [f.path for f in report.files if f.verdict == Verdict.DANGEROUS][:20]
        emitter.emit(builders.security_alert(
            "110132", station=settings.station_name, subject=report.path,
            user=settings.operator_name, site=settings.site or None,
            details=[f"dangerous file: {p}" for p in dangerous],
            description=f"dangerous content on outside medium: {c['dangerous']} files",
        ))


def _emit_parts(emitter: AuditEmitter, build: Callable[[int, int], list[AuditMessage]],
                count: int) -> None:
    """Build and emit messages ``0 .. count-1`` (``build(first, last)`` makes a slice of them).

    Building, serialising and validating a message costs about 1.5 ms; a 20,000-study medium has
    625 of them. When there are many and the emitter only journals (no syslog sender, no local
    repository, which hold connections a fork must not share), a forked process builds and emits
    the second half while this one does the first: two journal appends, each under the journal's
    lock with its own fsync, instead of one. An error on either side is raised here, after both
    sides finished; if the child fails, dies or hangs (``CHILD_TIMEOUT``), its part is emitted
    here, so a message may be journalled twice but never be missing.
    """
    if count < PARALLEL_MESSAGES or emitter.sender is not None or emitter.repository is not None:
        emitter.emit_many(build(0, count))
        return
    half = count // 2
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_emit_child, args=(emitter, build, half, count, writer))
    try:
        child.start()
    except OSError:  # no fork (EAGAIN, ENOMEM): every message from here
        reader.close()
        writer.close()
        emitter.emit_many(build(0, count))
        return
    writer.close()
    child_ok = False
    try:
        emitter.emit_many(build(0, half))
    finally:
        if reader.poll(CHILD_TIMEOUT):
            try:
                child_ok = reader.recv() is None  # None: emitted; an exception: it failed
            except Exception:  # EOF (died) or an exception that did not unpickle
                child_ok = False
        reader.close()
        child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
        child_ok = child_ok and child.exitcode == 0
    if not child_ok:
        # the child died, hung or failed: emit its part here. A message may then be journalled
        # twice; a missing one would break invariant 2 (everything security-relevant is audited).
        emitter.emit_many(build(half, count))


def _emit_child(emitter: AuditEmitter, build: Callable[[int, int], list[AuditMessage]],
                first: int, last: int, writer: Connection) -> None:
    try:
        emitter.emit_many(build(first, last))
    except BaseException as exc:  # raised again in the parent
        try:
            writer.send(exc)
        except Exception:  # the exception does not pickle
            writer.send(AuditError(f"audit messages {first + 1}-{last} were not emitted: {exc!r}"))
    else:
        writer.send(None)
    finally:
        writer.close()


def _audit_failure(emitter: AuditEmitter, settings: Settings, path: str, why: str) -> None:
    """A scan that could not finish is still an attempted Data Import (outcome 8)."""
    emitter.emit(builders.data_import(
        user=settings.operator_name, station=settings.station_name, media_id=str(path),
        patient_ids=[], study_uids=[], site=settings.site or None,
        outcome=Outcome.SERIOUS_FAILURE, description=why))


def run_scan(settings: Settings, path: str, options: ScanOptions,
             progress: ProgressFn | None = None, *, record: bool = True) -> MediumReport:
    """Scan ``path``, record the scan in the store and audit it; returns the report with its id.

    Raises
    ------
    MediumUnreadable
        The medium cannot be opened (audited as a failed Data Import before raising).
    """
    from radguard.errors import MediaError, MediumUnreadable, RadGuardError

    emitter = AuditEmitter.from_settings(settings)
    try:
        report = scan_medium(path, options, progress)
    except MediumUnreadable as exc:
        _audit_failure(emitter, settings, path, f"medium unreadable: {exc.message}")
        raise
    except RadGuardError as exc:
        _audit_failure(emitter, settings, path, f"scan aborted: {exc.message}")
        raise
    except Exception as exc:  # a bug or a dead worker: audited, and a clean error for the CLI
        _audit_failure(emitter, settings, path, f"scan aborted: {type(exc).__name__}: {exc}")
        raise MediaError(f"the scan stopped: {type(exc).__name__}: {exc}", subject=str(path),
                         remedy="nothing was imported; scan the medium again, and report the "
                                "error if it repeats") from exc
    if record:
        from radguard.store import Store

        store = Store.open(settings.db_url)
        try:
            report = replace(report, scan_id=record_medium_scan(store, report, settings))
        finally:
            store.close()
    # The report's objects (tens of thousands on a large medium) live until the caller drops the
    # report: out of the cyclic collector's reach while the audit messages are built, which
    # otherwise walks all of them again at each full collection (and the forked half shares
    # more pages with this process).
    gc.freeze()
    try:
        audit_scan(emitter, report, settings)
    finally:
        gc.unfreeze()
    return report
