"""Errors of station keys and the trust store (subclasses of :class:`radguard.errors.CryptoError`)."""

from __future__ import annotations

from radguard.errors import CryptoError

__all__ = ["KeyFileUnsafe", "KeyNotTrusted", "KeyStoreError"]


class KeyStoreError(CryptoError):
    """A key file cannot be created, read or parsed."""


class KeyFileUnsafe(KeyStoreError):
    """The station's private key file is readable by other users (or is not a regular file)."""


class KeyNotTrusted(CryptoError):
    """A signature was made by a key that is not in the trust store."""
