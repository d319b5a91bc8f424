"""Errors of the export subsystem (encrypted PDI media), subclasses of the foundation's bases.

::

    MediaError
     ├── ExportError            an export could not be planned or written
     │    ├── NothingToExport   no input file was a usable DICOM file
     │    ├── DoesNotFit        one file is larger than the chosen medium
     │    └── TargetExists      the output (folder, image, FOLDER of ``open``) already exists
     └── OpenFailed             ``media open`` could not produce the plain folder
          ├── NotAnExportMedium no signed manifest at the root of the medium
          ├── MissingFile       a file the manifest lists is not on the medium
          └── TamperedFile      a file, the manifest or its signature does not match
    CryptoError
     ├── WeakPassword           the password fails the strength policy
     ├── WrongPassword          no password recipient of the file opens with this password
     ├── WrongKey               no certificate recipient matches, or the private key does not open it
     └── EnvelopeError          the CMS structure is not what PS3.10 7.4 / RFC 5652 describe
"""

from __future__ import annotations

from radguard.errors import CryptoError, MediaError

__all__ = [
    "DoesNotFit",
    "EnvelopeError",
    "ExportError",
    "MissingFile",
    "NotAnExportMedium",
    "NothingToExport",
    "OpenFailed",
    "TamperedFile",
    "TargetExists",
    "WeakPassword",
    "WrongKey",
    "WrongPassword",
]


class ExportError(MediaError):
    """An export could not be planned or written; nothing was left at the target."""


class NothingToExport(ExportError):
    """None of the inputs is a DICOM file that passed the bounded reader."""


class DoesNotFit(ExportError):
    """A single file is larger than the capacity of the chosen medium."""


class TargetExists(ExportError):
    """The output path exists; RadGuard never overwrites."""


class OpenFailed(MediaError):
    """``media open`` could not produce the plain PDI folder; nothing was left at the target."""


class NotAnExportMedium(OpenFailed):
    """The medium has no RadGuard manifest (MANIFEST.JSN / MANIFEST.SIG) at its root."""


class MissingFile(OpenFailed):
    """Files listed in the signed manifest are missing from the medium."""


class TamperedFile(OpenFailed):
    """A file's digest, the manifest or its signature does not match."""


class WeakPassword(CryptoError):
    """The password fails the strength policy (data/export/policy.json)."""


class WrongPassword(CryptoError):
    """The password does not open the file's password recipient (RFC 3211 check bytes)."""


class WrongKey(CryptoError):
    """No certificate recipient matches the given certificate, or its private key fails."""


class EnvelopeError(CryptoError):
    """The bytes are not a CMS EnvelopedData this reader supports (RFC 5652 6, PS3.10 7.4)."""
