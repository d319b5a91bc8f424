"""Options and results of the export subsystem (immutable values; rendering is the CLI's job)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from radguard.dicomio import ReadLimits
from radguard.export.cms import CertificateRecipient, KeyTransport
from radguard.export.selection import Skipped

__all__ = ["ExportOptions", "ExportResult", "MediumResult", "OpenOptions", "OpenResult"]


@dataclass(frozen=True)
class ExportOptions:
    """How to export.

    ``certificates`` and/or ``password`` make an encrypted medium; ``encrypt=False`` (and neither)
    an unencrypted one, which the caller must ask for explicitly. ``media`` is ``cd``, ``dvd`` or
    ``usb`` (capacity and audit media type); ``iso`` writes ISO 9660 images instead of folders.
    ``deid`` names de-identification options or presets of :mod:`radguard.deid` (empty: none);
    ``deid_key`` keys its pseudonyms (random per export when ``None``).
    """

    certificates: tuple[CertificateRecipient, ...] = ()
    password: str | None = None
    encrypt: bool = True
    iso: bool = False
    media: str = "usb"
    deid: tuple[str, ...] = ()
    deid_key: bytes | None = None
    index_html: bool = True
    transport: KeyTransport = "rsa-oaep"
    pbkdf2_iterations: int | None = None
    check_strength: bool = True
    label: str = "RADGUARD_EXPORT"
    limits: ReadLimits = field(default_factory=ReadLimits)

    def __repr__(self) -> str:  # never show the password
        return (f"ExportOptions(certificates={len(self.certificates)}, "
                f"password={'set' if self.password else None}, iso={self.iso}, "
                f"media={self.media!r}, deid={self.deid!r})")


@dataclass(frozen=True, slots=True)
class MediumResult:
    """One written medium (folder or ISO image)."""

    path: str
    index: int
    count: int
    files: int
    studies: int
    bytes: int


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote. No patient identifiers (it is printed and rendered as JSON)."""

    export_id: str
    media: tuple[MediumResult, ...]
    skipped: tuple[Skipped, ...]
    encrypted: bool
    deidentified: bool
    instances: int
    studies: int
    signer_key_id: str
    recipients: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["media"] = [asdict(m) for m in self.media]
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


@dataclass(frozen=True)
class OpenOptions:
    """How to open a medium: ``password`` and/or ``key_pem`` + ``cert_pem`` (bytes of PEM)."""

    password: str | None = None
    key_pem: bytes | None = None
    cert_pem: bytes | None = None
    require_trusted: bool = False

    def __repr__(self) -> str:
        return (f"OpenOptions(password={'set' if self.password else None}, "
                f"key={'set' if self.key_pem else None})")


@dataclass(frozen=True)
class OpenResult:
    """A medium opened into a plain PDI folder."""

    path: str
    export_id: str
    medium_index: int
    medium_count: int
    files: int
    bytes: int
    encrypted: bool
    signer_key_id: str
    signer_trusted: bool | None
    ignored: tuple[str, ...]  # files on the medium the manifest does not list (not copied)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
