"""``media import``: verify a custody package, reconcile, send, confirm, journal and audit (issue 3).

:func:`import_package`:

1. verifies the signature and every hash (:func:`radguard.media.custody.verify_package`); a refused
   package sends nothing and emits a Security Alert (A.5.3.11, 110126) and a failed Data Import;
2. checks that every outside patient has a local identifier before anything is sent;
3. opens the journal; on a rerun first asks the destination which journalled instances it already
   holds, and sends only members that are not confirmed;
4. sends each member from the bytes that were checked (kept in memory up to
   :data:`KEEP_VERIFIED_BYTES`) or re-checks its hash on the bytes read again (no gap between check
   and use),
   reconciles, sends (C-STORE over ``options.associations`` parallel associations, or STOW-RS)
   and journals the status with its meaning (:mod:`radguard.importer.pipeline`);
5. with ``commit=1`` on a DIMSE destination, asks for Storage Commitment (PS3.4 Annex J,
   :mod:`radguard.dimse.commit`) first; then confirms what was not reported by C-FIND (many
   instances per query) / QIDO-RS and reports instances the destination
   does not hold;
6. emits Data Import (A.5.3.5, 110107, Source Media) and DICOM Instances Transferred (A.5.3.7,
   110104), and records the job in the store.
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.filewriter import dcmwrite

from radguard.audit import AuditEmitter, builders
from radguard.audit.message import Outcome
from radguard.config import Settings
from radguard.dimse import Peer
from radguard.dimse.commit import failure_reason, request_commitment
from radguard.importer.confirmer import Confirmer
from radguard.importer.destination import WebDestination, parse_destination
from radguard.importer.errors import DestinationUnavailable
from radguard.importer.interface import ImportOptions, ImportReport, InstanceResult, Outgoing
from radguard.importer.journal import Journal
from radguard.importer.pipeline import Done, run_lanes
from radguard.importer.reconcile import Reconciler
from radguard.importer.record import JobRecorder
from radguard.importer.senders import DimseSender, WebSender
from radguard.keys import TrustStore
from radguard.media.custody import (
    ManifestFile,
    PackageRefusedDetail,
    VerifiedPackage,
    check_member,
    verify_package,
)

__all__ = ["import_package"]

ProgressFn = Callable[[int, int, str], None]

KEEP_VERIFIED_BYTES = 512 * 1024 * 1024
"""Members verified up to this many bytes stay in memory and are sent from there (no second read
and hash); the rest are read again and re-hashed just before sending."""

DIMSE_CHUNK = 4
"""Instances a DIMSE lane takes at a time (in flight per lane before the journal has them)."""


def _dataset_start(data: bytes) -> int:
    """Offset of the data set in a file RadGuard rebuilt (File Meta starts with its group length)."""
    if data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        raise ValueError("not a RadGuard-rebuilt PS3.10 file")
    return 144 + int(struct.unpack_from("<I", data, 140)[0])


def _prepare(data: bytes, entry: ManifestFile, rec: Reconciler) -> tuple[Outgoing, tuple[str, ...]]:
    changes: tuple[str, ...] = ()
    sop, study = entry.sop_instance_uid, entry.study_uid
    if not rec.passthrough:
        ds = dcmread(io.BytesIO(data))
        changes = rec.apply(ds)
        if changes:
            out = io.BytesIO()
            dcmwrite(out, ds, enforce_file_format=True)
            data = out.getvalue()
            sop, study = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
    return Outgoing(entry.name, entry.sop_class_uid, sop, study, entry.transfer_syntax,
                    memoryview(data)[_dataset_start(data):], data), changes


def _refused(settings: Settings, emitter: AuditEmitter, package: Path,
             exc: PackageRefusedDetail) -> None:
    emitter.emit(builders.security_alert(
        "110126", station=settings.station_name, subject=str(package),
        user=settings.operator_name, site=settings.site or None, outcome=Outcome.SERIOUS_FAILURE,
        details=[str(p) for p in exc.problems][:50],
        description=f"custody package refused: {', '.join(sorted(exc.causes))}"))
    emitter.emit(builders.data_import(
        user=settings.operator_name, station=settings.station_name, media_id=str(package),
        patient_ids=[], study_uids=[], site=settings.site or None,
        outcome=Outcome.SERIOUS_FAILURE, description="package refused; nothing sent"))


def _precheck(verified: VerifiedPackage, rec: Reconciler, names: list[str]) -> None:
    """Every outside patient must map (or be kept on purpose) before anything is sent."""
    if rec.options.patient_id or rec.options.keep_ids:
        return
    seen: set[tuple[str, str]] = set()
    for name in names:
        ds = dcmread(io.BytesIO(verified.verified_bytes.get(name) or verified.reader.read(name)),
                     stop_before_pixels=True,
                     specific_tags=[0x00100020, 0x00100021])
        key = (str(ds.get("PatientID", "")), str(ds.get("IssuerOfPatientID", "")))
        if key not in seen:
            seen.add(key)
            rec.target(*key)


def import_package(settings: Settings, package: Path, to: str, options: ImportOptions,
                   progress: ProgressFn | None = None) -> ImportReport:
    """Import the custody package at ``package`` into destination ``to``; see the module docstring.

    Raises
    ------
    PackageRefusedDetail
        The package failed verification (nothing was sent).
    ReconciliationNeeded
        An outside patient has no local identifier (nothing was sent).
    DestinationInvalid / DestinationUnavailable
        Bad ``to``; or the destination refused the association or went away (the journal keeps
        what was done; run again to resume).
    """
    emitter = AuditEmitter.from_settings(settings)
    dest = parse_destination(to, settings)
    recorder = JobRecorder(settings.db_url)  # opens the store once sending starts
    try:
        return _import(settings, emitter, dest, recorder, package, options, progress)
    finally:
        recorder.close()


def _import(settings: Settings, emitter: AuditEmitter, dest: Peer | WebDestination,
            recorder: JobRecorder, package: Path, options: ImportOptions,
            progress: ProgressFn | None) -> ImportReport:
    clock = time.monotonic()
    try:
        verified = verify_package(package, TrustStore(settings.home_path, settings.station_name),
                                  keep_bytes=KEEP_VERIFIED_BYTES)
    except PackageRefusedDetail as exc:
        _refused(settings, emitter, package, exc)
        raise
    manifest = verified.manifest
    rec = Reconciler(options, manifest.package_id)
    sender: DimseSender | WebSender
    if isinstance(dest, Peer):
        sender = DimseSender(dest, {(f.sop_class_uid, f.transfer_syntax) for f in manifest.files},
                             lanes=options.associations)
    else:
        sender = WebSender(dest)
    journal = Journal(settings.home_path, manifest.package_id, sender.label)
    started = time.monotonic()
    timings = {"verify": started - clock}
    counter = {"sent": 0, "bytes": 0, "done": 0}
    confirm_error = ""
    changes: dict[str, tuple[str, ...]] = {}
    confirmer: Confirmer | None = None
    commitment: dict[str, Any] = {}

    def load(entry: ManifestFile) -> tuple[Outgoing, tuple[str, ...]]:
        data = verified.verified_bytes.pop(entry.name, None)  # checked, held in memory since
        if data is None:
            data = verified.reader.read(entry.name)
            problem = check_member(data, entry)  # the bytes sent are the bytes checked
            if problem is not None:
                raise PackageRefusedDetail(f"package changed during import: {problem}",
                                           subject=str(package), problems=(problem,))
        return _prepare(data, entry, rec)

    def on_done(done: list[Done]) -> None:
        journal.record_many([(out.name, "sent" if status.ok else "refused",
                              {"status": status.code, "meaning": status.text,
                               "sop": out.sop_instance_uid, "study": out.study_uid})
                             for out, _, status in done])
        if confirmer is not None:
            confirmer.submit([(out.name, out.study_uid, out.sop_instance_uid)
                              for out, _, status in done if status.ok])
            _mark_confirmed(journal, confirmer.take())
        for out, changed, _ in done:
            changes[out.name] = changed
            counter["sent"] += 1
            counter["bytes"] += len(out.part10)
        counter["done"] += len(done)
        if progress is not None:
            progress(counter["done"], total, done[-1][0].name)

    try:
        todo = [f for f in manifest.files if journal.get(f.name) != "confirmed"]
        for name in set(verified.verified_bytes) - {f.name for f in todo}:
            del verified.verified_bytes[name]  # confirmed in an earlier run: not needed
        _precheck(verified, rec, [f.name for f in todo])
        if todo:
            sender.open()
        if journal.resumed:
            _confirm(sender, journal, [f for f in todo if journal.get(f.name) == "sent"])
            todo = [f for f in todo if journal.get(f.name) != "confirmed"]
        total = len(todo)
        chunk = options.batch if isinstance(sender, WebSender) else DIMSE_CHUNK
        commit = dest.commit if isinstance(dest, Peer) else None
        if (isinstance(sender, DimseSender) and options.confirm_while_sending and todo
                and commit is None):
            confirmer = Confirmer(sender.side_held)
        recorder.start()  # the store opens while the lanes send (not during verification)
        clock = time.monotonic()
        try:
            run_lanes(sender, todo, load, chunk, on_done)
        finally:
            if confirmer is not None:
                _mark_confirmed(journal, confirmer.finish())
        timings["send"] = time.monotonic() - clock
        if commit is not None and isinstance(dest, Peer):
            clock = time.monotonic()
            commitment = _commit(dest, journal, manifest.files)
            timings["commit"] = time.monotonic() - clock
        clock = time.monotonic()
        try:
            _confirm(sender, journal,
                     [f for f in manifest.files if journal.get(f.name) == "sent"], final=True)
        except DestinationUnavailable as exc:  # sent but unconfirmed: a result, not a crash
            confirm_error = f"{exc.message}. Remedy: {exc.remedy}" if exc.remedy else exc.message
        timings["confirm"] = time.monotonic() - clock
    except (DestinationUnavailable, PackageRefusedDetail) as exc:
        _audit(settings, emitter, verified, sender.label, journal, Outcome.SERIOUS_FAILURE,
               f"import interrupted: {exc.message}")
        raise
    finally:
        sender.close()
        journal.close()
    report = _report(verified, sender.label, journal, changes, counter["sent"], counter["bytes"],
                     time.monotonic() - started, confirm_error, timings, commitment)
    outcome = Outcome.SUCCESS if report.complete else Outcome.MINOR_FAILURE
    _audit(settings, emitter, verified, sender.label, journal, outcome,
           f"{report.counts['confirmed']} of {len(manifest.files)} instances confirmed")
    recorder.save(report)
    return report


def _mark_confirmed(journal: Journal, names: list[str]) -> None:
    """Journal ``names`` as confirmed (the destination listed them), keeping the send status."""
    if names:
        journal.record_many([(n, "confirmed", {k: journal.state[n].get(k) for k in
                                               ("sop", "study", "status", "meaning")})
                             for n in names])


def _commit(peer: Peer, journal: Journal, files: Sequence[ManifestFile]) -> dict[str, Any]:
    """Storage Commitment (PS3.4 Annex J) for every instance journalled ``sent``: committed ones
    become "confirmed", failed ones "missing" with the Failure Reason; unreported ones stay "sent"
    for the C-FIND check that follows. Returns the summary for the report."""
    entries = [e for e in files if journal.get(e.name) == "sent"]
    sops = {str(journal.state[e.name].get("sop", e.sop_instance_uid)): e for e in entries}
    result = request_commitment(peer, [(e.sop_class_uid, sop) for sop, e in sops.items()])
    events: list[tuple[str, str, dict[str, Any]]] = []
    for sop, e in sops.items():
        rec = journal.state[e.name]
        keep = {"sop": sop, "study": rec.get("study", e.study_uid), "status": rec.get("status")}
        if sop in result.committed:
            events.append((e.name, "confirmed", {**keep, "meaning": rec.get("meaning", ""),
                                                 "by": "storage-commitment"}))
        elif sop in result.failed:
            code = result.failed[sop]
            events.append((e.name, "missing", {**keep, "meaning": "storage commitment failed: "
                                               f"0x{code:04X} {failure_reason(code)}"}))
    journal.record_many(events)
    return {"requested": len(sops), "committed": len(result.committed),
            "failed": len(result.failed), "unreported": result.unreported,
            "fallback": "C-FIND" if result.unreported else "", "note": result.note}


def _confirm(sender: DimseSender | WebSender, journal: Journal, entries: list[ManifestFile],
             *, final: bool = False) -> None:
    """Ask the destination which of ``entries`` it holds (batched); journal them "confirmed", and,
    on the ``final`` check, the others "missing". Nothing is confirmed that was not listed."""
    if not entries:
        return
    wanted: dict[str, list[str]] = {}
    for e in entries:
        rec = journal.state.get(e.name, {})
        wanted.setdefault(str(rec.get("study", e.study_uid)), []).append(
            str(rec.get("sop", e.sop_instance_uid)))
    held = sender.held(wanted)
    events: list[tuple[str, str, dict[str, Any]]] = []
    for e in entries:
        rec = journal.state[e.name]
        keep = {"sop": rec.get("sop"), "study": rec.get("study", e.study_uid),
                "status": rec.get("status")}
        if rec.get("sop") in held:
            events.append((e.name, "confirmed", {**keep, "meaning": rec.get("meaning", "")}))
        elif final:
            events.append((e.name, "missing", {**keep, "meaning": "sent but not held by the "
                                               "destination"}))
    journal.record_many(events)


def _report(verified: VerifiedPackage, label: str, journal: Journal,
            changes: dict[str, tuple[str, ...]], sent: int, sent_bytes: int,
            seconds: float, confirm_error: str, timings: dict[str, float],
            commitment: dict[str, Any]) -> ImportReport:
    results = []
    for e in verified.manifest.files:
        rec = journal.state.get(e.name, {})
        results.append(InstanceResult(e.name, str(rec.get("sop", e.sop_instance_uid)),
                                      str(rec.get("study", e.study_uid)),
                                      str(rec.get("state", "pending")), rec.get("status"),
                                      str(rec.get("meaning", "")), changes.get(e.name, ())))
    summary = sorted({c for cs in changes.values() for c in cs if c.startswith("Patient ID")})
    return ImportReport(str(verified.path), verified.manifest.package_id, verified.key_id,
                        verified.station, label, tuple(results), journal.resumed, sent,
                        sent_bytes, seconds, tuple(summary), confirm_error,
                        {k: round(v, 3) for k, v in timings.items()}, commitment)


def _audit(settings: Settings, emitter: AuditEmitter, verified: VerifiedPackage, label: str,
           journal: Journal, outcome: Outcome, description: str) -> None:
    studies = sorted({str(r.get("study")) for r in journal.state.values()
                      if r.get("state") == "confirmed" and r.get("study")})
    emitter.emit(builders.data_import(
        user=settings.operator_name, station=settings.station_name,
        media_id=f"{verified.path} (package {verified.manifest.package_id})", patient_ids=[],
        study_uids=studies, site=settings.site or None, outcome=outcome,
        description=description))
    emitter.emit(builders.instances_transferred(
        station=settings.station_name, source=settings.station_name, destination=label,
        patient_ids=[], study_uids=studies, user=settings.operator_name,
        site=settings.site or None, outcome=outcome, description=description))
