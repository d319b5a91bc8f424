"""keys: this station's Ed25519 signing key and the trust store of other stations' public keys.

Custody packages (:mod:`radguard.media.custody`) are signed with :class:`StationKey` on the offline
media station and verified against :class:`TrustStore` on the networked side.
"""

from __future__ import annotations

from radguard.keys.errors import KeyFileUnsafe, KeyNotTrusted, KeyStoreError
from radguard.keys.station import StationKey, key_id, load_station_key, public_line, verify
from radguard.keys.trust import TrustedKey, TrustStore, parse_public_key

__all__ = [
    "KeyFileUnsafe",
    "KeyNotTrusted",
    "KeyStoreError",
    "StationKey",
    "TrustStore",
    "TrustedKey",
    "key_id",
    "load_station_key",
    "parse_public_key",
    "public_line",
    "verify",
]
