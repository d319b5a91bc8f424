"""Signing and checking the manifest with a station's Ed25519 key (RFC 8032).

The signature covers the exact bytes of ``manifest.json`` (canonical JSON). ``manifest.sig`` is a
small JSON object naming the algorithm and the key id; the key itself is never taken from the package:
it must be in the verifier's trust store (:class:`radguard.keys.TrustStore`).
"""

from __future__ import annotations

import base64
import binascii
import json

from radguard.keys import StationKey, TrustStore, verify
from radguard.keys.errors import KeyNotTrusted
from radguard.media.custody.errors import PackageProblem
from radguard.media.custody.manifest import canonical_json
from radguard.media.custody.package import SIGNATURE

__all__ = ["check_signature", "sign_manifest"]

ALGORITHM = "Ed25519"


def sign_manifest(manifest: bytes, key: StationKey) -> bytes:
    """The ``manifest.sig`` bytes for ``manifest`` signed by ``key``."""
    return canonical_json({"algorithm": ALGORITHM, "key_id": key.key_id,
                           "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
                           "signed": "manifest.json"}) + b"\n"


def check_signature(manifest: bytes, sig: bytes, trust: TrustStore
                    ) -> tuple[str | None, PackageProblem | None]:
    """Check ``sig`` over ``manifest``; returns (key id, None) or (key id or None, the problem)."""
    try:
        d = json.loads(sig[:4096].decode("utf-8"))
        kid, alg = str(d["key_id"]), str(d["algorithm"])
        raw = base64.b64decode(str(d["signature"]), validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error):
        return None, PackageProblem(SIGNATURE, "unsigned", "signature file is not valid")
    if alg != ALGORITHM:
        return kid, PackageProblem(SIGNATURE, "unsigned", f"unsupported algorithm {alg!r}")
    try:
        key = trust.get(kid)
    except KeyNotTrusted:
        return kid, PackageProblem(SIGNATURE, "unknown-key",
                                   f"signed by key {kid}, which this station does not trust")
    if not verify(key.public_raw, raw, manifest):
        return kid, PackageProblem("manifest.json", "bad-signature",
                                   f"signature by {kid} ({key.station}) does not match: the "
                                   "manifest was altered or re-signed")
    return kid, None
