"""The trust store: public keys of the stations whose custody packages this station accepts.

``HOME/keys/trusted/<key id>.pub`` holds one key per file in the one-line format of
:mod:`radguard.keys.station` (``radguard-ed25519 BASE64 STATION``); a PEM SubjectPublicKeyInfo file
is accepted by :meth:`TrustStore.trust` and stored in the one-line form. The station's own key is
always trusted (departments that run both halves on one machine), and is reported with
``source="own"``.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from radguard.keys.errors import KeyNotTrusted, KeyStoreError
from radguard.keys.fsio import atomic_write, ensure_private_dir
from radguard.keys.station import (
    PRIVATE_NAME,
    PUBLIC_PREFIX,
    key_id,
    keys_dir,
    load_station_key,
    public_line,
)

__all__ = ["TrustStore", "TrustedKey", "parse_public_key"]

MAX_KEY_FILE = 16 * 1024


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key this station accepts signatures from."""

    key_id: str
    public_raw: bytes
    station: str
    source: str  # "own" or "trusted"
    added: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"key_id": self.key_id, "station": self.station, "source": self.source,
                "added": self.added,
                "public_key": base64.b64encode(self.public_raw).decode("ascii")}


def parse_public_key(text: bytes, *, subject: str) -> tuple[bytes, str]:
    """Parse a public key file: returns (raw 32-byte key, station name).

    Raises
    ------
    KeyStoreError
        Not a RadGuard one-line key nor a PEM Ed25519 public key.
    """
    if len(text) > MAX_KEY_FILE:
        raise KeyStoreError("file too large to be a public key", subject=subject,
                            remedy="give the .pub file written by 'radguard keys export'")
    stripped = text.strip()
    if stripped.startswith(b"-----BEGIN PUBLIC KEY-----"):
        try:
            key = serialization.load_pem_public_key(stripped)
        except ValueError:
            key = None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyStoreError("PEM file is not an Ed25519 public key", subject=subject,
                                remedy="export the key with 'radguard keys export' on its station")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return raw, Path(subject).stem
    try:
        parts = stripped.decode("ascii").split(None, 2)
    except UnicodeDecodeError:
        parts = []
    if len(parts) < 2 or parts[0] != PUBLIC_PREFIX:
        raise KeyStoreError(f"not a RadGuard public key (expected a line '{PUBLIC_PREFIX} BASE64 "
                            "STATION')", subject=subject,
                            remedy="give the file written by 'radguard keys export' on the station")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyStoreError("the public key is not 32 bytes of base64", subject=subject,
                            remedy="copy the key file again; it may have been cut or altered")
    return raw, (parts[2].strip() if len(parts) > 2 else "unnamed")


class TrustStore:
    """Trusted station keys under ``HOME/keys/trusted``; see the module docstring."""

    def __init__(self, home: Path, station: str):
        self.home = home
        self.station = station
        self.folder = keys_dir(home) / "trusted"

    def trust(self, path: Path) -> TrustedKey:
        """Add the public key in ``path`` to the trust store (idempotent).

        Raises
        ------
        KeyStoreError
            The file cannot be read or parsed, or the store cannot be written.
        """
        try:
            text = path.read_bytes()[: MAX_KEY_FILE + 1]
        except OSError as exc:
            raise KeyStoreError(f"cannot read the key file: {exc.strerror}", subject=str(path),
                                remedy="check the path") from exc
        raw, station = parse_public_key(text, subject=str(path))
        kid = key_id(raw)
        target = self.folder / f"{kid.replace(':', '-')}.pub"
        try:
            ensure_private_dir(self.folder, 0o755)
            atomic_write(target, public_line(raw, station).encode("ascii"), mode=0o644)
        except OSError as exc:
            raise KeyStoreError(f"cannot write the trust store: {exc.strerror}",
                                subject=str(self.folder),
                                remedy="check that the RadGuard home folder is writable") from exc
        return TrustedKey(kid, raw, station, "trusted", _mtime(target))

    def keys(self) -> list[TrustedKey]:
        """Every trusted key: this station's own (if it exists) first, then the trusted files."""
        found: list[TrustedKey] = []
        if (keys_dir(self.home) / PRIVATE_NAME).exists():
            own = load_station_key(self.home, self.station, create=False)
            found.append(TrustedKey(own.key_id, own.public_raw, own.station, "own"))
        if self.folder.is_dir():
            for entry in sorted(self.folder.glob("*.pub")):
                try:
                    raw, station = parse_public_key(entry.read_bytes(), subject=str(entry))
                except (OSError, KeyStoreError):
                    continue  # a damaged file trusts nothing
                kid = key_id(raw)
                if all(k.key_id != kid for k in found):
                    found.append(TrustedKey(kid, raw, station, "trusted", _mtime(entry)))
        return found

    def get(self, kid: str) -> TrustedKey:
        """The trusted key with id ``kid``.

        Raises
        ------
        KeyNotTrusted
            No trusted key has this id.
        """
        for key in self.keys():
            if key.key_id == kid:
                return key
        raise KeyNotTrusted(f"signed by key {kid}, which this station does not trust",
                            subject=kid, remedy="if the package really comes from your media "
                            "station, run 'radguard keys trust FILE' with that station's exported "
                            "public key, after checking its id by another channel")


def _mtime(path: Path) -> str:
    try:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC).isoformat(timespec="seconds")
    except OSError:
        return ""
