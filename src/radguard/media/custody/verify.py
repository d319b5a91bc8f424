"""Verifying a custody package before anything is sent (issue 3; MITA CSP 1-2015 integrity).

:func:`verify_package` checks, in order: the package can be opened and holds only regular files with
the fixed names; ``manifest.sig`` exists and is a valid Ed25519 signature over ``manifest.json`` by a
key in the trust store; the manifest is canonical and follows the schema and names the same key; every
listed file is present with the listed size and SHA-256; no member is left unlisted. Every problem
names the member and a cause code; one problem refuses the whole package.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from radguard.keys import TrustStore
from radguard.media.custody.errors import ManifestInvalid, PackageProblem, PackageRefusedDetail
from radguard.media.custody.manifest import Manifest, ManifestFile, parse_manifest
from radguard.media.custody.package import (
    MANIFEST,
    SIGNATURE,
    FolderPackage,
    TarPackage,
    open_package,
)
from radguard.media.custody.signing import check_signature

__all__ = ["VerifiedPackage", "check_member", "verify_package"]

HASH_THREADS = 3
"""Threads that read and hash members during verification (results are taken in manifest order)."""

REMEDY = ("do not import it; get a fresh package from the media station and find out who had the "
          "carrier in between")


@dataclass(frozen=True, slots=True)
class VerifiedPackage:
    """A package whose signature and every hash were checked."""

    path: Path
    manifest: Manifest
    key_id: str
    station: str
    reader: FolderPackage | TarPackage
    verified_bytes: dict[str, bytes] = field(default_factory=dict)
    """Members whose bytes were kept in memory after their check (``keep_bytes``): sending these
    needs no second read or hash, since the bytes cannot change in memory. Consumers may pop."""


def _refuse(path: Path, problems: list[PackageProblem]) -> PackageRefusedDetail:
    head = problems[0]
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return PackageRefusedDetail(f"package refused: {head.name}: {head.detail}{more}",
                                subject=str(path), problems=tuple(problems), remedy=REMEDY)


def check_member(data: bytes, entry: ManifestFile) -> PackageProblem | None:
    """``None`` when ``data`` has the size and SHA-256 the manifest lists for ``entry``."""
    if len(data) != entry.size:
        return PackageProblem(entry.name, "altered",
                              f"{len(data)} bytes where the manifest lists {entry.size}")
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        return PackageProblem(entry.name, "altered", "SHA-256 differs from the signed manifest")
    return None


def verify_package(path: Path, trust: TrustStore,
                   progress: Callable[[int, int, str], None] | None = None,
                   keep_bytes: int = 0) -> VerifiedPackage:
    """Verify the package at ``path`` against ``trust``; see the module docstring.

    Up to ``keep_bytes`` bytes of checked members are kept in
    :attr:`VerifiedPackage.verified_bytes` (in manifest order), so an importer can send them without
    reading and hashing them a second time.

    Raises
    ------
    PackageRefusedDetail
        Any problem; ``problems`` names every member at fault and its cause.
    """
    reader = open_package(path)
    try:
        problems = list(reader.odd)
        names = set(reader.names())
        for member, cause in ((MANIFEST, "incomplete"), (SIGNATURE, "unsigned")):
            if member not in names:
                problems.append(PackageProblem(member, cause, f"{member} is missing"))
        if problems:
            raise _refuse(path, problems)
        data = reader.read(MANIFEST)
        kid, problem = check_signature(data, reader.read(SIGNATURE), trust)
        if problem is not None or kid is None:
            raise _refuse(path, [problem or PackageProblem(SIGNATURE, "unsigned", "no key id")])
        try:
            manifest = parse_manifest(data)
        except ManifestInvalid as exc:
            raise _refuse(path, [PackageProblem(MANIFEST, "manifest-invalid", exc.message)]
                          ) from None
        if manifest.key_id != kid:
            problems.append(PackageProblem(MANIFEST, "bad-signature", f"manifest names key "
                                           f"{manifest.key_id} but was signed by {kid}"))
        listed = manifest.by_name()

        found, kept = _check_members(reader, names, manifest.files, keep_bytes, progress)
        problems.extend(p for p in found if p is not None)
        for extra in sorted(names - set(listed) - {MANIFEST, SIGNATURE}):
            problems.append(PackageProblem(extra, "unexpected-file", "not listed in the manifest"))
        if problems:
            raise _refuse(path, problems)
        station = trust.get(kid).station
    except BaseException:
        reader.close()
        raise
    return VerifiedPackage(path, manifest, kid, station, reader, kept)


def _check_members(reader: FolderPackage | TarPackage, names: set[str],
                   files: tuple[ManifestFile, ...], keep_bytes: int,
                   progress: Callable[[int, int, str], None] | None
                   ) -> tuple[list[PackageProblem | None], dict[str, bytes]]:
    """Check every member in :data:`HASH_THREADS` threads (reading and SHA-256 release the GIL),
    each taking the next member until none is left; the problem of each member (manifest order)
    and the bytes kept, up to ``keep_bytes``. ``progress`` is called in the calling thread."""
    kept: dict[str, bytes] = {}
    budget = [keep_bytes]
    lock = threading.Lock()
    found: list[PackageProblem | None] = [None] * len(files)
    todo = iter(range(len(files)))
    finished: queue.SimpleQueue[int | BaseException] = queue.SimpleQueue()
    stop = threading.Event()

    def check(entry: ManifestFile) -> PackageProblem | None:
        if entry.name not in names:
            return PackageProblem(entry.name, "incomplete", "listed in the manifest but missing")
        data = reader.read(entry.name)
        problem = check_member(data, entry)
        if problem is None and len(data) <= budget[0]:
            with lock:
                if len(data) <= budget[0]:
                    budget[0] -= len(data)
                    kept[entry.name] = data
        return problem

    def worker() -> None:
        try:
            while not stop.is_set() and (i := next(todo, None)) is not None:
                found[i] = check(files[i])
                finished.put(i)
        except BaseException as exc:  # raised in the calling thread
            finished.put(exc)

    threads = [threading.Thread(target=worker, name=f"radguard-verify-{k}", daemon=True)
               for k in range(min(HASH_THREADS, max(1, len(files))))]
    for t in threads:
        t.start()
    error: BaseException | None = None
    for done in range(1, len(files) + 1):
        item = finished.get()
        if isinstance(item, BaseException):
            error = item
            stop.set()
            break
        if progress is not None:
            progress(done, len(files), files[item].name)
    for t in threads:
        t.join()
    if error is not None:
        raise error
    return found, kept
