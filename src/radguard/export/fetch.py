"""Fetch studies from PACS by Study Instance UID for ``media export --study UID --from PROFILE``.

The source is a destination profile of the import subsystem (``[destinations.NAME]`` or a URL,
parsed by :func:`radguard.importer.destination.parse_destination`): a DICOMweb profile is fetched by
WADO-RS (:mod:`radguard.export.fetch_web`), a ``dimse://`` profile by C-FIND + C-GET
(:mod:`radguard.export.fetch_dimse`), each with the profile's TLS and credentials.

Fetched files are untrusted input. Every one is walked by the bounded reader
(:func:`radguard.dicomio.walk`) and judged like any export input
(:func:`radguard.export.selection.judge`); it must also belong to the study asked for and carry the
SOP Instance UID its File Meta Information names. One file that fails refuses the whole fetch:
a medium must not silently lack part of a study. The total size, instance count and time are
bounded (:class:`radguard.export.fetch_base.FetchLimits`, config table ``[fetch]``).

Plaintext staging (:func:`staging`): fetched files live only in a private folder
``HOME/fetch-staging/run-XXXX`` (mode 0700, files 0600) that the export consumes and that is
removed in a ``finally`` (also on error, Ctrl-C and SIGTERM). Each run holds an exclusive lock on
its folder; a later run removes folders whose lock nobody holds (left by a killed process or a
power cut).

Audit: each fetch emits DICOM Instances Transferred (PS3.15 A.5.3.7, EventID 110104) with the
PACS as Source (110153) and RadGuard as Destination (110152) and requestor, action C (RadGuard
did not hold the instances), the patients and the studies with their SOP classes and counts;
a failed fetch emits it with outcome 8 and the reason. The export then emits its own Export
(110106) message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from radguard.config import Settings
from radguard.dicomio import ReadLimits, open_path, walk
from radguard.dimse import Peer
from radguard.export.fetch_base import (
    FetchFailed,
    FetchIncomplete,
    FetchLimits,
    FetchRefused,
    Sink,
    SourceUnavailable,
)
from radguard.export.selection import Skipped, judge
from radguard.importer.destination import WebDestination, parse_destination

if TYPE_CHECKING:
    from radguard.audit import AuditEmitter
    from radguard.export.interface import ExportOptions, ExportResult

__all__ = ["FetchResult", "FetchedStudy", "export_fetched", "fetch_studies", "staging"]

STAGING = "fetch-staging"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class FetchedStudy:
    """One study fetched: its UID, how many instances and bytes arrived."""

    study_uid: str
    instances: int
    bytes: int


@dataclass(frozen=True)
class FetchResult:
    """What a fetch put into the staging folder (no patient data)."""

    source: str
    folder: Path
    studies: tuple[FetchedStudy, ...]

    @property
    def instances(self) -> int:
        return sum(s.instances for s in self.studies)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.studies)

    def describe(self, skipped: Skipped) -> Skipped:
        """``skipped`` with a staging path replaced by the source's name (the file is gone)."""
        if Path(skipped.path).parent == self.folder:
            return Skipped(f"{self.source} ({Path(skipped.path).name})", skipped.reason)
        return skipped


# -- staging -------------------------------------------------------------------------------------


def _sweep(root: Path) -> None:
    """Remove run folders nobody holds the lock of (left by a killed run)."""
    for run in root.glob("run-*"):
        lock = run / ".lock"
        try:
            fd = os.open(lock, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            with contextlib.suppress(OSError):
                if time.time() - run.stat().st_mtime > 60:  # older than a starting run
                    shutil.rmtree(run)
            continue
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a running export holds it
            continue
        try:
            shutil.rmtree(run, ignore_errors=True)
        finally:
            os.close(fd)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def staging(settings: Settings) -> Iterator[Path]:
    """A private staging folder ``HOME/fetch-staging/run-XXXX/files`` (its run folder locked),
    removed on exit whatever happens (SIGTERM is turned into ``KeyboardInterrupt`` meanwhile, in
    the main thread)."""
    root = settings.home_path / STAGING
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(root, 0o700)
    _sweep(root)
    run = Path(tempfile.mkdtemp(prefix="run-", dir=root))  # 0700
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        folder = run / "files"
        folder.mkdir(mode=0o700)
        yield folder
    finally:
        try:
            shutil.rmtree(run, ignore_errors=True)
        finally:
            os.close(fd)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


# -- fetching ------------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Per-fetch identities for the audit message."""

    patients: dict[str, None]
    classes: dict[str, Counter[str]]
    sops: set[str]


def _check(paths: Sequence[Path], study: str, source: str, limits: ReadLimits,
           tally: _Tally) -> int:
    """Walk each fetched file; return the bytes kept. Duplicates are removed."""
    kept = 0
    for path in paths:
        src = open_path(path)
        try:
            result = walk(src, limits)
        finally:
            src.close()
        outcome = judge(path, result)
        where = f"study {study} (instance {path.name} from {source})"
        if isinstance(outcome, Skipped):
            raise FetchRefused(f"a fetched instance was refused: {outcome.reason}", subject=where,
                               remedy="check the instance on the PACS (radguard media scan a "
                               "copy of it); nothing was exported")
        if outcome.study_uid != study:
            raise FetchRefused("the PACS sent an instance of another study", subject=where,
                               remedy="check the PACS; nothing was exported")
        if result.meta.get(0x00020003, outcome.sop_uid) != outcome.sop_uid:
            raise FetchRefused("File Meta and data set name different SOP Instance UIDs",
                               subject=where, remedy="check the instance on the PACS")
        if outcome.sop_uid in tally.sops:
            path.unlink()
            continue
        tally.sops.add(outcome.sop_uid)
        tally.patients.setdefault(outcome.patient_id or "UNKNOWN")
        tally.classes.setdefault(study, Counter())[outcome.sop_class] += 1
        kept += outcome.size
    return kept


def _audit(emitter: AuditEmitter | None, settings: Settings, dest: Peer | WebDestination,
           studies: Sequence[str], tally: _Tally, error: BaseException | None) -> None:
    if emitter is None:
        return
    from radguard.audit.builders import instances_transferred
    from radguard.audit.message import ActionCode, Outcome

    host: str | None
    if isinstance(dest, Peer):
        source, host, me = dest.called_aet, dest.host, dest.calling_aet
    else:
        source, host, me = dest.base_url, urlsplit(dest.base_url).hostname or None, "radguard"
    description = None
    if error is not None:
        message = getattr(error, "message", None) or type(error).__name__
        description = f"fetch for export failed: {message}"
    emitter.emit(instances_transferred(
        station=settings.station_name, source=source, destination=me, source_host=host,
        destination_host=settings.station_name, requestor="destination",
        action=ActionCode.CREATE, user=settings.operator_name,
        patient_ids=list(tally.patients), study_uids=list(studies),
        sop_classes={s: dict(c) for s, c in tally.classes.items()}, site=settings.site or None,
        outcome=Outcome.SUCCESS if error is None else Outcome.SERIOUS_FAILURE,
        description=description))


def fetch_studies(study_uids: Sequence[str], source: str, folder: Path, settings: Settings, *,
                  limits: FetchLimits | None = None, read_limits: ReadLimits | None = None,
                  emitter: AuditEmitter | None = None,
                  progress: Progress | None = None) -> FetchResult:
    """Fetch ``study_uids`` from the profile or URL ``source`` into ``folder`` (from
    :func:`staging`); every file is checked before it counts (see the module docstring).

    Raises
    ------
    DestinationInvalid
        ``source`` is not a profile name or destination URL.
    FetchFailed
        A study is unknown, the PACS unreachable or refusing, the transfer partial or too large,
        or an instance failed the checks. The caller removes ``folder`` (``staging`` does).
    """
    limits = limits or FetchLimits.from_settings(settings)
    read_limits = read_limits or ReadLimits.from_settings(settings)
    studies = list(dict.fromkeys(u.strip() for u in study_uids))
    for uid in studies:
        if not (0 < len(uid) <= 64 and _UID.match(uid)):
            raise FetchFailed("not a Study Instance UID (digits and dots, at most 64)",
                              subject=uid[:80] or "(empty)", remedy="copy the UID from the PACS")
    dest = parse_destination(source, settings)
    label = dest.label if isinstance(dest, WebDestination) else f"PACS {dest.label}"
    sink = Sink(folder, limits, label)
    tally = _Tally({}, {}, set())
    deadline = time.monotonic() + limits.timeout
    done: list[FetchedStudy] = []
    report = progress or (lambda done, total, item: None)
    error: BaseException | None = None
    try:
        client = None
        if isinstance(dest, WebDestination):
            from radguard.export.fetch_web import fetch_study_web, web_client

            client = web_client(dest, limits)
        try:
            for n, study in enumerate(studies):
                report(n, len(studies), f"fetching study {n + 1}/{len(studies)}")
                if time.monotonic() >= deadline:
                    raise SourceUnavailable(f"{label}: the fetch did not finish within "
                                            f"{limits.timeout:g} s", subject=f"study {study}",
                                            remedy="raise timeout in the [fetch] table of the "
                                            "config file, or export fewer studies at once")
                start = len(sink.paths)
                if client is not None and isinstance(dest, WebDestination):
                    listed = fetch_study_web(client, dest, study, sink, deadline)
                else:
                    from radguard.export.fetch_dimse import fetch_study_dimse

                    assert isinstance(dest, Peer)
                    listed = set(fetch_study_dimse(dest, study, sink, limits,
                                                   deadline - time.monotonic()))
                before = set(tally.sops)
                size = _check(sink.paths[start:], study, label, read_limits, tally)
                missing = (listed or set()) - tally.sops
                if missing:
                    raise FetchIncomplete(f"{label} sent {len(tally.sops - before)} instances but "
                                          f"lists {len(listed or ())}", subject=f"study {study}",
                                          remedy="retry; check the PACS log")
                done.append(FetchedStudy(study, len(tally.sops - before), size))
            report(len(studies), len(studies), "fetched")
        except OSError as exc:  # the staging folder, not the PACS
            raise FetchFailed(f"cannot use the staging folder: {exc.strerror}",
                              subject=str(folder), remedy="free space in the RadGuard home "
                              "(fetch-staging) and check its permissions") from exc
        finally:
            if client is not None:
                client.close()
    except BaseException as exc:
        error = exc
        raise
    finally:
        _audit(emitter, settings, dest, studies, tally, error)
    return FetchResult(label, folder, tuple(done))


def export_fetched(study_uids: Sequence[str], source: str, inputs: Sequence[Path], out: Path,
                   options: ExportOptions, settings: Settings, *,
                   emitter: AuditEmitter | None = None,
                   progress: Progress | None = None) -> ExportResult:
    """``media export --study UID... --from SOURCE [INPUT...]``: fetch into :func:`staging`, export
    the fetched files together with ``inputs`` (:func:`radguard.export.export_media`), and remove
    the plaintext staging folder whatever happens. Skipped fetched files are named by the source.

    Raises
    ------
    TargetExists
        ``out`` exists (checked before anything is fetched).
    FetchFailed, ExportError, DestinationInvalid
        As :func:`fetch_studies` and :func:`radguard.export.export_media`.
    """
    from dataclasses import replace

    from radguard.export.errors import TargetExists
    from radguard.export.writer import export_media

    if os.path.lexists(out):
        raise TargetExists("the output already exists", subject=str(out),
                           remedy="choose a new name; an export never overwrites")
    with staging(settings) as folder:
        fetched = fetch_studies(study_uids, source, folder, settings, emitter=emitter,
                                read_limits=options.limits, progress=progress)
        result = export_media([*inputs, folder], out, options, settings, emitter=emitter,
                              progress=progress)
    return replace(result, skipped=tuple(fetched.describe(s) for s in result.skipped))
