"""The signed manifest of a medium: ``MANIFEST.JSN`` and its Ed25519 signature ``MANIFEST.SIG``.

The manifest lists every other file of the medium with its size and the SHA-256 of its stored bytes
(the CMS envelope on an encrypted medium) and, for an enveloped file, the SHA-256 and size of the
content the envelope holds. ``media open`` checks the signature, then every stored digest before
decrypting, then every content digest after (PS3.15 D.1 asks for integrity besides confidentiality;
CBC alone has none).

Nothing in it identifies a patient: paths are opaque 8.3 file IDs. A content digest reveals only
whether a file an attacker *already holds* is on the medium (a confirmation, not a disclosure).

JSON is canonical (sorted keys, no spaces, ASCII) so the signed bytes are reproducible;
``MANIFEST.SIG`` is ``ed25519 <base64 signature>`` plus a newline.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, fields
from typing import Any

from radguard.export.errors import NotAnExportMedium, TamperedFile
from radguard.export.signing import Signer, key_id, verify

__all__ = ["MANIFEST", "MAX_MANIFEST", "SIGNATURE", "Entry", "Manifest", "check_file_id"]

MANIFEST = "MANIFEST.JSN"
SIGNATURE = "MANIFEST.SIG"
FORMAT = "radguard-export-manifest"
MAX_MANIFEST = 64 * 1024 * 1024
_COMPONENT = re.compile(r"[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?")


def check_file_id(path: str) -> str:
    """Validate a relative file ID of the medium: 1-8 components of ``A-Z 0-9 _`` (8.3), no
    ``..``, not absolute (PS3.10 8.5, PS3.12; CVE-2022-2119 style traversal)."""
    parts = path.split("/")
    if not 1 <= len(parts) <= 8 or not all(_COMPONENT.fullmatch(p) for p in parts):
        raise TamperedFile("the manifest names a file outside the 8.3 file ID rules",
                           subject=repr(path)[:80], remedy="do not trust this medium")
    return path


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    size: int
    sha256: str
    enveloped: bool
    content_size: int | None = None
    content_sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    export_id: str
    created: str
    medium_index: int
    medium_count: int
    encrypted: bool
    recipients: dict[str, Any]
    signer_key_id: str
    signer_public: str  # base64 of the raw Ed25519 public key
    entries: tuple[Entry, ...]

    def to_json(self) -> bytes:
        # by hand rather than dataclasses.asdict (a deep copy per entry: thousands per medium)
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["format"] = FORMAT
        data["version"] = 1
        names = [f.name for f in fields(Entry)]
        data["entries"] = [dict(zip(names, (getattr(e, n) for n in names), strict=True))
                           for e in self.entries]
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    def signed(self, signer: Signer) -> tuple[bytes, bytes]:
        """(MANIFEST.JSN bytes, MANIFEST.SIG bytes)."""
        body = self.to_json()
        return body, b"ed25519 " + base64.b64encode(signer.sign(body)) + b"\n"

    @classmethod
    def verified(cls, body: bytes, signature: bytes) -> Manifest:
        """Parse ``body`` after checking ``signature`` against the key the manifest names.

        Raises
        ------
        TamperedFile
            Bad signature, or a manifest whose structure or paths are not what RadGuard writes.
        """
        remedy = "the medium was altered or damaged; ask the sender for a new one"
        try:
            data = json.loads(body)
            raw = base64.b64decode(data["signer_public"], validate=True)
            kind, _, sig_b64 = signature.decode("ascii").strip().partition(" ")
            sig = base64.b64decode(sig_b64, validate=True)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error) as exc:
            raise TamperedFile("the manifest or its signature cannot be read", subject=MANIFEST,
                               remedy=remedy) from exc
        if data.get("format") != FORMAT or kind != "ed25519":
            raise NotAnExportMedium("the manifest is not a RadGuard export manifest",
                                    subject=MANIFEST)
        if key_id(raw) != data.get("signer_key_id") or not verify(raw, sig, body):
            raise TamperedFile("the manifest signature does not verify", subject=SIGNATURE,
                               remedy=remedy)
        try:
            entries = tuple(Entry(**e) for e in data["entries"])
            for e in entries:
                check_file_id(e.path)
            return cls(data["export_id"], data["created"], int(data["medium_index"]),
                       int(data["medium_count"]), bool(data["encrypted"]),
                       dict(data["recipients"]), data["signer_key_id"], data["signer_public"],
                       entries)
        except (KeyError, TypeError, ValueError) as exc:
            raise TamperedFile("the manifest has an unexpected structure", subject=MANIFEST,
                               remedy=remedy) from exc
