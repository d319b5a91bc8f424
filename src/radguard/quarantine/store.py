"""The quarantine store: originals from outside media, content-addressed by SHA-256, read-only.

Layout under ``HOME/quarantine`` (MITA CSP 1-2015 media handling; DESIGN invariant 1)::

    objects/ab/abcdef...   the original bytes, mode 0444, named by their SHA-256
    records/abcdef....json  why it is here: one entry per sighting (medium, path, scan id, verdict,
                            reasons, package), and every release

An object is written once (temporary file, fsync, hard link: the first writer wins) and never
modified. Records are rewritten atomically. Nothing is removed except by :meth:`QuarantineStore.purge`,
which callers reach only from an explicit command. Reading an object re-checks its hash.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radguard.dicomio.source import ByteSource
from radguard.keys.fsio import atomic_write, fsync_dir
from radguard.quarantine.errors import QuarantineError, QuarantineItemNotFound

__all__ = ["QuarantineItem", "QuarantineStore", "Sighting"]

CHUNK = 1024 * 1024
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Sighting:
    """One time an original was seen on a medium, and why it was kept."""

    medium: str
    path: str
    verdict: str
    reasons: tuple[str, ...]
    scan_id: int | None = None
    package_id: str | None = None
    disposition: str = "held"  # held | rebuilt | override
    when: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"medium": self.medium, "path": self.path, "verdict": self.verdict,
                "reasons": list(self.reasons), "scan_id": self.scan_id,
                "package_id": self.package_id, "disposition": self.disposition, "when": self.when}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Sighting:
        return cls(str(d.get("medium", "")), str(d.get("path", "")), str(d.get("verdict", "")),
                   tuple(str(r) for r in d.get("reasons", ())), d.get("scan_id"),
                   d.get("package_id"), str(d.get("disposition", "held")), str(d.get("when", "")))


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """An original in quarantine with its history."""

    sha256: str
    size: int
    first_seen: str
    sightings: tuple[Sighting, ...]
    releases: tuple[Mapping[str, str], ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> str:
        order = {"clean": 0, "suspicious": 1, "dangerous": 2}
        return max((s.verdict for s in self.sightings), key=lambda v: order.get(v, 3),
                   default="")

    @property
    def state(self) -> str:
        return "released" if self.releases else "held"

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "first_seen": self.first_seen,
                "verdict": self.verdict, "state": self.state,
                "sightings": [s.to_dict() for s in self.sightings],
                "releases": [dict(r) for r in self.releases]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class QuarantineStore:
    """Content-addressed, read-only store of originals; see the module docstring."""

    def __init__(self, home: Path):
        self.root = home / "quarantine"
        self.objects = self.root / "objects"
        self.records = self.root / "records"

    # -- paths -----------------------------------------------------------------------------------
    def object_path(self, sha256: str) -> Path:
        return self.objects / sha256[:2] / sha256

    def _record_path(self, sha256: str) -> Path:
        return self.records / f"{sha256}.json"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- writing ---------------------------------------------------------------------------------
    def put(self, src: ByteSource, sha256: str, sighting: Sighting) -> QuarantineItem:
        """Keep the bytes of ``src`` (whose SHA-256 the caller computed) and record ``sighting``.

        Idempotent: the same bytes seen again add a sighting (unless identical) and no new copy.

        Raises
        ------
        QuarantineError
            The bytes read now do not hash to ``sha256`` (the medium changed under us), or the
            store cannot be written.
        """
        if not HEX64.match(sha256):
            raise QuarantineError("not a SHA-256 hex digest", subject=sha256)
        sighting = sighting if sighting.when else _replace_when(sighting)
        target = self.object_path(sha256)
        try:
            if not target.exists():
                self._write_object(src, sha256, target)
            with self._lock():
                item = self._load(sha256, missing_ok=True)
                sightings = item.sightings if item else ()
                key = (sighting.medium, sighting.path, sighting.scan_id, sighting.package_id)
                if all((s.medium, s.path, s.scan_id, s.package_id) != key for s in sightings):
                    sightings = (*sightings, sighting)
                new = QuarantineItem(sha256, src.size, item.first_seen if item else sighting.when,
                                     sightings, item.releases if item else ())
                self._save(new)
        except OSError as exc:
            raise QuarantineError(f"cannot write the quarantine store: {exc.strerror}",
                                  subject=str(self.root),
                                  remedy="check free space and permissions of the RadGuard home"
                                  ) from exc
        return new

    def _write_object(self, src: ByteSource, sha256: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{sha256}.{os.getpid()}.tmp"
        digest = hashlib.sha256()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            offset = 0
            while offset < src.size:
                chunk = src.read_at(offset, CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                os.write(fd, chunk)
                offset += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        if digest.hexdigest() != sha256:
            os.unlink(tmp)
            raise QuarantineError("the file changed between the scan and quarantine (hash "
                                  "differs)", subject=sha256,
                                  remedy="scan the medium again; it may be failing or be written to")
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        fsync_dir(target.parent)

    def _save(self, item: QuarantineItem) -> None:
        data = json.dumps(item.to_dict(), indent=1, sort_keys=True).encode("utf-8")
        atomic_write(self._record_path(item.sha256), data, mode=0o600)

    def add_release(self, sha256: str, entry: Mapping[str, str]) -> QuarantineItem:
        """Record a release of ``sha256`` (who, when, why, where)."""
        with self._lock():
            item = self.get(sha256)
            new = QuarantineItem(item.sha256, item.size, item.first_seen, item.sightings,
                                 (*item.releases, dict(entry)))
            self._save(new)
        return new

    def remove(self, sha256: str) -> QuarantineItem:
        """Delete an object and its record (only :func:`radguard.quarantine.jobs.purge` calls this)."""
        with self._lock():
            item = self.get(sha256)
            obj = self.object_path(item.sha256)
            with contextlib.suppress(FileNotFoundError):
                os.chmod(obj, 0o600)
                obj.unlink()
            self._record_path(item.sha256).unlink()
            fsync_dir(self.records)
        return item

    # -- reading ---------------------------------------------------------------------------------
    def _load(self, sha256: str, *, missing_ok: bool = False) -> QuarantineItem | None:
        path = self._record_path(sha256)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if missing_ok:
                return None
            raise QuarantineItemNotFound("no such item in quarantine", subject=sha256,
                                         remedy="list items with 'radguard quarantine list'"
                                         ) from None
        return QuarantineItem(str(d["sha256"]), int(d["size"]), str(d.get("first_seen", "")),
                              tuple(Sighting.from_dict(s) for s in d.get("sightings", ())),
                              tuple(d.get("releases", ())))

    def get(self, ref: str) -> QuarantineItem:
        """The item whose SHA-256 is ``ref`` or starts with ``ref`` (at least 8 hex digits).

        Raises
        ------
        QuarantineItemNotFound
            No item, or the prefix is ambiguous or too short.
        """
        ref = ref.strip().lower()
        if HEX64.match(ref):
            item = self._load(ref)
            assert item is not None
            return item
        matches = [s for s in self.shas() if s.startswith(ref)] if len(ref) >= 8 else []
        if len(matches) != 1:
            why = "matches several items" if matches else "matches no item"
            raise QuarantineItemNotFound(f"'{ref}' {why} (give at least 8 hex digits)",
                                         subject=ref,
                                         remedy="list items with 'radguard quarantine list'")
        item = self._load(matches[0])
        assert item is not None
        return item

    def shas(self) -> list[str]:
        if not self.records.is_dir():
            return []
        return sorted(p.stem for p in self.records.glob("*.json") if HEX64.match(p.stem))

    def items(self, state: str | None = None) -> list[QuarantineItem]:
        found = []
        for sha in self.shas():
            item = self._load(sha, missing_ok=True)
            if item is not None and (state is None or item.state == state):
                found.append(item)
        return sorted(found, key=lambda i: (i.first_seen, i.sha256))

    def read(self, sha256: str) -> bytes:
        """The original bytes, after checking they still hash to ``sha256``.

        Raises
        ------
        QuarantineError
            The object is missing or damaged.
        """
        path = self.object_path(sha256)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise QuarantineError(f"object missing: {exc.strerror}", subject=str(path)) from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise QuarantineError("object damaged (hash differs)", subject=str(path),
                                  remedy="restore the quarantine folder from backup")
        return data


def _replace_when(s: Sighting) -> Sighting:
    return Sighting(s.medium, s.path, s.verdict, s.reasons, s.scan_id, s.package_id,
                    s.disposition, _now())


def reasons_text(reasons: Sequence[str]) -> str:
    return "; ".join(reasons) if reasons else "(none)"
