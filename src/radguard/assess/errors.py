"""Errors of the assessment: bad targets, scope, credentials (subclasses of :class:`AssessError`).

::

    AssessError
     ├── TargetError        a target cannot be parsed or read
     └── CredentialsError   the credentials file is missing, unreadable or malformed
"""

from __future__ import annotations

from radguard.errors import AssessError

__all__ = ["CredentialsError", "TargetError"]


class TargetError(AssessError):
    """A target (``host:port[/AET]``, URL, file of targets, store selection) is invalid."""


class CredentialsError(AssessError):
    """The ``--credentials`` file cannot be used."""
