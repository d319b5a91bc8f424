"""RadGuard's exception tree: one root, one base per subsystem.

Every error carries the object it concerns and, where there is one, the remedy an operator can apply,
so that the faces (CLI, web) can print a message that says what happened, to what, and what to do next.
Third-party exceptions are translated at the boundary (``raise ReadError(...) from exc``).

::

    RadGuardError
     ├── ConfigError              bad setting, config file or environment variable
     ├── StoreError               database unreachable, migration failed
     ├── DicomIOError             problems of the bounded reader (dicomio/)
     │    ├── NotDicomError       the bytes are not a PS3.10 file (no DICM, no recognisable data set)
     │    ├── LimitExceeded       a configured bound (size, depth, count, ratio, time) was crossed
     │    └── MalformedDicom      the structure cannot be walked any further
     ├── AuditError               audit message could not be built, validated or delivered
     │    └── AuditSchemaError    the XML does not conform to PS3.15 A.5.1
     ├── MediaError               media subsystem (scan, sanitise, import, export)
     │    ├── MediumUnreadable    the folder or ISO image cannot be opened at all
     │    ├── PackageRefused      a custody package failed signature or hash verification
     │    └── ImportFailed        a destination refused or went away during an import
     ├── CryptoError              keys, signatures, CMS envelopes
     ├── DeidError                de-identification
     ├── AssessError              security assessment
     └── InventoryError           inventory and risk register
"""

from __future__ import annotations

__all__ = [
    "AssessError",
    "AuditError",
    "AuditSchemaError",
    "ConfigError",
    "CryptoError",
    "DeidError",
    "DicomIOError",
    "ImportFailed",
    "InventoryError",
    "LimitExceeded",
    "MalformedDicom",
    "MediaError",
    "MediumUnreadable",
    "NotDicomError",
    "PackageRefused",
    "RadGuardError",
    "StoreError",
]


class RadGuardError(Exception):
    """Root of every error RadGuard raises on purpose.

    Parameters
    ----------
    message:
        What happened, in one sentence an operator understands.
    subject:
        The object concerned (a path, an AE title, a URL...), or ``None``.
    remedy:
        What to do next, or ``None`` when there is nothing sensible to suggest.
    """

    def __init__(self, message: str, *, subject: str | None = None, remedy: str | None = None):
        super().__init__(message)
        self.message = message
        self.subject = subject
        self.remedy = remedy

    def __str__(self) -> str:
        parts = [f"{self.subject}: {self.message}" if self.subject else self.message]
        if self.remedy:
            parts.append(f"Remedy: {self.remedy}")
        return " ".join(parts)


class ConfigError(RadGuardError):
    """A setting, config file or environment variable is invalid."""


class StoreError(RadGuardError):
    """The database could not be opened, migrated or written."""


class DicomIOError(RadGuardError):
    """Base of the bounded reader's errors; ``offset`` is the byte offset where it stopped."""

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        remedy: str | None = None,
        offset: int | None = None,
    ):
        super().__init__(message, subject=subject, remedy=remedy)
        self.offset = offset


class NotDicomError(DicomIOError):
    """The bytes are not a DICOM PS3.10 file."""


class LimitExceeded(DicomIOError):
    """A configured bound on untrusted input was crossed; ``limit`` names it."""

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        subject: str | None = None,
        offset: int | None = None,
    ):
        super().__init__(
            message,
            subject=subject,
            offset=offset,
            remedy=f"raise the '{limit}' limit only if the file's origin is trusted",
        )
        self.limit = limit


class MalformedDicom(DicomIOError):
    """The data set's structure cannot be walked any further."""


class AuditError(RadGuardError):
    """An audit message could not be built, validated or delivered."""


class AuditSchemaError(AuditError):
    """An audit message does not conform to the PS3.15 A.5.1 schema."""


class MediaError(RadGuardError):
    """Base of the media subsystem's errors."""


class MediumUnreadable(MediaError):
    """The medium (folder, mount point or ISO image) cannot be opened."""


class PackageRefused(MediaError):
    """A custody package failed verification; nothing was sent."""


class ImportFailed(MediaError):
    """A destination refused or went away during an import."""


class CryptoError(RadGuardError):
    """Keys, signatures or CMS envelopes could not be created or verified."""


class DeidError(RadGuardError):
    """De-identification failed for a file or a configuration."""


class AssessError(RadGuardError):
    """A security assessment could not be configured or run."""


class InventoryError(RadGuardError):
    """The inventory or risk register could not be read or updated."""
