"""TLS observations of one DICOM TLS endpoint: versions, cipher suites, certificate, mutual auth.

Each observation is a handshake (counted against the device's politeness budget by the caller's
``connect`` hook). Versions are tried one by one (SSLv3 is not offered: OpenSSL 3 cannot). Cipher
suites are enumerated by elimination: offer every suite of the table, note the one the server picks,
remove it, repeat (at most ``max_rounds`` handshakes), on the highest version up to TLS 1.2; the TLS 1.3
suite the server picks is noted as well (Python cannot restrict TLS 1.3 suites, and all of them are
allowed by PS3.15 B.13). Grading lives in :mod:`radguard.assess.tlsgrade`.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from radguard.assess.channel import ChannelError, HandshakeInfo, TlsConfig, client_context, open_channel
from radguard.assess.tables import cipher_suites

__all__ = ["TlsObservation", "observe_tls"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _VERSIONS = (("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1),
                 ("TLSv1.2", ssl.TLSVersion.TLSv1_2), ("TLSv1.3", ssl.TLSVersion.TLSv1_3))


@dataclass(frozen=True, slots=True)
class TlsObservation:
    """What the TLS probes saw on one endpoint."""

    versions: dict[str, bool] = field(default_factory=dict)
    """Version name -> the server negotiated it (ServerHello seen)."""
    suites: tuple[int, ...] = ()
    """IANA ids of suites accepted at TLS 1.2 or below, server preference order."""
    tls13_suite: int | None = None
    cert_der: bytes | None = None
    handshakes: int = 0
    errors: tuple[str, ...] = ()


Handshake = Callable[[TlsConfig], HandshakeInfo]


def _local_names() -> set[str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:eNULL:@SECLEVEL=0")
    return {c["name"] for c in ctx.get_ciphers()}


def handshake_once(host: str, port: int, timeout: float,
                   connect_timeout: float | None = None) -> Handshake:
    """A function doing one TLS handshake to ``host:port`` with a given :class:`TlsConfig`
    (``connect_timeout`` bounds the TCP connection, ``timeout`` the handshake)."""

    def run(cfg: TlsConfig) -> HandshakeInfo:
        try:
            channel = open_channel(host, port, timeout, connect_timeout)
        except ChannelError as exc:
            return HandshakeInfo(ok=False, error=exc.kind)
        try:
            try:
                return channel.start_tls(client_context(cfg), None)
            except ssl.SSLError as exc:  # local refusal to build the context (no common cipher)
                return HandshakeInfo(ok=False, error=exc.reason or str(exc))
        finally:
            channel.close()

    return run


def observe_tls(handshake: Handshake, base: TlsConfig, *, max_rounds: int = 24) -> TlsObservation:
    """Run the version, suite and certificate probes through ``handshake``."""
    versions: dict[str, bool] = {}
    errors: list[str] = []
    count = 0
    cert: bytes | None = None
    tls13: int | None = None
    for name, version in _VERSIONS:
        info = handshake(replace(base, min_version=version, max_version=version))
        count += 1
        versions[name] = info.server_hello and info.version == name
        if versions[name]:
            cert = cert or info.cert_der
            if name == "TLSv1.3":
                tls13 = info.cipher_id
        elif info.error in ("refused", "timeout", "reset", "unreachable"):
            errors.append(f"{name}: {info.error}")
            break
    top = next((v for n, v in reversed(_VERSIONS[:3]) if versions.get(n)), None)
    suites: list[int] = []
    if top is not None:
        available = _local_names()
        offer = [s for s in cipher_suites().values()
                 if s.openssl and s.kx != "TLS13" and s.openssl in available]
        for _ in range(max_rounds):
            if not offer:
                break
            try:
                info = handshake(replace(base, max_version=top, min_version=None,
                                         ciphers=":".join(s.openssl for s in offer)))
            except ssl.SSLError as exc:
                errors.append(f"cipher probe: {exc}")
                break
            count += 1
            if not info.server_hello or info.cipher_id is None:
                break
            cert = cert or info.cert_der
            suites.append(info.cipher_id)
            remaining = [s for s in offer if s.id != info.cipher_id]
            if len(remaining) == len(offer):
                break  # server chose a suite we did not offer: stop rather than loop
            offer = remaining
    return TlsObservation(versions=versions, suites=tuple(suites), tls13_suite=tls13,
                          cert_der=cert, handshakes=count, errors=tuple(errors))
