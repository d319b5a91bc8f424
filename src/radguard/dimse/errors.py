"""Errors of DIMSE associations (a refusal of one operation is a status, not an error)."""

from __future__ import annotations

from radguard.errors import RadGuardError

__all__ = ["AssociationFailed", "DimseError", "TlsConfigError"]


class DimseError(RadGuardError):
    """Base of dimse/ errors."""


class AssociationFailed(DimseError):
    """The association was rejected, aborted or could not be opened (PS3.8 7.1)."""


class TlsConfigError(DimseError):
    """CA, certificate or key files for a TLS association cannot be loaded."""
