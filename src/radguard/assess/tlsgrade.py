"""Grade TLS observations against PS3.15 B.12/B.13 using the versioned table ``tls-profiles.json``.

- versions: SSLv3, TLS 1.0 and 1.1 are forbidden (RFC 8996); servers support TLS 1.2 and 1.3;
- suites: B.13 forbids RSA key transport and static (EC)DH, NULL/RC4/RC2/IDEA/DES/3DES/ARIA/SEED,
  CBC mode and MD5/SHA-1 MACs; the retired profile a server matches is the one whose suite list is
  closest (Jaccard index) to what it accepts;
- certificates: validity period, self-signature, RSA >= 2048 / EC >= 256 bits, signature hash
  >= SHA-256, and the name (subjectAltName IP or DNS, else CN) matching the address probed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from radguard.assess.tables import CipherSuite, cipher_suites, load
from radguard.assess.tlsprobe import TlsObservation

__all__ = ["CertificateGrade", "forbidden_versions", "grade_certificate", "matched_profile",
           "suite_name", "weak_suites"]


def _table() -> dict[str, Any]:
    return load("tls-profiles.json")


def forbidden_versions(obs: TlsObservation) -> list[str]:
    """Accepted versions the table marks ``forbidden``."""
    bad = {p["name"] for p in _table()["protocols"] if p["status"] == "forbidden"}
    return [v for v, ok in obs.versions.items() if ok and v in bad]


def missing_versions(obs: TlsObservation) -> list[str]:
    """Versions the table marks ``required`` that the server did not negotiate."""
    need = [p["name"] for p in _table()["protocols"] if p["status"] == "required"]
    return [v for v in need if not obs.versions.get(v)]


def suite_name(suite_id: int) -> str:
    suite = cipher_suites().get(suite_id)
    return suite.name if suite else f"0x{suite_id:04X}"


def _reasons(suite: CipherSuite) -> list[str]:
    rules = _table()["b13_forbidden"]
    out = []
    for part in ("kx", "enc", "mode", "mac"):
        value = getattr(suite, part)
        if value in rules[part]:
            out.append(rules[part][value])
    return out


def weak_suites(obs: TlsObservation) -> list[tuple[str, list[str]]]:
    """(suite name, reasons) for each accepted suite PS3.15 B.13 forbids; unknown ids count as
    forbidden (not in the table of permitted suites)."""
    out: list[tuple[str, list[str]]] = []
    for sid in obs.suites:
        suite = cipher_suites().get(sid)
        if suite is None:
            out.append((f"0x{sid:04X}", ["not in the table of known suites"]))
            continue
        reasons = _reasons(suite)
        if reasons:
            out.append((suite.name, reasons))
    return out


def matched_profile(obs: TlsObservation) -> dict[str, Any] | None:
    """The retired profile closest to the accepted suites (Jaccard index), or ``None``."""
    accepted = {suite_name(s) for s in obs.suites}
    if not accepted:
        return None
    best: tuple[float, dict[str, Any]] | None = None
    for profile in _table()["profiles"]:
        if profile["status"] != "retired" or not profile["suites"]:
            continue
        suites = set(profile["suites"])
        common = accepted & suites
        if not common:
            continue
        score = len(common) / len(accepted | suites)
        if best is None or score > best[0]:
            best = (score, profile)
    return best[1] if best else None


@dataclass(frozen=True, slots=True)
class CertificateGrade:
    """Problems of a server certificate and a PHI-free summary of it."""

    problems: tuple[str, ...]
    summary: dict[str, Any]


def _key_bits(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 448
    return type(key).__name__, 0


def _names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    ips: list[str] = []
    dns: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
        dns = [str(d).lower() for d in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        dns = [str(c.value).lower() for c in cns]
    return ips, dns


def _name_matches(host: str, ips: list[str], dns: list[str]) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        host = host.lower()
        for name in dns:
            if name == host or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:]):
                return True
        return False
    return any(ipaddress.ip_address(i) == addr for i in ips) or str(addr) in dns


def grade_certificate(der: bytes, host: str, now: dt.datetime | None = None) -> CertificateGrade:
    """Grade a DER certificate presented by ``host`` (the address or name that was probed)."""
    minimums = _table()["certificate_minimums"]
    now = now or dt.datetime.now(dt.UTC)
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return CertificateGrade((f"unparseable certificate: {exc}",), {})
    problems: list[str] = []
    if now > cert.not_valid_after_utc:
        problems.append(f"expired on {cert.not_valid_after_utc.date().isoformat()}")
    if now < cert.not_valid_before_utc:
        problems.append(f"not valid before {cert.not_valid_before_utc.date().isoformat()}")
    self_signed = False
    if cert.issuer == cert.subject:
        try:
            cert.verify_directly_issued_by(cert)
            self_signed = True
        except (ValueError, TypeError, Exception):
            self_signed = False
    if self_signed:
        problems.append("self-signed")
    kind, bits = _key_bits(cert)
    limit = {"RSA": minimums["rsa_bits"], "EC": minimums["ec_bits"],
             "DSA": minimums["dsa_bits"]}.get(kind, 0)
    if bits < limit:
        problems.append(f"weak key: {kind} {bits} bits (minimum {limit})")
    algo = cert.signature_hash_algorithm
    sig = algo.name if algo is not None else "none"
    if sig in minimums["weak_signature_hashes"]:
        problems.append(f"weak signature hash: {sig}")
    ips, dns = _names(cert)
    if not _name_matches(host, ips, dns):
        problems.append(f"name does not match {host} (certificate names: "
                        f"{', '.join(ips + dns) or 'none'})")
    summary = {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
               "not_after": cert.not_valid_after_utc.isoformat(), "key": f"{kind} {bits}",
               "signature_hash": sig, "self_signed": self_signed, "names": ips + dns}
    return CertificateGrade(tuple(problems), summary)
