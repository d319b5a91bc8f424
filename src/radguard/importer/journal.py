"""The import journal: what was sent, refused and confirmed, per package and destination.

One JSON line per event in ``HOME/import/journal/<package id>--<destination hash>.jsonl``, appended
with ``O_APPEND`` and handed to the kernel at once, a group of records in one write (a killed process
loses nothing written); fsync'd as a group commit, every :data:`FSYNC_EVERY` records or
:data:`FSYNC_SECONDS`, whichever comes first, and on close (a power cut may lose the last few records:
"sent" ones are then sent again, which a PACS stores once per SOP Instance UID, and "confirmed" ones
are asked again). An instance is only ever "confirmed" after the destination listed it. A torn last
line is ignored on reading. The latest record of a member wins. Rerunning an import sends only members
not ``confirmed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from radguard.keys.fsio import ensure_private_dir, fsync_dir

__all__ = ["FSYNC_EVERY", "FSYNC_SECONDS", "Journal"]

FSYNC_EVERY = 256
FSYNC_SECONDS = 0.5


class Journal:
    """Append-only journal of one import; see the module docstring."""

    def __init__(self, home: Path, package_id: str, destination: str):
        folder = ensure_private_dir(home / "import" / "journal")
        digest = hashlib.sha256(destination.encode("utf-8")).hexdigest()[:16]
        self.path = folder / f"{package_id}--{digest}.jsonl"
        self.state: dict[str, dict[str, Any]] = {}
        self.resumed = self.path.exists()
        if self.resumed:
            self._load()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if not self.resumed:
            fsync_dir(folder)
        self.unsynced = 0
        self.synced_at = time.monotonic()

    def _load(self) -> None:
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn last record
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("name"), str):
                    self.state[rec["name"]] = rec

    def record(self, name: str, state: str, **details: Any) -> None:
        self.record_many([(name, state, details)])

    def record_many(self, events: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Append (name, state, details) events in one write; group-commit fsync."""
        lines = []
        for name, state, details in events:
            rec = {"name": name, "state": state, **details}
            self.state[name] = rec
            lines.append(json.dumps(rec, separators=(",", ":")).encode("utf-8") + b"\n")
        data = b"".join(lines)
        while data:  # os.write may be partial
            data = data[os.write(self.fd, data):]
        self.unsynced += len(lines)
        now = time.monotonic()
        if self.unsynced >= FSYNC_EVERY or (self.unsynced and now - self.synced_at >= FSYNC_SECONDS):
            os.fsync(self.fd)
            self.unsynced = 0
            self.synced_at = now

    def get(self, name: str) -> str | None:
        rec = self.state.get(name)
        return None if rec is None else str(rec["state"])

    def close(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
