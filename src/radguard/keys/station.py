"""The station's Ed25519 signing key (RFC 8032), generated on first use.

The key lives in ``HOME/keys/station-ed25519.pem`` (PKCS#8 PEM, unencrypted, mode 0600 in a 0700
folder); it signs custody manifests (:mod:`radguard.media.custody`). The public half is written beside
it as ``station-ed25519.pub`` in RadGuard's one-line public key format::

    radguard-ed25519 <base64 of the 32-byte public key> <station name>

A key id is ``ed25519:`` plus the first 32 hex digits of the SHA-256 of the raw public key. Creating
the key is race-free (the first writer wins; the others load its key). Loading refuses a private key
file that group or others can read, and never logs or prints the private key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from radguard.keys.errors import KeyFileUnsafe, KeyStoreError
from radguard.keys.fsio import atomic_write, ensure_private_dir

__all__ = ["PUBLIC_PREFIX", "StationKey", "key_id", "keys_dir", "load_station_key",
           "public_line", "verify"]

PUBLIC_PREFIX = "radguard-ed25519"
PRIVATE_NAME = "station-ed25519.pem"
PUBLIC_NAME = "station-ed25519.pub"


def keys_dir(home: Path) -> Path:
    """``HOME/keys``: the station key and the ``trusted/`` folder."""
    return home / "keys"


def key_id(public_raw: bytes) -> str:
    """Stable identifier of a public key: ``ed25519:`` + 32 hex digits of its SHA-256."""
    return "ed25519:" + hashlib.sha256(public_raw).hexdigest()[:32]


def public_line(public_raw: bytes, station: str) -> str:
    """The one-line public key text (``radguard-ed25519 BASE64 STATION``)."""
    name = " ".join(station.split()) or "unnamed"
    return f"{PUBLIC_PREFIX} {base64.b64encode(public_raw).decode('ascii')} {name}\n"


def verify(public_raw: bytes, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``data`` by ``public_raw``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class StationKey:
    """This station's signing key; ``repr`` never shows the private half."""

    key_id: str
    public_raw: bytes
    station: str
    path: Path
    _private: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"StationKey(key_id={self.key_id!r}, station={self.station!r})"

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``data``."""
        return self._private.sign(data)

    @property
    def public_text(self) -> str:
        return public_line(self.public_raw, self.station)


def _raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


def _check_safe(path: Path) -> None:
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileUnsafe("the station key is not a regular file", subject=str(path),
                            remedy="remove the link or special file; RadGuard will make a new key")
    if st.st_mode & 0o077:
        raise KeyFileUnsafe(f"the station key is readable by others (mode {st.st_mode & 0o777:o})",
                            subject=str(path),
                            remedy=f"run 'chmod 600 {path}' and consider the key exposed: make a new "
                            "one and have the other stations trust it instead")


def load_station_key(home: Path, station: str, *, create: bool = True) -> StationKey:
    """Load this station's key, creating it on first use when ``create`` is true.

    Raises
    ------
    KeyFileUnsafe
        The private key file is readable by group or others, or is not a regular file.
    KeyStoreError
        The key cannot be created or parsed, or does not exist and ``create`` is false.
    """
    folder = keys_dir(home)
    path = folder / PRIVATE_NAME
    if not path.exists():
        if not create:
            raise KeyStoreError("this station has no signing key yet", subject=str(path),
                                remedy="run 'radguard keys show' (or sanitise a medium) to create it")
        try:
            ensure_private_dir(folder)
            new = Ed25519PrivateKey.generate()
            pem = new.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            atomic_write(path, pem, mode=0o600, exclusive=True)
        except OSError as exc:
            raise KeyStoreError(f"cannot create the station key: {exc.strerror}", subject=str(path),
                                remedy="check that the RadGuard home folder is writable") from exc
    _check_safe(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read the station key: {exc.strerror}", subject=str(path),
                            remedy="check the permissions of the RadGuard home folder") from exc
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyStoreError("the station key file cannot be read as an unencrypted PKCS#8 key",
                            subject=str(path), remedy="restore it from backup or move it away to "
                            "create a new key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyStoreError("the station key is not an Ed25519 key", subject=str(path),
                            remedy="move it away; RadGuard will create an Ed25519 key")
    raw = _raw_public(private)
    pub = folder / PUBLIC_NAME
    line = public_line(raw, station)
    try:
        if not pub.exists() or pub.read_text(encoding="ascii", errors="replace") != line:
            atomic_write(pub, line.encode("ascii"), mode=0o644)
    except OSError:
        pass  # the public copy is a convenience; the private key is what matters
    return StationKey(key_id(raw), raw, station, path, private)
