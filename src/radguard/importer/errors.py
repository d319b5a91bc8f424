"""Errors of the importer (subclasses of :class:`radguard.errors.ImportFailed`)."""

from __future__ import annotations

from radguard.errors import ImportFailed

__all__ = ["DestinationInvalid", "DestinationUnavailable", "ReconciliationNeeded"]


class DestinationInvalid(ImportFailed):
    """The ``--to`` destination cannot be parsed or is not allowed (plain HTTP off loopback)."""


class DestinationUnavailable(ImportFailed):
    """The destination refused the connection or went away; the journal keeps what was done."""


class ReconciliationNeeded(ImportFailed):
    """An outside patient has no local identifier (IHE Import Reconciliation Workflow)."""
