"""Password recipients (RFC 3211, RFC 5652 6.2.4): PBKDF2 key derivation and the PWRI-KEK wrap.

The key-encryption key (KEK) is PBKDF2 (RFC 8018 5.2) over the ASCII password with HMAC-SHA-256; the
content-encryption key is wrapped with the ``id-alg-PWRI-KEK`` algorithm of RFC 3211 2.3 under
AES-256-CBC: ``LEN || check(3) || CEK || padding`` to at least two cipher blocks, CBC-encrypted twice,
the second time with the last block of the first pass as IV. The check bytes (the complement of the
first three CEK bytes) let a reader tell a wrong password from a damaged file (RFC 3211 2.3.2).

OpenSSL implements the same (``openssl cms -pwri_password``), which the tests use as the reference.
One export derives its KEK once (one salt per medium, a fresh wrap IV and CEK per file): PBKDF2 is
deliberately slow, and the per-file salt would add nothing against an attacker who has the medium.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from asn1crypto import algos, cms, core  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from radguard.export.der import tlv
from radguard.export.errors import EnvelopeError, WrongPassword

__all__ = ["PWRI_KEK", "PasswordKek", "PasswordRecipientInfo", "kek_unwrap", "kek_wrap"]

PWRI_KEK = "1.2.840.113549.1.9.16.3.9"
MAX_ITERATIONS = 10_000_000
"""A hostile medium could ask the reader for any PBKDF2 work; more than this is refused."""

_PWRI_KEK_OID = bytes.fromhex("060b2a864886f70d0109100309")
_AES256_CBC_OID = bytes.fromhex("060960864801650304012a")
_PRF: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512, "sha1": hashes.SHA1}


class PwriKeyEncryptionAlgorithm(core.Sequence):  # type: ignore[misc]
    """``id-alg-PWRI-KEK`` with, as its parameter, the KEK cipher's AlgorithmIdentifier."""

    _fields = [  # noqa: RUF012 - asn1crypto declares fields as class data
        ("algorithm", core.ObjectIdentifier),
        ("parameters", algos.EncryptionAlgorithm, {"optional": True}),
    ]


class PasswordRecipientInfo(core.Sequence):  # type: ignore[misc]
    """RFC 5652 6.2.4 ``PasswordRecipientInfo`` (asn1crypto lacks PWRI-KEK in its OID map)."""

    _fields = [  # noqa: RUF012
        ("version", cms.CMSVersion),
        ("key_derivation_algorithm", algos.KdfAlgorithm, {"implicit": 0}),
        ("key_encryption_algorithm", PwriKeyEncryptionAlgorithm),
        ("encrypted_key", core.OctetString),
    ]


@dataclass(frozen=True, slots=True)
class PasswordKek:
    """A derived KEK and the PBKDF2 parameters that produced it."""

    key: bytes
    salt: bytes
    iterations: int
    prf: str = "sha256"

    @classmethod
    def derive(cls, password: str, *, salt: bytes | None = None, iterations: int = 600_000,
               prf: str = "sha256") -> PasswordKek:
        """PBKDF2-HMAC (RFC 8018 5.2) to a 32-byte AES-256 key; passwords are ASCII (PS3.15 D.1)."""
        if prf not in _PRF:
            raise EnvelopeError(f"PBKDF2 pseudo-random function {prf!r} is not supported")
        if not 1 <= iterations <= MAX_ITERATIONS:
            raise EnvelopeError(f"PBKDF2 iteration count {iterations} is outside 1..{MAX_ITERATIONS}",
                                remedy="the medium was not written by a sane encoder")
        salt = salt if salt is not None else os.urandom(16)
        kdf = PBKDF2HMAC(algorithm=_PRF[prf](), length=32, salt=salt, iterations=iterations)
        return cls(kdf.derive(password.encode("ascii")), salt, iterations, prf)

    def recipient_info(self, cek: bytes) -> bytes:
        """DER of the ``[3] IMPLICIT PasswordRecipientInfo`` choice wrapping ``cek``.

        The key derivation part is the same for every file of an export, so it is encoded once
        (asn1crypto) and the per-file IV and wrapped key are framed with :func:`tlv`.
        """
        iv = os.urandom(16)
        kea = tlv(0x30, _PWRI_KEK_OID + tlv(0x30, _AES256_CBC_OID + tlv(0x04, iv)))
        body = (b"\x02\x01\x00" + _kdf_der(self.salt, self.iterations, self.prf) + kea
                + tlv(0x04, kek_wrap(self.key, iv, cek)))
        return tlv(0xA3, body)


@functools.lru_cache(maxsize=8)
def _kdf_der(salt: bytes, iterations: int, prf: str) -> bytes:
    """``[0] IMPLICIT KeyDerivationAlgorithmIdentifier`` (PBKDF2 with salt, count, PRF)."""
    params = {"salt": algos.Pbkdf2Salt(name="specified", value=salt),
              "iteration_count": iterations, "prf": {"algorithm": prf}}
    der = algos.KdfAlgorithm({"algorithm": "pbkdf2", "parameters": params}).dump()
    assert isinstance(der, bytes)
    return b"\xa0" + der[1:]


def _cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


def kek_wrap(kek: bytes, iv: bytes, cek: bytes) -> bytes:
    """RFC 3211 2.3.1: format, pad to >= 2 blocks, encrypt twice in CBC mode."""
    if not 3 <= len(cek) < 256:
        raise EnvelopeError("content-encryption key length out of range")
    block = 16
    body = bytes((len(cek), cek[0] ^ 0xFF, cek[1] ^ 0xFF, cek[2] ^ 0xFF)) + cek
    padded_len = max(2 * block, -(-len(body) // block) * block)
    body += os.urandom(padded_len - len(body))
    # the second pass's IV is the last block of the first: one CBC chain over both passes
    ctx = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    first = ctx.update(body)
    return ctx.update(first)


def kek_unwrap(kek: bytes, iv: bytes, wrapped: bytes) -> bytes:
    """RFC 3211 2.3.2; raises :class:`WrongPassword` when the check bytes disagree."""
    block = 16
    if len(wrapped) < 2 * block or len(wrapped) % block:
        raise EnvelopeError("PWRI encrypted key has an impossible length")
    # Recover the last block of the first pass: decrypt the last block with the one before as IV.
    last = _cbc(kek, wrapped[-2 * block:-block], wrapped[-block:], encrypt=False)
    first = _cbc(kek, last, wrapped, encrypt=False)
    body = _cbc(kek, iv, first, encrypt=False)
    n = body[0]
    if n < 3 or n > len(body) - 4 or any((body[1 + i] ^ body[4 + i]) != 0xFF for i in range(3)):
        raise WrongPassword("the password does not open this file",
                            remedy="check the password (it is case-sensitive) and try again")
    return body[4:4 + n]
