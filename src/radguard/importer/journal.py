"""The import journal: what was sent, refused and confirmed, per package and destination.

One JSON line per event in ``HOME/import/journal/<package id>--<destination hash>.jsonl``, appended
with ``O_APPEND`` and flushed to the kernel at once (a killed process loses nothing); fsync'd every
:data:`FSYNC_EVERY` records and on close (a power cut may lose the last few, which are then sent again:
a PACS stores a re-sent SOP Instance UID once). A torn last line is ignored on reading. The latest
record of a member wins. Rerunning an import sends only members not ``confirmed``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from radguard.keys.fsio import ensure_private_dir, fsync_dir

__all__ = ["FSYNC_EVERY", "Journal"]

FSYNC_EVERY = 64


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
        rec = {"name": name, "state": state, **details}
        self.state[name] = rec
        os.write(self.fd, json.dumps(rec, separators=(",", ":")).encode("utf-8") + b"\n")
        self.unsynced += 1
        if self.unsynced >= FSYNC_EVERY:
            os.fsync(self.fd)
            self.unsynced = 0

    def get(self, name: str) -> str | None:
        rec = self.state.get(name)
        return None if rec is None else str(rec["state"])

    def close(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
