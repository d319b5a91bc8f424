"""quarantine: originals from outside media kept read-only by SHA-256, with their reasons."""

from __future__ import annotations

from radguard.quarantine.errors import QuarantineError, QuarantineItemNotFound
from radguard.quarantine.jobs import Released, purge, release
from radguard.quarantine.store import QuarantineItem, QuarantineStore, Sighting

__all__ = [
    "QuarantineError",
    "QuarantineItem",
    "QuarantineItemNotFound",
    "QuarantineStore",
    "Released",
    "Sighting",
    "purge",
    "release",
]
