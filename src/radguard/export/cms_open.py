"""Opening CMS EnvelopedData (RFC 5652 6): the recipient's side of PS3.15 D.1 media.

Accepts what RadGuard writes (:mod:`radguard.export.cms`: DER, definite lengths) and what
``openssl cms -encrypt -outform DER`` writes (BER indefinite lengths, constructed OCTET STRINGs),
with AES-128/192/256-CBC content and ``KeyTransRecipientInfo`` (RSA-OAEP or PKCS #1 v1.5) or
``PasswordRecipientInfo`` (RFC 3211) recipients. Every length read is bounded by the caller's
limit (the stored file's size); a hostile medium cannot ask for more PBKDF2 work than
:data:`radguard.export.pwri.MAX_ITERATIONS`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from asn1crypto import algos, cms, core  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from radguard.export.cms import (
    _AES,
    _HASHES,
    CHUNK,
    ID_ENVELOPED,
    MAX_RECIPIENT_INFOS,
    CertificateRecipient,
)
from radguard.export.der import INDEFINITE, Header, read_header, read_value, tlv
from radguard.export.errors import EnvelopeError, WrongKey, WrongPassword
from radguard.export.pwri import PWRI_KEK, PasswordKek, PasswordRecipientInfo, kek_unwrap

__all__ = ["Opener", "open_envelope"]


@dataclass
class Opener:
    """The recipient's means: a password and/or an RSA private key with its certificate.

    PBKDF2 results are cached per (salt, iterations, prf), so a medium written with one salt costs
    one derivation.
    """

    password: str | None = None
    private_key: RSAPrivateKey | None = None
    certificate: CertificateRecipient | None = None
    _keks: dict[tuple[bytes, int, str], bytes] = field(default_factory=dict)

    def _kek(self, salt: bytes, iterations: int, prf: str) -> bytes:
        assert self.password is not None
        k = (salt, iterations, prf)
        if k not in self._keks:
            self._keks[k] = PasswordKek.derive(self.password, salt=salt, iterations=iterations,
                                               prf=prf).key
        return self._keks[k]

    def content_key(self, infos: Sequence[bytes]) -> bytes:
        """The CEK from the first recipient info this opener can use."""
        ktris = [i for i in infos if i[0] == 0x30]
        pwris = [i for i in infos if i[0] == 0xA3]
        if self.private_key is not None and self.certificate is not None:
            for der in ktris:
                cek = self._from_ktri(der)
                if cek is not None:
                    return cek
        if self.password is not None and pwris:
            return self._from_pwri(pwris[0])
        if self.password is not None:
            raise WrongPassword("this file has no password recipient",
                                remedy="open it with --key and --cert of a recipient")
        raise WrongKey("no recipient of this file matches the given certificate",
                       remedy="use the key and certificate the medium was encrypted for")

    def _from_ktri(self, der: bytes) -> bytes | None:
        assert self.certificate is not None and self.private_key is not None
        info = cms.KeyTransRecipientInfo.load(der)
        rid = info["rid"]
        if rid.name == "issuer_and_serial_number":
            if rid.chosen.dump() != self.certificate.issuer_and_serial:
                return None
        else:
            ski = self.certificate.certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier).value.digest
            if bytes(rid.chosen.native) != ski:
                return None
        alg = info["key_encryption_algorithm"]
        try:
            if alg["algorithm"].native == "rsaes_oaep":
                params = alg["parameters"]
                h = _HASHES[params["hash_algorithm"]["algorithm"].native]
                mgf_h = _HASHES[params["mask_gen_algorithm"]["parameters"]["algorithm"].native]
                pad: asym.AsymmetricPadding = asym.OAEP(mgf=asym.MGF1(mgf_h()), algorithm=h(),
                                                        label=None)
            else:
                pad = asym.PKCS1v15()
            return self.private_key.decrypt(info["encrypted_key"].native, pad)
        except (ValueError, KeyError) as exc:
            raise WrongKey("the private key does not open this file's recipient info",
                           remedy="check that --key belongs to --cert") from exc

    def _from_pwri(self, der: bytes) -> bytes:
        info = PasswordRecipientInfo.load(b"\x30" + der[1:])
        kdf = info["key_derivation_algorithm"]
        kea = info["key_encryption_algorithm"]
        if kdf["algorithm"].native != "pbkdf2" or kea["algorithm"].dotted != PWRI_KEK:
            raise EnvelopeError("unsupported password recipient algorithms")
        params = kdf["parameters"]
        kek_alg = kea["parameters"]
        if kek_alg["algorithm"].native != "aes256_cbc":
            raise EnvelopeError(f"unsupported PWRI-KEK cipher {kek_alg['algorithm'].native}")
        kek = self._kek(params["salt"].native, params["iteration_count"].native,
                        params["prf"]["algorithm"].native)
        return kek_unwrap(kek, kek_alg["parameters"].native, info["encrypted_key"].native)


def _expect(fp: BinaryIO, tag: int, what: str, limit: int) -> Header:
    h = read_header(fp, what, limit)
    if h.tag != tag:
        raise EnvelopeError(f"expected {what} (tag 0x{tag:02X}), found tag 0x{h.tag:02X}",
                            remedy="the file is not a CMS EnvelopedData (PS3.10 7.4)")
    return h


def _ciphertext(fp: BinaryIO, limit: int) -> _Bounded | list[bytes]:
    """The encryptedContent [0]: a bounded stream (primitive) or the chunks of a BER form."""
    h = read_header(fp, "encryptedContent", limit)
    if h.tag == 0x80:
        if h.length % 16:
            raise EnvelopeError("encrypted content is not a whole number of AES blocks")
        return _Bounded(fp, h.length)
    if h.tag != 0xA0:
        raise EnvelopeError("the envelope has no encrypted content (detached content is "
                            "not supported)")
    chunks: list[bytes] = []
    total = 0
    while h.length == INDEFINITE or total < h.length:
        part = read_header(fp, "encryptedContent chunk", limit)
        if part.tag == 0 and part.length == 0:
            break
        chunks.append(read_value(fp, part, "encryptedContent chunk"))
        total += part.size + part.length
    return chunks


class _Bounded:
    def __init__(self, fp: BinaryIO, n: int):
        self.fp, self.left = fp, n

    def read(self, n: int) -> bytes:
        data = self.fp.read(min(n, self.left))
        self.left -= len(data)
        if not data and self.left:
            raise EnvelopeError("truncated encrypted content", remedy="the file is damaged")
        return data


def open_envelope(src: BinaryIO, dst: BinaryIO, opener: Opener, limit: int) -> tuple[str, int]:
    """Decrypt a CMS EnvelopedData from ``src`` into ``dst``; return (SHA-256 hex, size) of the
    content. ``limit`` bounds every length read (use the file size).

    Raises
    ------
    EnvelopeError, WrongPassword, WrongKey
    """
    _expect(src, 0x30, "ContentInfo", limit)
    oid = read_value(src, _expect(src, 0x06, "contentType", 64), "contentType")
    if core.ObjectIdentifier.load(tlv(0x06, oid)).dotted != ID_ENVELOPED:
        raise EnvelopeError("the CMS content type is not envelopedData")
    _expect(src, 0xA0, "content", limit)
    _expect(src, 0x30, "EnvelopedData", limit)
    read_value(src, _expect(src, 0x02, "version", 8), "version")
    h = read_header(src, "recipientInfos", min(limit, MAX_RECIPIENT_INFOS))
    if h.tag == 0xA0:  # originatorInfo: not used for key transport or passwords
        read_value(src, h, "originatorInfo")
        h = read_header(src, "recipientInfos", min(limit, MAX_RECIPIENT_INFOS))
    if h.tag != 0x31:
        raise EnvelopeError("recipientInfos missing")
    infos = _split(read_value(src, h, "recipientInfos"))
    _expect(src, 0x30, "EncryptedContentInfo", limit)
    read_value(src, _expect(src, 0x06, "contentType", 64), "contentType")
    alg_h = _expect(src, 0x30, "contentEncryptionAlgorithm", 4096)
    alg = algos.EncryptionAlgorithm.load(tlv(0x30, read_value(src, alg_h, "algorithm")))
    name = alg["algorithm"].native
    if name not in _AES:
        raise EnvelopeError(f"content cipher {name} is not supported (AES-CBC only)")
    cek = opener.content_key(infos)
    if len(cek) != _AES[name]:
        raise WrongKey("the recovered content key has the wrong length",
                       remedy="wrong key or password, or a damaged file")
    dec = Cipher(algorithms.AES(cek), modes.CBC(alg["parameters"].native)).decryptor()
    unpad = padding.PKCS7(128).unpadder()
    sha, size = hashlib.sha256(), 0

    def emit(data: bytes) -> None:
        nonlocal size
        if data:
            dst.write(data)
            sha.update(data)
            size += len(data)

    body = _ciphertext(src, limit)
    pieces = iter(body) if isinstance(body, list) else iter(lambda: body.read(CHUNK), b"")
    try:
        for piece in pieces:
            emit(unpad.update(dec.update(piece)))
        emit(unpad.update(dec.finalize()) + unpad.finalize())
    except ValueError as exc:
        raise WrongKey("the content does not decrypt (bad padding)",
                       remedy="wrong key or password, or a damaged file") from exc
    return sha.hexdigest(), size


def _split(value: bytes) -> list[bytes]:
    fp = io.BytesIO(value)
    out = []
    while fp.tell() < len(value):
        start = fp.tell()
        h = read_header(fp, "RecipientInfo", len(value))
        read_value(fp, h, "RecipientInfo")
        out.append(value[start:fp.tell()])
    return out
