"""``media sanitize``: from a scanned medium to a signed custody package (issue 3; media.md CDR).

:func:`sanitize_medium` scans the medium (:func:`radguard.media.jobs.run_scan`: recorded and audited),
then for every file, in path order:

- the bytes are read again and must hash as in the scan, or the file is left out;
- ``dangerous`` files are never packaged; ``suspicious`` ones only with an explicit override that
  names the operator and the reason (recorded per file and in the manifest, and audited);
- DICOM files are rebuilt (:mod:`radguard.media.custody.rebuild`) and the rebuilt bytes walked
  again; non-DICOM files and DICOMDIRs are never packaged;
- every DICOM original and every non-clean file goes to the quarantine store with its reasons.

The package is signed with the station key (created on first use). Audit: PS3.15 A.5.3.4 Data
Export of the package (Destination Media), and a Security Alert (110132) when an override was used.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radguard import __version__
from radguard.audit import AuditEmitter, builders
from radguard.audit.message import Outcome
from radguard.config import Settings
from radguard.dicomio import walk
from radguard.dicomio.source import ByteSource, MemorySource
from radguard.errors import MediaError
from radguard.findings import Verdict
from radguard.keys import load_station_key
from radguard.media.custody import (
    Excluded,
    Manifest,
    ManifestFile,
    PackageWriter,
    member_name,
    sign_manifest,
)
from radguard.media.custody.rebuild import (
    SAFE_TABLE,
    PrivatePolicy,
    RebuildFailed,
    rebuild,
    validate,
)
from radguard.media.interface import FileReport, MediumReport
from radguard.media.jobs import run_scan
from radguard.media.medium import open_medium
from radguard.media.scan import ScanOptions
from radguard.quarantine import QuarantineStore, Sighting

__all__ = ["FileOutcome", "SanitizeOptions", "SanitizeReport", "sanitize_medium"]

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class SanitizeOptions:
    """Policy of one sanitise run. ``override_*`` are required with ``allow_suspicious``."""

    keep_private: PrivatePolicy = "none"
    allow_suspicious: bool = False
    override_operator: str = ""
    override_reason: str = ""
    archive: bool = False
    scan: ScanOptions = field(default_factory=ScanOptions)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one file of the medium."""

    path: str
    verdict: str
    disposition: str  # packaged | excluded
    reason: str
    name: str | None = None
    sha256: str | None = None
    quarantined: bool = False
    changes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "verdict": self.verdict, "disposition": self.disposition,
                "reason": self.reason, "package_member": self.name, "sha256": self.sha256,
                "quarantined": self.quarantined, "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class SanitizeReport:
    """Result of :func:`sanitize_medium`."""

    package: str
    package_id: str
    key_id: str
    scan: MediumReport
    files: tuple[FileOutcome, ...]

    @property
    def counts(self) -> dict[str, int]:
        packaged = sum(1 for f in self.files if f.disposition == "packaged")
        return {"files": len(self.files), "packaged": packaged,
                "excluded": len(self.files) - packaged,
                "quarantined": sum(1 for f in self.files if f.quarantined)}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "radguard.media.sanitize/1", "radguard_version": __version__,
                "package": self.package, "package_id": self.package_id, "key_id": self.key_id,
                "scan_id": self.scan.scan_id, "medium": self.scan.path,
                "medium_verdict": self.scan.verdict.label, "counts": self.counts,
                "files": [f.to_dict() for f in self.files]}


def _read_all(src: ByteSource) -> bytes:
    return src.read_at(0, src.size)


class _Run:
    """State of one sanitise run (kept out of the function to stay readable)."""

    def __init__(self, settings: Settings, options: SanitizeOptions, report: MediumReport,
                 out: Path, package_id: str):
        self.settings = settings
        self.options = options
        self.report = report
        self.package_id = package_id
        self.limits = options.scan.limits
        self.quarantine = QuarantineStore(settings.home_path)
        self.writer = PackageWriter(out, archive=options.archive)
        self.entries: list[ManifestFile] = []
        self.excluded: list[Excluded] = []
        self.outcomes: list[FileOutcome] = []

    def _keep(self, src: ByteSource, sha: str, f: FileReport, reasons: list[str],
              disposition: str) -> None:
        self.quarantine.put(src, sha, Sighting(
            self.report.path, f.path, f.verdict.label, tuple(reasons), self.report.scan_id,
            self.package_id, disposition))

    def _exclude(self, f: FileReport, reason: str, sha: str | None, quarantined: bool) -> None:
        self.excluded.append(Excluded(f.path, sha, f.verdict.label, reason, quarantined))
        self.outcomes.append(FileOutcome(f.path, f.verdict.label, "excluded", reason,
                                         sha256=sha, quarantined=quarantined))

    def handle(self, src: ByteSource, f: FileReport) -> None:
        sha = src.sha256()
        reasons = [f"{x.check_id}: {x.message}" for x in f.findings][:50]
        if sha != f.sha256:
            self._keep(src, sha, f, ["changed between scan and sanitise"], "held")
            self._exclude(f, "file changed between scan and sanitise", sha, True)
            return
        if f.verdict == Verdict.DANGEROUS:
            self._keep(src, sha, f, reasons, "held")
            self._exclude(f, "dangerous: never packaged", sha, True)
            return
        if f.verdict == Verdict.SUSPICIOUS and not self.options.allow_suspicious:
            self._keep(src, sha, f, reasons, "held")
            self._exclude(f, "suspicious: held in quarantine (no override given)", sha, True)
            return
        if f.kind != "dicom":
            kept = f.verdict != Verdict.CLEAN or f.kind == "dicomdir"
            if kept:
                self._keep(src, sha, f, reasons or [f"{f.kind} file"], "held")
            why = "DICOMDIR: PACS keeps its own index" if f.kind == "dicomdir" else "not DICOM"
            self._exclude(f, why, sha, kept)
            return
        data = _read_all(src)
        try:
            walked = walk(MemorySource(data), self.limits)
            rebuilt = rebuild(data, walked, self.options.keep_private)
            validate(rebuilt, self.limits)
        except RebuildFailed as exc:
            self._keep(src, sha, f, [*reasons, f"rebuild failed: {exc.message}"], "held")
            self._exclude(f, f"cannot be rebuilt: {exc.message}", sha, True)
            return
        override = f.verdict == Verdict.SUSPICIOUS
        self._keep(src, sha, f, reasons, "override" if override else "rebuilt")
        name = member_name(len(self.entries) + 1)
        self.writer.add(name, rebuilt.data)
        changes = rebuilt.changes
        if override:
            changes = (*changes, f"suspicious file packaged by override of "
                       f"{self.options.override_operator}: {self.options.override_reason}")
        self.entries.append(ManifestFile(
            name=name, size=len(rebuilt.data), sha256=hashlib.sha256(rebuilt.data).hexdigest(),
            original_path=f.path, original_size=f.size, original_sha256=sha,
            study_uid=rebuilt.study_uid, series_uid=rebuilt.series_uid,
            sop_instance_uid=rebuilt.sop_instance_uid, sop_class_uid=rebuilt.sop_class_uid,
            transfer_syntax=rebuilt.transfer_syntax, verdict=f.verdict.label,
            findings=tuple(sorted({x.check_id for x in f.findings})), changes=changes,
            override=override))
        self.outcomes.append(FileOutcome(f.path, f.verdict.label, "packaged", "rebuilt",
                                         name, sha, True, changes))


def sanitize_medium(settings: Settings, path: str, out: Path, options: SanitizeOptions,
                    progress: ProgressFn | None = None) -> SanitizeReport:
    """Scan ``path``, rebuild what may be imported into a signed package at ``out``.

    Raises
    ------
    MediaError
        An override without operator and reason; the medium or package cannot be read or written.
    """
    if options.allow_suspicious and not (options.override_operator.strip()
                                         and options.override_reason.strip()):
        raise MediaError("packaging suspicious files needs the operator's name and a reason",
                         remedy="give --operator NAME and --reason TEXT with --allow-suspicious")
    if out.exists():
        raise MediaError("the package target exists already", subject=str(out),
                         remedy="choose a new --out path; packages are never overwritten")
    key = load_station_key(settings.home_path, settings.station_name)
    report = run_scan(settings, path, options.scan, progress)
    package_id = str(uuid.uuid4())
    run = _Run(settings, options, report, out, package_id)
    medium = open_medium(path)
    try:
        for done, f in enumerate(report.files, 1):
            src = medium.open(f.path)
            try:
                run.handle(src, f)
            finally:
                src.close()
            if progress is not None:
                progress(done, len(report.files), f.path)
        manifest = _manifest(settings, options, report, run, key.key_id, package_id)
        data = manifest.canonical()
        run.writer.finish(data, sign_manifest(data, key))
    except BaseException:
        run.writer.abort()
        raise
    finally:
        medium.close()
    result = SanitizeReport(str(out), package_id, key.key_id, report, tuple(run.outcomes))
    _audit(settings, options, result, run)
    return result


def _manifest(settings: Settings, options: SanitizeOptions, report: MediumReport, run: _Run,
              kid: str, package_id: str) -> Manifest:
    policy: dict[str, Any] = {"keep_private": options.keep_private,
                              "allow_suspicious": options.allow_suspicious}
    if options.allow_suspicious:
        policy["override"] = {"operator": options.override_operator,
                              "reason": options.override_reason}
    return Manifest(
        package_id=package_id, created=datetime.now(UTC).isoformat(timespec="seconds"),
        radguard_version=__version__, station=settings.station_name,
        operator=settings.operator_name, key_id=kid,
        medium={"path": report.path, "kind": report.medium_kind, "scan_id": report.scan_id,
                "verdict": report.verdict.label},
        policy=policy,
        tables={"safe-private": SAFE_TABLE, **dict(report.tables)},
        files=tuple(run.entries), excluded=tuple(run.excluded))


def _audit(settings: Settings, options: SanitizeOptions, result: SanitizeReport,
           run: _Run) -> None:
    emitter = AuditEmitter.from_settings(settings)
    packaged = {f.path for f in result.files if f.disposition == "packaged"}
    reports = [f for f in result.scan.files if f.path in packaged]
    patients = sorted({f.identity["p_patient_id"] for f in reports
                       if f.identity.get("p_patient_id")})
    studies = sorted({e.study_uid for e in run.entries})
    c = result.counts
    emitter.emit(builders.data_export(
        user=settings.operator_name, station=settings.station_name, media_id=result.package,
        patient_ids=patients, study_uids=studies, encrypted=False, site=settings.site or None,
        outcome=Outcome.SUCCESS if not c["excluded"] else Outcome.MINOR_FAILURE,
        description=f"custody package {result.package_id}: {c['packaged']} files rebuilt and "
        f"signed, {c['excluded']} left out (scan {result.scan.scan_id})"))
    if any(e.override for e in run.entries):
        emitter.emit(builders.security_alert(
            "110132", station=settings.station_name, subject=result.package,
            user=options.override_operator, site=settings.site or None, outcome=Outcome.SUCCESS,
            details=[f"reason: {options.override_reason}",
                     *(f"suspicious file packaged: {e.original_path}" for e in run.entries
                       if e.override)][:50],
            description="suspicious files packaged by operator override"))
