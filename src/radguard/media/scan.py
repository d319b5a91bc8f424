"""``media scan``: the verdict on every file of a medium, and on the medium (MITA CSP 1-2015: read
outside media on an offline PC before anything reaches PACS).

Files are inspected on a process pool (:mod:`radguard.engine`); a large folder is inspected while
it is still being listed (:func:`radguard.engine.stream.run_streamed`). Medium-level checks
(DICOMDIR, cross-file identity, links, special files) are made from the whole listing and all the
files' results; those that need only the listing run while the workers work.
"""

from __future__ import annotations

import gc
import os
import posixpath
import secrets
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from radguard import __version__
from radguard.dicomio import ReadLimits
from radguard.findings import Finding, Verdict, worst
from radguard.media import checks
from radguard.media.engines import EngineConfig, Engines
from radguard.media.inspect import InspectOptions, inspect_entry
from radguard.media.interface import FileKind, FileReport, MediumReport
from radguard.media.medium import Entry, Medium, MediumSpec, display_path, open_medium, reopen
from radguard.media.signatures import SignatureTable, load_table

__all__ = ["ScanOptions", "scan_medium"]

ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to scan: reader limits, worker processes, engines, and the per-scan identity salt."""

    limits: ReadLimits = field(default_factory=ReadLimits)
    workers: int = 1
    engines: EngineConfig = field(default_factory=EngineConfig)
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))


@dataclass
class _WorkerState:
    medium: Medium
    options: InspectOptions
    engines: Engines
    table: SignatureTable


def _init_worker(spec: MediumSpec, options: InspectOptions, engines: Engines | EngineConfig
                 ) -> _WorkerState:
    """A worker's state: the medium reopened, and the engines (loaded here from a config, or
    already loaded by the parent before it forked: compiled YARA rules are then shared)."""
    loaded = engines if isinstance(engines, Engines) else Engines.load(engines)
    return _WorkerState(reopen(spec), options, loaded, load_table())


def _inspect(state: _WorkerState, entry: Entry) -> FileReport:
    return inspect_entry(state.medium, entry, state.options, state.engines, state.table)


_Packed = tuple[str, FileKind, int, "str | None", int, tuple[Finding, ...], Mapping[str, str],
                tuple[tuple[str, str], ...], str]
_VERDICTS = tuple(Verdict)


def _inspect_packed(state: _WorkerState, entry: Entry) -> _Packed:
    """:func:`_inspect` as plain values, with the report's JSON line already written: cheap to
    pickle, and the parent process only rebuilds the :class:`FileReport` (see :func:`_unpack`)."""
    r = _inspect(state, entry)
    return (r.path, r.kind, r.size, r.sha256, int(r.verdict), r.findings, r.identity, r.references,
            r.json_line())


def _unpack(p: _Packed) -> FileReport:
    report = FileReport(p[0], p[1], p[2], p[3], _VERDICTS[p[4]], p[5], p[6], p[7])
    object.__setattr__(report, "_json", p[8])
    return report


def _name_problem(rel: str) -> str | None:
    if rel.isascii() and rel.isprintable():
        return None  # the common case; an ASCII character is unprintable only if it is Cc
    if "\ufffd" in rel or any("\udc80" <= ch <= "\udcff" for ch in rel):
        return "bytes that are not valid UTF-8"
    if any(unicodedata.category(ch) == "Cc" for ch in rel):
        return "control characters"
    return None


def _entry_findings(entries: Iterable[Entry]) -> Iterator[Finding]:
    for e in entries:
        rel = display_path(e.rel)
        if e.kind == "symlink":
            target = display_path(e.target or "")
            yield checks.check("media.symlink").finding(f"symbolic link to {target!r} (not followed)",
                                                        path=rel, target=target)
        elif e.kind == "special":
            yield checks.check("media.special-file").finding(f"{e.note} on the medium", path=rel)
        elif e.kind == "unreadable":
            yield checks.check("media.unreadable").finding(e.note, path=rel)
        elif e.kind == "file" and e.nlink > 1:
            yield checks.check("media.hard-link").finding(f"file has {e.nlink} hard links",
                                                          path=rel)
        problem = _name_problem(e.rel)
        if problem:
            yield checks.check("media.filename-unsafe").finding(
                f"file name has {problem}", path=e.rel.encode("unicode_escape").decode("ascii"))


def _resolve_file_id(base: str, file_id: str) -> tuple[str | None, str | None]:
    """Resolve a Referenced File ID (PS3.10 8.2, PS3.3 F.3.2.2) relative to the DICOMDIR's folder.

    Returns (relative path, None) or (None, reason it escapes or is invalid).
    """
    parts = file_id.split("\\")
    for part in parts:
        if part in ("", ".", "..") or "/" in part or ":" in part or "\x00" in part:
            return None, f"component {part!r} is not allowed"
    if len(parts) > 8:
        return None, "more than 8 components"
    rel = posixpath.normpath(posixpath.join(base, *parts))
    if rel.startswith("../") or rel == ".." or rel.startswith("/"):
        return None, "leaves the medium"
    return rel, None


def _dicomdir_findings(files: list[FileReport]) -> Iterator[Finding]:
    dirs = [f for f in files if f.kind == "dicomdir"]
    if not dirs:
        return
    by_path = {f.path: f for f in files}
    by_upper: dict[str, FileReport] = {f.path.upper(): f for f in files}
    listed: set[str] = set()
    for d in dirs:
        base = posixpath.dirname(d.path)
        listed.add(d.path)
        for file_id, uid in d.references:
            rel, reason = _resolve_file_id(base, file_id)
            if rel is None:
                yield checks.check("dicomdir.reference-escapes").finding(
                    f"Referenced File ID {file_id!r}: {reason}", path=d.path, file_id=file_id)
                continue
            target = by_path.get(rel) or by_upper.get(rel.upper())
            if target is None:
                yield checks.check("dicomdir.missing-file").finding(
                    f"Referenced File ID {file_id!r} is not on the medium", path=d.path,
                    file_id=file_id)
                continue
            listed.add(target.path)
            have = target.identity.get("sop_instance_uid", "")
            if uid and have and uid != have:
                yield checks.check("dicomdir.uid-mismatch").finding(
                    f"record for {target.path} names SOP Instance UID {uid}, the file holds {have}",
                    path=target.path)
    for f in files:
        if f.kind == "dicom" and f.path not in listed:
            yield checks.check("dicomdir.unlisted-file").finding(
                "DICOM file not listed in any DICOMDIR", path=f.path)


_IDENTITY_LABELS = (("h_patient_id", "Patient ID/Issuer"), ("h_patient_name", "Patient's Name"),
                    ("h_birth_date", "Patient's Birth Date"))


_StudyKeys = dict[str, set[tuple[str, str, str]]]


def _add_study_key(studies: _StudyKeys, f: FileReport) -> None:
    """Note the patient of ``f`` under its study (see :func:`_identity_findings`)."""
    ident = f.identity
    study = ident.get("study_uid")
    if not study or f.kind != "dicom":
        return
    key = (ident.get("h_patient_id", ""), ident.get("h_patient_name", ""),
           ident.get("h_birth_date", ""))
    seen = studies.get(study)
    if seen is None:
        studies[study] = {key}
    else:
        seen.add(key)


def _identity_findings(studies: _StudyKeys) -> Iterator[Finding]:
    """Files of one study must agree on the patient (salted hashes of ID/issuer, name, birth date).

    ``studies``: every file's key added with :func:`_add_study_key` (in any order).
    """
    for study in sorted(s for s, keys in studies.items() if len(keys) > 1):
        keys = studies[study]
        differ = [label for i, (_, label) in enumerate(_IDENTITY_LABELS)
                  if len({k[i] for k in keys}) > 1]
        yield checks.check("study.identity-mismatch").finding(
            f"files of study {study} disagree on {', '.join(differ)}", study_uid=study,
            attributes=differ)


def scan_medium(path: str | os.PathLike[str], options: ScanOptions | None = None,
                progress: ProgressFn | None = None) -> MediumReport:
    """Scan a folder, mount point, ISO image or single file; never writes to it.

    Parameters
    ----------
    path: the medium.
    options: limits, workers, engines.
    progress: called as ``progress(done, total, rel_path)`` after each file.

    Raises
    ------
    MediumUnreadable
        The medium itself cannot be opened (a file that cannot be read is a finding instead).
    """
    options = options or ScanOptions()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    medium = open_medium(path)
    listing = _Listing(medium)
    results: Iterator[FileReport] | None = None
    try:
        listing.fill(STREAM_FROM)
        inspect_opts = InspectOptions(options.limits, options.salt)
        engines = Engines.load(options.engines)  # once, before the workers fork (they share it)
        reports: list[FileReport] = []
        studies: _StudyKeys = {}
        if listing.done or options.workers <= 1 or medium.spec.kind != "folder":
            listing.fill(None)
            results = _run(medium.spec, listing.regular, inspect_opts, engines, options.workers)
        else:  # a large folder: the workers start while the rest of it is listed
            results = _run_streamed(medium.spec, listing, inspect_opts, engines, options.workers)
        backlog = 0  # files in before the listing ended: their progress waits for the total
        for report in results:
            reports.append(report)
            _add_study_key(studies, report)
            if listing.findings is None and listing.done:
                # The workers run: the checks of the listing are made now, in this otherwise
                # waiting process, not serially after the last file.
                listing.findings = list(_entry_findings(listing.entries))
            if progress is not None:
                if not listing.done:
                    backlog += 1
                    continue
                total = len(listing.regular)
                for i in range(len(reports) - backlog, len(reports) + 1):
                    progress(i, total, reports[i - 1].path)
                backlog = 0
    finally:
        if isinstance(results, Generator):  # on an error: stop the workers, re-enable the GC now
            results.close()
        listing.close()
    if progress is not None and backlog:
        for i in range(len(reports) - backlog + 1, len(reports) + 1):
            progress(i, len(listing.regular), reports[i - 1].path)
    entry_findings = listing.findings
    if entry_findings is None:
        entry_findings = list(_entry_findings(listing.entries))
    reports.sort(key=lambda r: r.path)
    medium_findings = [*entry_findings, *_dicomdir_findings(reports),
                       *_identity_findings(studies)]
    engines_status = engines.status
    verdict = worst([*(r.verdict for r in reports),
                     *(checks.check(f.check_id).verdict for f in medium_findings)])
    return MediumReport(
        path=str(path),
        medium_kind=medium.spec.kind,
        verdict=verdict if reports or medium_findings else Verdict.CLEAN,
        files=tuple(reports),
        findings=tuple(medium_findings),
        started=started,
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        engines=engines_status,
        tables={"radguard-media-signatures": load_table().version,
                "radguard-media-checks": f"{__version__}/{len(checks.REGISTRY)} checks"},
        radguard_version=__version__,
    )


STREAM_FROM = 1024
"""Folders with more regular files than this are scanned while they are listed."""


class _Listing:
    """A medium's entries, listed on demand (all of them, or while the workers run)."""

    def __init__(self, medium: Medium):
        self.medium: Medium | None = medium
        self.entries: list[Entry] = []
        self.regular: list[Entry] = []
        self.done = False
        self.findings: list[Finding] | None = None
        self._it = medium.entries()

    def fill(self, count: int | None) -> None:
        """List until ``count`` regular files are known (``None``: to the end)."""
        if self.done:
            return
        for e in self._it:
            self.entries.append(e)
            if e.kind == "file":
                self.regular.append(e)
                if count is not None and len(self.regular) >= count:
                    return
        self.done = True
        self.close()

    def stream(self) -> Iterator[tuple[str, int, int]]:
        """The regular files as ``(rel, size, nlink)``, those listed so far first; lists the rest."""
        known = len(self.regular)
        for e in self.regular[:known]:
            yield e.rel, e.size, e.nlink
        if not self.done:
            for e in self._it:
                self.entries.append(e)
                if e.kind == "file":
                    self.regular.append(e)
                    yield e.rel, e.size, e.nlink
            self.done = True
            self.close()

    def close(self) -> None:
        if self.medium is not None:
            medium, self.medium = self.medium, None
            medium.close()


def _inspect_listed(state: _WorkerState, listed: tuple[str, int, int]) -> _Packed:
    """:func:`_inspect_packed` for a regular file sent as ``(rel, size, nlink)``."""
    return _inspect_packed(state, Entry(listed[0], "file", listed[1], listed[2]))


def _run_streamed(spec: MediumSpec, listing: _Listing, inspect_opts: InspectOptions,
                  engines: Engines, workers: int) -> Iterator[FileReport]:
    """:func:`_run` for a large folder still being listed (:func:`radguard.engine.run_streamed`):
    the workers start at once, each range of files is sent to them as plain tuples."""
    from radguard.engine.stream import run_streamed

    yield from _unpacked_without_gc(run_streamed(
        _inspect_listed, listing.stream(), initializer=_init_worker,
        initargs=(spec, inspect_opts, engines), workers=workers, batch_size=64))


def _unpacked_without_gc(results: Iterator[_Packed]) -> Iterator[FileReport]:
    """The workers' results, unpacked, with the cyclic collector paused while they arrive.

    The results are long-lived and hold no cycles: the collector would only walk them again and
    again (about 0.1 s of this process's CPU on 20,000 files, serial or taken from the workers'
    cores). It is paused at the first result, once the workers exist (they keep theirs); at the
    end, on an error too, ``results`` is closed (its workers stopped) and freeze + unfreeze moves
    what the collector would have walked straight to the oldest generation.
    """
    collecting = gc.isenabled()
    try:
        for packed in results:
            if collecting and gc.isenabled():
                gc.disable()
            yield _unpack(packed)
    finally:
        if isinstance(results, Generator):
            results.close()
        if collecting:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _run(spec: MediumSpec, entries: list[Entry], inspect_opts: InspectOptions, engines: Engines,
         workers: int) -> Iterator[FileReport]:
    """Inspect ``entries`` on ``options.workers`` forked processes that share the entry list
    (:func:`radguard.engine.run_shared`); one worker, or a handful of files, run inline."""
    from radguard.engine import run_shared

    workers = min(workers, max(1, len(entries) // 8)) if entries else 1
    if workers <= 1:
        state = _init_worker(spec, inspect_opts, engines)
        for entry in entries:
            yield _inspect(state, entry)
        return
    # Ranges of 16 files; up to 64 on large media (fewer wake-ups, pipe messages and pickles for
    # both sides; the last range still ends within a few tens of milliseconds of the others).
    batch = max(16, min(64, len(entries) // 256))
    yield from _unpacked_without_gc(run_shared(
        _inspect_packed, entries, initializer=_init_worker,
        initargs=(spec, inspect_opts, engines), workers=workers, batch_size=batch))
