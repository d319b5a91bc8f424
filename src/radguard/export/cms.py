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

The reader accepts what RadGuard writes and what ``openssl cms -encrypt -outform DER`` writes (BER
indefinite lengths, constructed OCTET STRINGs), with AES-128/192/256-CBC content.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from asn1crypto import algos, cms, core  # type: ignore[import-untyped]
from asn1crypto import x509 as a_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from radguard.export.der import INDEFINITE, Header, encode_header, read_header, read_value, tlv
from radguard.export.errors import EnvelopeError, WrongKey, WrongPassword
from radguard.export.pwri import PWRI_KEK, PasswordKek, PasswordRecipientInfo, kek_unwrap

__all__ = ["CertificateRecipient", "Digests", "EnvelopeHead", "KeyTransport", "Opener",
           "Recipients", "envelope", "envelope_body", "open_envelope"]

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


class _HashingWriter:
    def __init__(self, dst: BinaryIO):
        self.dst = dst
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
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
    seen = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        seen += len(chunk)
        if plain is not None:
            plain.update(chunk)
        out.write(enc.update(chunk))
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


# -- reading -------------------------------------------------------------------------------------


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
