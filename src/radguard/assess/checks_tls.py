"""Transport checks (PS3.15 B.12/B.13): TLS presence, versions, suites, certificate, mutual auth.

``dicom.no-tls`` and ``dicom.tls-optional`` are *site* checks: they look at all DIMSE endpoints of
one host in scope together (a TLS port beside a plaintext one makes TLS optional). The grading
module (and ``cryptography``) is imported when a TLS check runs, not when the registry loads.
"""

from __future__ import annotations

from radguard.assess.checks import Check, NotRun, register
from radguard.assess.probe import NodeProbe
from radguard.assess.tlsprobe import TlsObservation
from radguard.findings import Finding, Severity

__all__: list[str] = []


def _tls(probe: NodeProbe) -> TlsObservation:
    if probe.transport != "tls":
        raise NotRun("not a TLS endpoint")
    obs = probe.tls
    if obs is None:
        raise NotRun("TLS probes did not run (time budget)")
    return obs


@register
class NoTls(Check):
    id = "dicom.no-tls"
    severity = Severity.HIGH
    target = "site"
    description = "The host offers DICOM only in plaintext: no TLS endpoint in scope."
    remedy = ("Enable DICOM TLS (PS3.15 B.12/B.13, port 2762 recommended) and move peers to it; "
              "if the device cannot, isolate it in a segment with an encrypting gateway.")
    sends = ("nothing beyond the base association",)

    def run_site(self, probes: list[NodeProbe]) -> list[Finding]:
        plain = [p for p in probes if p.transport == "plain"]
        if not plain or any(p.transport == "tls" for p in probes):
            return []
        return [self.finding("DICOM accepted only in plaintext on this host (no TLS endpoint "
                             "among the targets)", asset=p.target.name, host=p.target.host)
                for p in plain]


@register
class TlsOptional(Check):
    id = "dicom.tls-optional"
    severity = Severity.MEDIUM
    target = "site"
    description = "Plaintext DICOM is accepted beside TLS on the same host: TLS is optional."
    remedy = "Close the plaintext port once every peer uses TLS, or restrict it to a gateway."
    sends = ("nothing beyond the base association",)

    def run_site(self, probes: list[NodeProbe]) -> list[Finding]:
        tls = [p.target.port for p in probes if p.transport == "tls"]
        if not tls:
            return []
        return [self.finding(f"plaintext DICOM accepted beside TLS on port(s) "
                             f"{', '.join(map(str, tls))}", asset=p.target.name,
                             tls_ports=tls) for p in probes if p.transport == "plain"]


@register
class ProtocolWeak(Check):
    id = "tls.protocol-weak"
    severity = Severity.HIGH
    description = ("TLS versions PS3.15 B.12/B.13 forbid (SSLv3, TLS 1.0, 1.1) are accepted, or "
                   "TLS 1.2 is not.")
    remedy = "Allow TLS 1.2 and 1.3 only (RFC 8996); update the device's TLS stack if it cannot."
    sends = ("one TLS handshake per version (1.0, 1.1, 1.2, 1.3), no data",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        from radguard.assess.tlsgrade import forbidden_versions, missing_versions

        obs = _tls(probe)
        bad = forbidden_versions(obs)
        missing = missing_versions(obs)
        if bad or "TLSv1.2" in missing:
            what = []
            if bad:
                what.append(f"accepts {', '.join(bad)}")
            if "TLSv1.2" in missing:
                what.append("does not accept TLS 1.2")
            return [self.finding(f"TLS endpoint {' and '.join(what)}", asset=probe.target.name,
                                 accepted=[v for v, ok in obs.versions.items() if ok],
                                 forbidden=bad, missing=missing)]
        return []


@register
class CipherWeak(Check):
    id = "tls.cipher-weak"
    severity = Severity.HIGH
    description = ("Cipher suites PS3.15 B.13 forbids are accepted (RSA key transport, static DH, "
                   "NULL/RC4/3DES/DES..., CBC, MD5/SHA-1); names the retired profile matched.")
    remedy = ("Configure the B.13 'Modified BCP 195 RFC 8996' profile: ECDHE/DHE with AES-GCM or "
              "ChaCha20-Poly1305 only.")
    sends = ("TLS handshakes offering every suite of the table, removing the server's pick each "
             "time (at most 24), no data",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        from radguard.assess.tlsgrade import matched_profile, weak_suites

        obs = _tls(probe)
        weak = weak_suites(obs)
        if not weak:
            return []
        profile = matched_profile(obs)
        named = (f"; matches the retired {profile['name']} (PS3.15 {profile['section']})"
                 if profile else "")
        severity = Severity.CRITICAL if any("no encryption" in r for _, rs in weak for r in rs) \
            else self.severity
        return [self.finding(f"{len(weak)} forbidden cipher suite(s) accepted, e.g. "
                             f"{weak[0][0]} ({', '.join(weak[0][1])}){named}",
                             asset=probe.target.name, severity=severity,
                             suites={name: reasons for name, reasons in weak},
                             retired_profile=profile["id"] if profile else None)]


@register
class CertificateInvalid(Check):
    id = "tls.certificate-invalid"
    severity = Severity.HIGH
    description = ("The server certificate is expired or not yet valid, self-signed, has a weak "
                   "key (RSA < 2048, EC < 256) or signature hash (MD5, SHA-1), or a wrong name.")
    remedy = ("Issue the node a certificate from the department's CA: RSA >= 2048 or EC >= 256, "
              "SHA-256, its own address/name in subjectAltName, renewed before expiry.")
    sends = ("nothing beyond the TLS handshakes",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        from radguard.assess.tlsgrade import grade_certificate

        obs = _tls(probe)
        der = obs.cert_der or (probe.base.handshake.cert_der if probe.base.handshake else None)
        if not der:
            raise NotRun("no server certificate seen")
        grade = grade_certificate(der, probe.target.host)
        if not grade.problems:
            return []
        return [self.finding(f"server certificate: {'; '.join(grade.problems)}",
                             asset=probe.target.name, problems=list(grade.problems),
                             certificate=grade.summary)]


@register
class NoMutualAuth(Check):
    id = "tls.no-mutual-auth"
    severity = Severity.MEDIUM
    description = "The TLS endpoint accepts associations from clients without a certificate."
    remedy = ("Require client certificates from the department's CA (DCMTK: --require-peer-cert "
              "with +cf; PS3.15 B.12 servers support mutual authentication).")
    sends = ("one TLS handshake without a client certificate and an A-ASSOCIATE-RQ",)

    def run(self, probe: NodeProbe) -> list[Finding]:
        _tls(probe)
        a = probe.without_client_cert
        if a is None:
            raise NotRun("not a TLS endpoint")
        if a.answer.kind in ("accept", "reject"):
            return [self.finding(f"TLS association {a.answer.kind}ed without a client "
                                 "certificate (DICOM answered)", asset=probe.target.name,
                                 answer=a.answer.kind)]
        return []
