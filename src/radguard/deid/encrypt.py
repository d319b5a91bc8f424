"""Reversible de-identification: the Encrypted Attributes Sequence (PS3.15 E.1.2, PS3.3 C.12.1.1.4.1).

The original values of every attribute the pass changed or removed (top level; a sequence is kept
whole when anything inside it changed) go into one item of a Modified Attributes Sequence
(0400,0550); that data set, encoded in Explicit VR Little Endian, is the content of a CMS
EnvelopedData (RFC 5652) to the recipient's X.509 certificate (RSA key transport, AES-CBC content
encryption, built by ``cryptography``). The file gets one item of Encrypted Attributes Sequence
(0400,0500) with Encrypted Content Transfer Syntax UID (0400,0510) and Encrypted Content (0400,0520).
Only the holder of the recipient's private key can re-identify; ``openssl cms -decrypt`` opens it.
"""

from __future__ import annotations

from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from radguard.deid.errors import EncryptionError

__all__ = ["decrypt_attributes", "encrypted_attributes_item", "load_certificate"]


def load_certificate(data: bytes) -> object:
    """A PEM or DER certificate; :class:`EncryptionError` when it is neither or has no RSA key."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        cert = (x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(data))
    except ValueError as exc:
        raise EncryptionError("the recipient certificate is neither PEM nor DER X.509",
                              remedy="give the recipient's certificate file (.pem or .der)") from exc
    if not isinstance(cert.public_key(), rsa.RSAPublicKey):
        raise EncryptionError("the recipient certificate must hold an RSA key (CMS key transport)",
                              remedy="ask the recipient for an RSA certificate")
    return cert


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


def encrypted_attributes_item(originals: Dataset, certificate: bytes,
                              character_set: object = None) -> Dataset:
    """One Encrypted Attributes Sequence item holding ``originals``, enveloped to ``certificate``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    cert = load_certificate(certificate)
    content = Dataset()
    if character_set:
        content.SpecificCharacterSet = character_set
    content.ModifiedAttributesSequence = Sequence([originals])
    envelope = (pkcs7.PKCS7EnvelopeBuilder().set_data(_encode(content))
                .add_recipient(cert)  # type: ignore[arg-type]
                .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]))
    item = Dataset()
    item.EncryptedContentTransferSyntaxUID = ExplicitVRLittleEndian
    item.EncryptedContent = envelope
    return item


def decrypt_attributes(item: Dataset, certificate: bytes, private_key: bytes) -> Dataset:
    """The original attributes from an Encrypted Attributes Sequence item (recipient side)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs7
    from pydicom.filereader import read_dataset

    cert = x509.load_pem_x509_certificate(certificate)
    key = load_pem_private_key(private_key, password=None)
    plain = pkcs7.pkcs7_decrypt_der(bytes(item.EncryptedContent), cert, key,  # type: ignore[arg-type]
                                    [])
    content = read_dataset(BytesIO(plain), is_implicit_VR=False, is_little_endian=True)
    result: Dataset = content.ModifiedAttributesSequence[0]
    return result
