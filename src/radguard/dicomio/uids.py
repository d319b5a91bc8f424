"""RadGuard's own UIDs: the implementation class UID and deterministic derived UIDs.

UIDs under the ``2.25`` root are the decimal form of a UUID (PS3.5 B.2). RadGuard's Implementation
Class UID (PS3.7 D.3.3.2, written into File Meta Information (0002,0012) by the sanitiser) is derived
from a fixed UUIDv5, so it never changes between releases; the Implementation Version Name
(0002,0013) carries the release.
"""

from __future__ import annotations

import uuid

from radguard import __version__

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "RADGUARD_NAMESPACE",
    "derive_uid",
]

RADGUARD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:radguard:dicom")
"""The UUIDv5 namespace of every UID RadGuard derives."""

IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(RADGUARD_NAMESPACE, 'implementation-class').int}"
"""(0002,0012) Implementation Class UID of files and associations RadGuard creates."""

IMPLEMENTATION_VERSION_NAME = f"RADGUARD_{__version__}"[:16]
"""(0002,0013) Implementation Version Name (SH, at most 16 characters)."""


def derive_uid(*parts: str) -> str:
    """A deterministic ``2.25`` UID from ``parts`` (e.g. a package id and an original UID).

    The same parts always give the same UID, so an interrupted job that re-derives UIDs never
    creates a second copy of an instance (DESIGN invariant 1: imports never double-store).
    """
    return f"2.25.{uuid.uuid5(RADGUARD_NAMESPACE, chr(0x1F).join(parts)).int}"
