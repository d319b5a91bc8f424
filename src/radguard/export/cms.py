"""CMS EnvelopedData for Secure DICOM Files (PS3.10 7.4, PS3.15 D.1, RFC 5652 6).

A Secure DICOM File is a ``ContentInfo`` of type ``id-envelopedData`` whose encrypted content
(type ``id-data``) is the whole PS3.10 file, preamble included. RadGuard writes:

- content encryption AES-256-CBC (RFC 3565), a fresh 256-bit key and IV per file;
- one ``KeyTransRecipientInfo`` (version 0, issuer and serial number) per recipient certificate.
  Key transport is **RSAES-OAEP with SHA-256 and MGF1-SHA-256** (RFC 3560) by default: PKCS#1 v1.5
  is exposed to padding-oracle attacks (Bleichenbacher), and OpenSSL >= 1.0.2 opens OAEP
  (``openssl cms -decrypt -recip CERT -inkey KEY``). ``rsa-pkcs1v15`` remains selectable for old
  readers;
- one ``PasswordRecipientInfo`` (RFC 3211, :mod:`radguard.export.pwri`) when a password is given;
- DER with definite lengths, streamed: the ciphertext length ``16 * (n // 16 + 1)`` is known before
  encryption, so files of any size are enveloped in 1 MiB chunks with bounded memory.

Opening envelopes (the recipient's side) is :mod:`radguard.export.cms_open`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Literal

from asn1crypto import cms  # type: ignore[import-untyped]
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from radguard.export.der import encode_header, tlv
from radguard.export.errors import EnvelopeError
from radguard.export.pwri import PasswordKek

__all__ = ["CertificateRecipient", "Digests", "EnvelopeHead", "KeyTransport", "Recipients",
           "envelope", "envelope_body"]

KeyTransport = Literal["rsa-oaep", "rsa-pkcs1v15"]
ID_ENVELOPED = "1.2.840.113549.1.7.3"
ID_DATA = "1.2.840.113549.1.7.1"
CHUNK = 1024 * 1024
_ID_DATA_DER = bytes.fromhex("06092a864886f70d010701")  # OBJECT IDENTIFIER id-data
_ID_ENVELOPED_DER = bytes.fromhex("06092a864886f70d010703")  # OBJECT IDENTIFIER id-envelopedData
_AES256_CBC_DER = bytes.fromhex("060960864801650304012a")  # OBJECT IDENTIFIER aes256-CBC
MAX_RECIPIENT_INFOS = 1024 * 1024
_AES = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@dataclass(frozen=True)
class CertificateRecipient:
    """An X.509 recipient with an RSA public key (at least 2048 bits)."""

    certificate: x509.Certificate
    issuer_and_serial: bytes  # DER of IssuerAndSerialNumber

    @classmethod
    def from_pem(cls, data: bytes, name: str = "certificate") -> CertificateRecipient:
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise EnvelopeError("not a PEM X.509 certificate", subject=name,
                                remedy="give the recipient's certificate in PEM form") from exc
        key = cert.public_key()
        if not isinstance(key, RSAPublicKey):
            raise EnvelopeError("only RSA certificates can receive keys (key transport)",
                                subject=name, remedy="ask the recipient for an RSA certificate")
        if key.key_size < 2048:
            raise EnvelopeError(f"RSA key of {key.key_size} bits is too weak", subject=name,
                                remedy="ask the recipient for a certificate with >= 2048 bits")
        parsed = a_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
        ias = cms.IssuerAndSerialNumber({"issuer": parsed.issuer,
                                         "serial_number": parsed.serial_number}).dump()
        return cls(cert, ias)

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()


@functools.lru_cache(maxsize=64)
def _ktri_prefix(issuer_and_serial: bytes, transport: KeyTransport) -> bytes:
    """Version, rid and key encryption algorithm of a ``KeyTransRecipientInfo`` (RFC 5652 6.2.1),
    the same for every file of an export; only the encrypted key differs."""
    if transport == "rsa-oaep":
        alg = {"algorithm": "rsaes_oaep", "parameters": {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}}}}
    else:
        alg = {"algorithm": "rsaes_pkcs1v15"}
    rid = cms.RecipientIdentifier({"issuer_and_serial_number":
                                   cms.IssuerAndSerialNumber.load(issuer_and_serial)})
    der = cms.KeyTransRecipientInfo({"version": "v0", "rid": rid, "key_encryption_algorithm": alg,
                                     "encrypted_key": b""}).dump()
    assert isinstance(der, bytes) and der.endswith(b"\x04\x00")
    return _content(der)[:-2]


def _content(der: bytes) -> bytes:
    """The contents octets of a DER element (after its identifier and length)."""
    n = der[1] & 0x7F if der[1] & 0x80 else 0
    return der[2 + n:]


@functools.lru_cache(maxsize=64)
def _transport(cert: x509.Certificate, transport: KeyTransport) -> tuple[RSAPublicKey,
                                                                         asym.AsymmetricPadding]:
    """The recipient's public key and padding, loaded once per export, not once per file."""
    key = cert.public_key()
    assert isinstance(key, RSAPublicKey)
    return key, _oaep() if transport == "rsa-oaep" else asym.PKCS1v15()


def _oaep() -> asym.OAEP:
    return asym.OAEP(mgf=asym.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@dataclass(frozen=True)
class Recipients:
    """Who can open the envelopes of one export: certificates and/or one password KEK."""

    certificates: tuple[CertificateRecipient, ...] = ()
    password: PasswordKek | None = None
    transport: KeyTransport = "rsa-oaep"

    def __post_init__(self) -> None:
        if not self.certificates and self.password is None:
            raise EnvelopeError("an encrypted export needs a recipient certificate or a password")

    @property
    def version(self) -> int:
        """EnvelopedData version (RFC 5652 6.1): 3 with a password recipient, else 0."""
        return 3 if self.password is not None else 0

    def _ktri(self, rec: CertificateRecipient, cek: bytes) -> bytes:
        key, pad = _transport(rec.certificate, self.transport)
        prefix = _ktri_prefix(rec.issuer_and_serial, self.transport)
        return tlv(0x30, prefix + tlv(0x04, key.encrypt(cek, pad)))

    def recipient_infos(self, cek: bytes) -> bytes:
        """DER ``SET OF RecipientInfo`` (elements sorted, X.690 11.6) for ``cek``."""
        infos = [self._ktri(r, cek) for r in self.certificates]
        if self.password is not None:
            infos.append(self.password.recipient_info(cek))
        return tlv(0x31, b"".join(sorted(infos)))


@dataclass(frozen=True, slots=True)
class Digests:
    """SHA-256 and size of the stored bytes (the envelope) and size of the content; the content's
    SHA-256 only when asked for (``None`` otherwise: the signed stored digest already fixes the
    content, and a second hash pass would cost as much as the encryption)."""

    content_sha256: str | None
    content_size: int
    stored_sha256: str
    stored_size: int

    def __reduce__(self) -> tuple[type[Digests], tuple[object, ...]]:
        """Unpickled by the constructor (a frozen slots dataclass otherwise restores its
        fields through ``dataclasses.fields``, ~20 us per object, in the parent of the
        workers)."""
        return Digests, (self.content_sha256, self.content_size, self.stored_sha256,
                         self.stored_size)


class _HashingWriter:
    def __init__(self, dst: BinaryIO):
        self.dst = dst
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.dst.write(data)
        self.sha.update(data)
        self.size += len(data)


@dataclass(frozen=True)
class EnvelopeHead:
    """Everything of an envelope before its ciphertext (DER ContentInfo ... ``[0]`` header), the
    content key and IV, and the total length: known before a byte is encrypted, so the envelope's
    place on the medium can be reserved first (:mod:`radguard.export.iso9660`)."""

    prefix: bytes
    cek: bytes
    iv: bytes
    size: int  # content bytes
    length: int  # envelope bytes

    @classmethod
    def new(cls, size: int, recipients: Recipients) -> EnvelopeHead:
        """A fresh AES-256 key and IV for ``size`` content bytes, wrapped for ``recipients``."""
        cek, iv = os.urandom(32), os.urandom(16)
        ct_len = 16 * (size // 16 + 1)
        # DER framed by hand (constants of RFC 5652 / RFC 3565; asn1crypto per file costs more
        # than enveloping a small file)
        eci_prefix = (_ID_DATA_DER + tlv(0x30, _AES256_CBC_DER + tlv(0x04, iv))
                      + encode_header(0x80, ct_len))
        eci_len = len(eci_prefix) + ct_len
        env_prefix = (bytes((0x02, 0x01, recipients.version)) + recipients.recipient_infos(cek)
                      + encode_header(0x30, eci_len) + eci_prefix)
        env_len = len(env_prefix) + ct_len
        env_header = encode_header(0x30, env_len)
        oid = _ID_ENVELOPED_DER
        explicit = encode_header(0xA0, len(env_header) + env_len)
        body_len = len(oid) + len(explicit) + len(env_header) + env_len
        prefix = encode_header(0x30, body_len) + oid + explicit + env_header + env_prefix
        return cls(prefix, cek, iv, size, len(prefix) + ct_len)


_LOCAL = threading.local()


def _buffer() -> memoryview:
    """This thread's ciphertext buffer (:data:`CHUNK` + one block, as ``update_into`` needs),
    written out before the next chunk is encrypted into it (a forked worker gets its own copy)."""
    buf: memoryview | None = getattr(_LOCAL, "buffer", None)
    if buf is None:
        buf = _LOCAL.buffer = memoryview(bytearray(CHUNK + 16))
    return buf


def envelope_body(head: EnvelopeHead, src: BinaryIO, dst: BinaryIO, *,
                  hash_content: bool = False) -> Digests:
    """Write the envelope of ``head``: its prefix, then ``head.size`` bytes of ``src`` through
    AES-256-CBC with PKCS #7 padding (RFC 5652 6.3), in :data:`CHUNK` pieces.

    Raises
    ------
    EnvelopeError
        ``src`` yields more or fewer than ``head.size`` bytes (the file changed while exporting).
    """
    out = _HashingWriter(dst)
    out.write(head.prefix)
    plain = hashlib.sha256() if hash_content else None
    enc = Cipher(algorithms.AES(head.cek), modes.CBC(head.iv)).encryptor()  # keeps partial blocks
    buf = _buffer()
    seen = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        seen += len(chunk)
        if plain is not None:
            plain.update(chunk)
        out.write(buf[:enc.update_into(chunk, buf)])  # no new 1 MiB object per chunk
    if seen != head.size:
        raise EnvelopeError(f"expected {head.size} bytes, read {seen}",
                            remedy="the file changed during the export; run the export again")
    n = 16 - seen % 16  # PKCS #7 padding: 1..16 bytes of value n
    out.write(enc.update(bytes((n,)) * n) + enc.finalize())
    assert out.size == head.length
    return Digests(plain.hexdigest() if plain is not None else None, seen, out.sha.hexdigest(),
                   out.size)


def envelope(src: BinaryIO, size: int, dst: BinaryIO, recipients: Recipients, *,
             hash_content: bool = False) -> Digests:
    """Encrypt ``size`` bytes of ``src`` into a DER ContentInfo written to ``dst``; the SHA-256
    of the content too with ``hash_content``.

    Raises
    ------
    EnvelopeError
        ``src`` yields more or fewer than ``size`` bytes (the file changed while exporting).
    """
    return envelope_body(EnvelopeHead.new(size, recipients), src, dst, hash_content=hash_content)


def envelope_bytes(data: bytes, recipients: Recipients) -> tuple[bytes, Digests]:
    """:func:`envelope` for content already in memory."""
    dst = io.BytesIO()
    digests = envelope(io.BytesIO(data), len(data), dst, recipients)
    return dst.getvalue(), digests
