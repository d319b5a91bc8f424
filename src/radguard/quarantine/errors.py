"""Errors of the quarantine store (subclasses of :class:`radguard.errors.MediaError`)."""

from __future__ import annotations

from radguard.errors import MediaError

__all__ = ["QuarantineError", "QuarantineItemNotFound"]


class QuarantineError(MediaError):
    """The quarantine store cannot be read or written, or an object is damaged."""


class QuarantineItemNotFound(QuarantineError):
    """No quarantined item matches the given hash or prefix."""
