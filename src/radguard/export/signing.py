"""Signing the manifest with this station's Ed25519 key (RFC 8032).

When :mod:`radguard.keys` is installed (the station key and trust store of the custody flow) it is
used: the same key signs custody packages and export manifests, and ``media open`` reports whether
the signer is in this station's trust store. Without it, a minimal fallback keeps a key of the same
format in the same place (``HOME/keys/station-ed25519.pem``, PKCS#8 PEM, 0600 in a 0700 folder), so
that :mod:`radguard.keys` adopts it later. The private key is never logged or printed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from radguard.errors import CryptoError

__all__ = ["Signer", "is_trusted", "key_id", "load_signer", "verify"]


def key_id(public_raw: bytes) -> str:
    """``ed25519:`` + 32 hex digits of the SHA-256 of the raw public key (as radguard.keys)."""
    return "ed25519:" + hashlib.sha256(public_raw).hexdigest()[:32]


def verify(public_raw: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    """What the export needs of a station key: its public half, id and a ``sign`` function."""

    public_raw: bytes
    key_id: str
    _private: Ed25519PrivateKey | None = None
    _station_key: object | None = None

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"

    def sign(self, data: bytes) -> bytes:
        if self._station_key is not None:
            sig = self._station_key.sign(data)  # type: ignore[attr-defined]
            assert isinstance(sig, bytes)
            return sig
        assert self._private is not None
        return self._private.sign(data)


def _fallback(home: Path) -> Signer:
    folder = home / "keys"
    path = folder / "station-ed25519.pem"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            tmp = folder / f".station-ed25519.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # first writer wins
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        if os.lstat(path).st_mode & 0o077:
            raise CryptoError("the station key is readable by others", subject=str(path),
                              remedy=f"run 'chmod 600 {path}' and consider making a new key")
        private = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise CryptoError(f"cannot load or create the station signing key: {exc}",
                          subject=str(path), remedy="check the RadGuard home folder") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise CryptoError("the station key is not an Ed25519 key", subject=str(path))
    raw = private.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    return Signer(raw, key_id(raw), _private=private)


def load_signer(home: Path, station: str) -> Signer:
    """This station's signer: :mod:`radguard.keys` if importable, else the fallback.

    Raises
    ------
    CryptoError
        The key cannot be created or loaded, or its file is unsafe.
    """
    try:
        from radguard.keys import load_station_key
    except ModuleNotFoundError:
        return _fallback(home)
    key = load_station_key(home, station)
    return Signer(key.public_raw, key.key_id, _station_key=key)


def is_trusted(home: Path, station: str, kid: str) -> bool | None:
    """Whether this station trusts ``kid`` (its trust store); ``None`` if there is no store."""
    try:
        from radguard.keys import KeyNotTrusted, TrustStore
    except ModuleNotFoundError:
        return None
    try:
        TrustStore(home, station).get(kid)
    except KeyNotTrusted:
        return False
    return True
