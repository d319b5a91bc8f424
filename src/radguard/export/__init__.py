"""export: encrypted IHE PDI media (PS3.15 Annex D.1 Basic DICOM Media Security Profile).

``export_media`` writes a folder or ISO 9660 image(s) whose DICOM files and DICOMDIR are CMS
EnvelopedData (AES-256-CBC; RSA-OAEP and/or RFC 3211 password recipients) with a signed manifest of
SHA-256 digests; ``open_export`` checks, decrypts and writes a plain PDI folder.
"""

from __future__ import annotations

from radguard.export.cms import CertificateRecipient, Recipients, envelope
from radguard.export.cms_open import Opener, open_envelope
from radguard.export.errors import (
    DoesNotFit,
    EnvelopeError,
    ExportError,
    MissingFile,
    NotAnExportMedium,
    NothingToExport,
    OpenFailed,
    TamperedFile,
    TargetExists,
    WeakPassword,
    WrongKey,
    WrongPassword,
)
from radguard.export.interface import (
    ExportOptions,
    ExportResult,
    MediumResult,
    OpenOptions,
    OpenResult,
)
from radguard.export.passwords import check_password, generate_passphrase
from radguard.export.reader import open_export
from radguard.export.writer import export_media

__all__ = [
    "CertificateRecipient",
    "DoesNotFit",
    "EnvelopeError",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "MediumResult",
    "MissingFile",
    "NotAnExportMedium",
    "NothingToExport",
    "OpenFailed",
    "OpenOptions",
    "OpenResult",
    "Opener",
    "Recipients",
    "TamperedFile",
    "TargetExists",
    "WeakPassword",
    "WrongKey",
    "WrongPassword",
    "check_password",
    "envelope",
    "export_media",
    "generate_passphrase",
    "open_envelope",
    "open_export",
]
