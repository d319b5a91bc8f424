"""Errors of the audit record repository (subclasses of :class:`radguard.errors.AuditError`).

::

    AuditError
     └── RepositoryError          the repository cannot receive, store or search
          ├── ReceiverError        a listener cannot be started (address in use, bad TLS files)
          ├── RuleError            a detection rule file is malformed or names an unknown kind
          └── ChainBroken          (raised by callers that demand an intact chain)
"""

from __future__ import annotations

from radguard.errors import AuditError

__all__ = ["ChainBroken", "ReceiverError", "RepositoryError", "RuleError"]


class RepositoryError(AuditError):
    """The audit record repository cannot receive, store, search or alert."""


class ReceiverError(RepositoryError):
    """A syslog listener cannot be started: bad address, port in use, unreadable TLS files."""


class RuleError(RepositoryError):
    """A detection rule (YAML) is malformed, or a rule id is unknown."""


class ChainBroken(RepositoryError):
    """The hash chain of stored records does not verify; ``subject`` names the first bad record."""
