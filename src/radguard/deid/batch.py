"""De-identify a folder (or one file) in parallel, audit it, and verify folders afterwards.

:func:`deidentify_tree` mirrors INPUT into OUTPUT (same sub-folders and file names, unless
``rename``); one file gives one file. Files are handed to :func:`radguard.engine.run_batched` on every
core in batches of :data:`BATCH_FILES`; each worker compiles the table once. The outputs of a batch are
made durable together (:class:`~radguard.deid.files.StagedWrites`: written, flushed with
``fdatasync``, then renamed), and a file is reported done only after that. With ``resume`` a file
whose output already exists (outputs are renamed into place only once durable, so an existing one
is complete) is not done again.

Audit (PS3.15 A.5.3.6 DICOM Instances Accessed, action C): de-identification creates new instances
from the originals; every original study is a participant object with Data Life Cycle 7
(De-identification) and the Anonymized flag. When the output is removable media (``media_id``), a
Data Export message (A.5.3.4, life cycle 10, Anonymized) follows, as for any export.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radguard import __version__
from radguard.audit import AuditEmitter, builders
from radguard.audit.message import ActionCode, AuditMessage, Outcome
from radguard.config import Settings
from radguard.deid.errors import DeidError, DeidKeyError
from radguard.deid.files import StagedWrites, deidentify_path, quiet_pydicom, sync_dirs
from radguard.deid.options import DeidOptions
from radguard.deid.report import DeidRunReport, FileDeidReport, FileStatus
from radguard.deid.tables import table_versions
from radguard.deid.verify import verify_file
from radguard.dicomio import ReadLimits
from radguard.engine import run_batched
from radguard.findings import Finding

__all__ = ["audit_run", "deidentify_tree", "pairs", "project_key", "verify_tree"]

ProgressFn = Callable[[int, int, str], None]
KEY_FILE = "keys/deid-project.key"
BATCH_FILES = 24
"""Files per worker batch: their outputs are made durable together (:class:`StagedWrites`)."""


def project_key(settings: Settings, key_file: Path | None = None) -> bytes:
    """The project key: ``key_file`` if given, else ``<home>/keys/deid-project.key``, created on
    first use (32 random bytes, mode 0600; never printed). Copy that file to every machine that must
    produce the same pseudonyms."""
    path = key_file or settings.home_path / KEY_FILE
    if key_file is None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
            fh.flush()
            os.fsync(fh.fileno())
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise DeidKeyError(f"cannot read the project key: {exc.strerror}", subject=str(path),
                           remedy="check the key file path and its permissions") from exc
    return key


def pairs(source: Path, output: Path) -> Iterator[tuple[Path, Path]]:
    """(input file, output file) for every regular file under ``source``, sorted; symlinks skipped."""
    for src, dst in _listing(Path(source), Path(output)):
        yield Path(src), Path(dst)


def _listing(source: Path, output: Path) -> list[tuple[str, str]]:
    """:func:`pairs` as strings (cheap to send to the workers): one ``scandir`` per folder, no
    extra ``stat`` per file; symlinked files and folders are skipped, as ``rglob`` does."""
    if source.is_file():
        return [(str(source), str(output / source.name if output.is_dir() else output))]
    src_root, out_root = source.resolve(), output.resolve()
    if out_root == src_root or src_root in out_root.parents:
        raise DeidError("the output folder is inside the input folder", subject=str(output),
                        remedy="choose an --out folder outside INPUT")
    found: list[tuple[tuple[str, ...], str, str]] = []
    pending: list[tuple[str, str, tuple[str, ...]]] = [(str(source), str(output), ())]
    while pending:
        folder, out_folder, parts = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            raise DeidError(f"cannot list the input folder: {exc.strerror or exc}", subject=folder,
                            remedy="give read access to the folder, or leave it out of INPUT; "
                                   "nothing is skipped silently") from exc
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir():
                pending.append((entry.path, os.path.join(out_folder, entry.name),
                                (*parts, entry.name)))
            elif entry.is_file():
                found.append(((*parts, entry.name), entry.path,
                              os.path.join(out_folder, entry.name)))
    found.sort(key=lambda item: item[0])  # the order of sorted(rglob): by path components
    return [(src, dst) for _, src, dst in found]


def remove_stale_temporaries(items: list[tuple[str, str]]) -> int:
    """Remove the temporary files an interrupted run left beside this run's outputs (named
    ``.<output name>.<pid or random>.part`` by :mod:`.durable`; never renamed, so never an
    output); returns how many. Only names of that shape for an output of ``items`` are touched."""
    wanted: dict[str, set[str]] = {}
    for _, dst in items:
        folder, name = os.path.split(dst)
        wanted.setdefault(folder, set()).add(name)
    removed = 0
    for folder, names in wanted.items():
        try:
            with os.scandir(folder) as listing:
                entries = [e.name for e in listing if e.name.startswith(".")
                           and e.name.endswith(".part") and e.is_file(follow_symlinks=False)]
        except OSError:
            continue  # no output folder yet: nothing left over
        for entry in entries:
            base = entry[1:-5].rpartition(".")[0]
            if base in names:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, entry))
                    removed += 1
    return removed


def _init(options: DeidOptions, limits: ReadLimits, resume: bool,
          json: bool = False) -> tuple[Any, ...]:
    return (options, limits, resume, json)


def _one(state: tuple[Any, ...], item: tuple[str, str],
         staging: StagedWrites | None = None) -> FileDeidReport:
    options, limits, resume, _ = state
    src, dst = item
    if resume and _done_before(src, dst):
        return FileDeidReport(src, dst, FileStatus.DEIDENTIFIED,
                              message="already de-identified (resume)")
    return deidentify_path(src, dst, options, limits, staging=staging)


def _done_before(src: str, dst: str) -> bool:
    """An output that exists and is newer than its input (outputs get their name only once
    durable, so an existing one is complete)."""
    try:
        return os.stat(dst).st_mtime >= os.stat(src).st_mtime
    except OSError:
        return False


def _chunk(state: tuple[Any, ...],
           items: list[tuple[str, str]]) -> tuple[list[FileDeidReport], list[str]]:
    """One batch in a worker: every output staged (:class:`StagedWrites`, flushed by this
    process's ``fdatasync`` threads while the next files are done), then renamed once all are
    durable; a file counts as de-identified only once its output is durable and in place (so
    ``resume``, which trusts existing outputs, stays correct after a crash). pydicom is silenced
    once for the batch (its messages quote values). With the ``json`` state flag the reports'
    JSON is made here too (:meth:`FileDeidReport.to_json`), on every core instead of at the
    serial end of the run."""
    staging = StagedWrites()
    try:
        with quiet_pydicom():
            reports = [_one(state, item, staging) for item in items]
        errors = staging.commit()
    except BaseException:
        staging.abort()
        raise
    done = []
    for report in reports:
        if report.pending is None:
            done.append(report)
        elif report.pending in errors:
            done.append(replace(report, status=FileStatus.FAILED, pending=None,
                                message=f"cannot write output: {errors[report.pending].strerror}"))
        else:
            done.append(replace(report, pending=None))
    return done, [r.to_json() for r in done] if state[3] else []


def _chunks(items: list[tuple[str, str]], size: int) -> list[list[tuple[str, str]]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _warm(options: DeidOptions) -> None:
    """Load the tables and the byte-level path before the pool forks: every worker inherits them
    instead of loading them again (process start-up is part of a run's cost)."""
    from radguard.deid import fastpath  # noqa: F401 - imported for the workers
    from radguard.deid.actions import unlisted_rules
    from radguard.deid.dataset import plan_for
    from radguard.deid.tables import safe_private

    plan_for(options.options)
    unlisted_rules()
    safe_private()


def deidentify_tree(source: Path, output: Path, options: DeidOptions, *, workers: int = 1,
                    limits: ReadLimits | None = None, progress: ProgressFn | None = None,
                    resume: bool = False, json: bool = False) -> DeidRunReport:
    """De-identify every file of ``source`` into ``output``; see the module docstring.

    ``progress`` is called once per batch, with the count done so far and the batch's last file.
    ``json``: the workers also render each file's report as JSON (``files_json`` of the result,
    joined by :meth:`DeidRunReport.to_json`).

    Raises :class:`DeidError` when ``source`` does not exist or ``output`` lies inside it.
    """
    source, output = Path(source), Path(output)
    if not source.exists():
        raise DeidError("input not found", subject=str(source), remedy="check the path")
    started, t0 = datetime.now(UTC), time.perf_counter()
    items = _listing(source, output)
    if resume:
        remove_stale_temporaries(items)
    _warm(options)
    reports: list[FileDeidReport] = []
    texts: list[str] = []
    for chunk, chunk_json in run_batched(_chunk, _chunks(items, BATCH_FILES), initializer=_init,
                                         initargs=(options, limits or ReadLimits(), resume, json),
                                         workers=max(1, workers), batch_size=1):
        reports.extend(chunk)
        texts.extend(chunk_json)
        if progress is not None and chunk:
            progress(len(reports), len(items), chunk[-1].source)
    sync_dirs(Path(folder) for folder in {os.path.dirname(r.output) for r in reports
                                          if r.output and r.ok})
    order = sorted(range(len(reports)), key=lambda i: reports[i].source)
    files = tuple(reports[i] for i in order)
    files_json = tuple(texts[i] for i in order) if len(texts) == len(reports) else ()
    return DeidRunReport(
        input=str(source), output=str(output), options=tuple(options.option_list),
        preset=options.preset, files=files, files_json=files_json, tables=table_versions(),
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - t0, radguard_version=__version__,
    )


def _deid_message(report: DeidRunReport, settings: Settings) -> AuditMessage:
    done = [f for f in report.files if f.ok and f.changes is not None]
    patients = sorted({f.changes.original_patient_id for f in done
                       if f.changes and f.changes.original_patient_id})
    studies = sorted({f.changes.original_study_uid for f in done
                      if f.changes and f.changes.original_study_uid})
    c = report.counts()
    outcome = Outcome.SUCCESS if c["refused"] + c["failed"] + c["incomplete"] == 0 \
        else Outcome.MINOR_FAILURE
    message = builders.instances_accessed(
        user=settings.operator_name, station=settings.station_name, patient_ids=patients,
        study_uids=studies, action=ActionCode.CREATE, site=settings.site or None, outcome=outcome,
        description=(f"de-identification (PS3.15 Annex E; options: "
                     f"{', '.join(report.options) or 'basic'}) of {c['files']} files: "
                     f"{c['deidentified']} done, {c['incomplete']} incomplete, {c['refused']} "
                     f"refused, {c['failed']} failed")[:1000],
    )
    objects = tuple(replace(o, life_cycle=7, anonymized=True) if o.type_code == 2 else
                    replace(o, life_cycle=7) for o in message.objects)
    return replace(message, objects=objects)


def audit_run(report: DeidRunReport, settings: Settings, *, media_id: str | None = None,
              emitter: AuditEmitter | None = None) -> str:
    """Emit the audit message(s) of a run; returns a short description for the report."""
    emitter = emitter or AuditEmitter.from_settings(settings)
    emitter.emit(_deid_message(report, settings))
    sent = "DICOM Instances Accessed (C, life cycle 7 De-identification)"
    if media_id:
        done = [f.changes for f in report.files if f.ok and f.changes is not None]
        emitter.emit(builders.data_export(
            user=settings.operator_name, station=settings.station_name, media_id=media_id,
            patient_ids=sorted({c.new_patient_id for c in done if c.new_patient_id}),
            study_uids=sorted({c.new_study_uid for c in done if c.new_study_uid}),
            encrypted=False, anonymized=True, site=settings.site or None,
            description=f"de-identified copies written to {media_id}"))
        sent += " + Data Export (anonymized)"
    return sent


def verify_tree(output: Path, original: Path | None = None, *,
                progress: ProgressFn | None = None) -> dict[str, list[Finding]]:
    """Verify every file under ``output``; originals are paired by relative path (or the file)."""
    files = [output] if output.is_file() else sorted(
        p for p in output.rglob("*") if p.is_file() and not p.is_symlink())
    results: dict[str, list[Finding]] = {}
    for i, path in enumerate(files, start=1):
        orig: Path | None = None
        if original is not None:
            if original.is_dir():
                orig = original / (path.relative_to(output) if output.is_dir() else path.name)
            else:
                orig = original
        results[str(path)] = verify_file(path, orig if orig is not None and orig.exists() else None)
        if progress is not None:
            progress(i, len(files), str(path))
    return results
