"""Errors of the de-identification subsystem (all subclasses of :class:`radguard.errors.DeidError`).

::

    DeidError
     ├── DeidOptionError      unknown option or preset, conflicting options
     ├── DeidKeyError         project key missing, too short or unreadable
     ├── DeidTableError       a versioned table (Table E.1-1, rules) cannot be read
     ├── MappingFileError     the pseudonym mapping file is malformed
     └── EncryptionError      the Encrypted Attributes Sequence could not be built (certificate)
"""

from __future__ import annotations

from radguard.errors import DeidError

__all__ = [
    "DeidError",
    "DeidKeyError",
    "DeidOptionError",
    "DeidTableError",
    "EncryptionError",
    "MappingFileError",
]


class DeidOptionError(DeidError):
    """An option or preset name is unknown, or two options exclude each other."""


class DeidKeyError(DeidError):
    """The project key for keyed pseudonyms is missing or unusable."""


class DeidTableError(DeidError):
    """A de-identification table or rule file cannot be read."""


class MappingFileError(DeidError):
    """The pseudonym mapping file cannot be read or has a bad row."""


class EncryptionError(DeidError):
    """The recipient certificate cannot be used for the Encrypted Attributes Sequence."""
