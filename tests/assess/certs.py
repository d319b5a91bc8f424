"""Certificates the assessment tests generate: a test CA and leaves that are valid, expired,
self-signed, 1024-bit, SHA-1 signed or issued for the wrong name (all for 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _write(folder: Path, name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> CertFiles:
    folder.mkdir(parents=True, exist_ok=True)
    c, k = folder / f"{name}.crt", folder / f"{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()))
    return CertFiles(c, k)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TestPki:
    __test__ = False
    """A CA and leaves under ``folder``; generate once per session (RSA keys are slow)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca_key = _key(2048)
        now = dt.datetime.now(dt.UTC)
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(_name("RadGuard Test CA"))
            .issuer_name(_name("RadGuard Test CA")).public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca = _write(folder, "ca", self.ca_cert, self.ca_key)

    def leaf(self, name: str, *, bits: int = 2048, expired: bool = False, self_signed: bool = False,
             san_ip: str | None = "127.0.0.1", san_dns: str | None = None,
             hash_alg: hashes.HashAlgorithm | None = None) -> CertFiles:
        key = _key(bits)
        now = dt.datetime.now(dt.UTC)
        start, end = (now - dt.timedelta(days=60), now - dt.timedelta(days=30)) if expired else (
            now - dt.timedelta(days=1), now + dt.timedelta(days=30))
        subject = _name(f"radguard-test-{name}")
        sans: list[x509.GeneralName] = []
        if san_ip:
            sans.append(x509.IPAddress(ipaddress.ip_address(san_ip)))
        if san_dns:
            sans.append(x509.DNSName(san_dns))
        builder = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(subject if self_signed else self.ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        signer = key if self_signed else self.ca_key
        cert = builder.sign(signer, hash_alg or hashes.SHA256())
        return _write(self.folder, name, cert, key)
