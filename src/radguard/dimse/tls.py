"""TLS client contexts for DICOM associations: PS3.15 B.12 "BCP 195 RFC 8996" profile.

TLS 1.2 or 1.3 only (RFC 8996 retired 1.0/1.1), ECDHE/DHE key exchange with AEAD ciphers (AES-GCM,
ChaCha20-Poly1305) for TLS 1.2, certificate verification against the given CA, and a client
certificate for mutual authentication when ``cert`` and ``key`` are given (PS3.15 B.12).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from radguard.dimse.errors import TlsConfigError

__all__ = ["BCP195_TLS12_CIPHERS", "TlsOptions", "client_context"]

BCP195_TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-AES128-GCM-SHA256",
])
"""TLS 1.2 suites permitted by PS3.15 B.12/B.13 (forward secret, AEAD); 1.3 suites are OpenSSL's."""


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """Paths of the CA bundle, client certificate and key; ``check_hostname`` matches the
    server certificate to the host name or IP address connected to."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    check_hostname: bool = True


def client_context(options: TlsOptions) -> ssl.SSLContext:
    """An :class:`ssl.SSLContext` for a TLS association per PS3.15 B.12.

    Raises
    ------
    TlsConfigError
        A file cannot be loaded, or a certificate was given without its key.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(BCP195_TLS12_CIPHERS)
    ctx.check_hostname = options.check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if options.ca:
            ctx.load_verify_locations(cafile=options.ca)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if options.cert or options.key:
            if not (options.cert and options.key):
                raise TlsConfigError("a client certificate needs both cert and key",
                                     remedy="give both cert=... and key=...")
            ctx.load_cert_chain(options.cert, options.key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load TLS files: {exc}", subject=options.cert or options.ca,
                             remedy="check the CA, certificate and key paths (PEM)") from exc
    return ctx
