"""HTTP checks: DICOMweb (PS3.18) without authentication, plain HTTP, permissive CORS, and Orthanc
specifics (remote access without authentication, user-named weak credentials, the Lua
``/tools/execute-script`` endpoint, versions with known CVEs from ``orthanc-cves.json``)."""

from __future__ import annotations

import ipaddress
import re

from radguard.assess.checks import Check, NotRun, register
from radguard.assess.probe import WebProbe
from radguard.assess.tables import load
from radguard.findings import Finding, Severity

__all__: list[str] = []

_DENIED = (401, 403)


def _reachable(probe: WebProbe) -> None:
    if not probe.reachable:
        raise NotRun(f"no HTTP answer ({probe.first.error})")


def _orthanc(probe: WebProbe) -> None:
    _reachable(probe)
    if not probe.is_orthanc:
        raise NotRun("not an Orthanc server")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@register
class DicomwebUnauthenticated(Check):
    id = "dicomweb.unauthenticated"
    severity = Severity.HIGH
    target = "http"
    description = "QIDO-RS, WADO-RS or STOW-RS answer without credentials."
    remedy = ("Put DICOMweb behind authentication (OAuth 2 / OpenID Connect per PS3.18 "
              "section 8.8, or at least HTTP Basic over TLS) for every route.")
    sends = ("GET {root}/studies?limit=1", "GET {root}/studies/<random UID>/metadata",
             "POST {root}/studies with an empty multipart body (stores nothing)")

    def run(self, probe: WebProbe) -> list[Finding]:
        _reachable(probe)
        answers = {"QIDO-RS": probe.first.status, "WADO-RS": probe.wado.status,
                   "STOW-RS": probe.stow.status}
        if probe.first.status == 404 and probe.wado.status == 404:
            raise NotRun(f"no DICOMweb service at {probe.dicomweb}")
        open_ = [name for name, status in answers.items()
                 if status is not None and status not in _DENIED]
        if not open_:
            return []
        return [self.finding(f"DICOMweb answers without credentials: {', '.join(open_)}",
                             asset=probe.target.name, statuses=answers, root=probe.dicomweb)]


@register
class HttpPlaintext(Check):
    id = "http.plaintext"
    severity = Severity.MEDIUM
    target = "http"
    description = "The web/DICOMweb service answers over plain HTTP (no TLS)."
    remedy = "Serve HTTPS only (TLS 1.2+), redirect or close plain HTTP."
    sends = ("nothing beyond the QIDO-RS request",)

    def run(self, probe: WebProbe) -> list[Finding]:
        _reachable(probe)
        if (probe.target.url or "").lower().startswith("http://"):
            return [self.finding("service answers over plain HTTP", asset=probe.target.name,
                                 status=probe.first.status)]
        return []


@register
class CorsPermissive(Check):
    id = "http.cors-permissive"
    severity = Severity.MEDIUM
    target = "http"
    description = ("CORS lets any web origin read responses (Access-Control-Allow-Origin '*' or "
                   "an echoed foreign origin, worse with credentials allowed).")
    remedy = "Allow only the viewer's own origins; never '*' or reflected origins with credentials."
    sends = ("the QIDO-RS request carries 'Origin: https://radguard-probe.invalid'",)

    def run(self, probe: WebProbe) -> list[Finding]:
        _reachable(probe)
        allow = probe.first.headers.get("access-control-allow-origin", "")
        creds = probe.first.headers.get("access-control-allow-credentials", "").lower() == "true"
        if allow == "*" or allow == "https://radguard-probe.invalid":
            severity = Severity.HIGH if creds else self.severity
            return [self.finding(f"Access-Control-Allow-Origin {allow!r}"
                                 + (" with credentials" if creds else ""),
                                 asset=probe.target.name, severity=severity,
                                 allow_origin=allow, allow_credentials=creds)]
        return []


@register
class OrthancRemoteUnauthenticated(Check):
    id = "orthanc.remote-unauthenticated"
    severity = Severity.CRITICAL
    target = "http"
    description = ("Orthanc's REST API answers without authentication (remote access with "
                   "AuthenticationEnabled false; CVE-2025-0896 for Orthanc < 1.5.8).")
    remedy = ("Set AuthenticationEnabled true with strong RegisteredUsers (or an authorization "
              "plugin), and RemoteAccessAllowed false unless behind a reverse proxy.")
    sends = ("GET /system without credentials",)

    def run(self, probe: WebProbe) -> list[Finding]:
        _orthanc(probe)
        if probe.system.status != 200:
            return []
        local = _loopback(probe.target.host)
        note = " (probed over loopback: local access)" if local else ""
        return [self.finding(f"Orthanc REST API open without credentials{note}",
                             asset=probe.target.name,
                             severity=Severity.MEDIUM if local else self.severity,
                             loopback=local)]


@register
class OrthancDefaultCredentials(Check):
    id = "orthanc.default-credentials"
    severity = Severity.CRITICAL
    target = "http"
    description = ("A default or weak credential pair named by the user (credentials file "
                   "http.try) opens Orthanc's REST API. Nothing is tried by default.")
    remedy = "Change the password (RegisteredUsers) to a long random secret; remove default users."
    sends = ("GET /system with each user-named credential pair, stopping at the first success",)

    def run(self, probe: WebProbe) -> list[Finding]:
        _orthanc(probe)
        if not probe.options.credentials.http_try:
            raise NotRun("no credentials to try (credentials file: [http] try = [[user, pw]])")
        found = probe.tried_credentials
        if found is None:
            return []
        return [self.finding(f"user-named weak credentials accepted for user {found[0]!r}",
                             asset=probe.target.name, user=found[0])]


@register
class OrthancExecuteScript(Check):
    id = "orthanc.execute-script-exposed"
    severity = Severity.CRITICAL
    target = "http"
    description = ("/tools/execute-script runs Lua sent by any caller who reaches the REST API: "
                   "arbitrary code execution on the server.")
    remedy = "Set ExecuteLuaEnabled false and restrict access to the REST API."
    sends = ("POST /tools/execute-script with an empty script (runs nothing)",)

    def run(self, probe: WebProbe) -> list[Finding]:
        _orthanc(probe)
        obs = probe.execute_script
        if obs.status == 401 and probe.auth is None:
            raise NotRun("REST API needs credentials RadGuard was not given")
        if obs.status == 200:
            return [self.finding("/tools/execute-script accepted a script",
                                 asset=probe.target.name, authenticated=probe.auth is not None)]
        return []


def _version(text: str) -> tuple[int, ...] | None:
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", text.strip())
    return tuple(int(x) for x in m.groups()) if m else None


@register
class OrthancVersionVulnerable(Check):
    id = "orthanc.version-vulnerable"
    severity = Severity.HIGH
    target = "http"
    description = "The Orthanc version has known CVEs (table orthanc-cves.json)."
    remedy = "Upgrade Orthanc to the latest release (at least the fixed version of each CVE)."
    sends = ("GET /system (with credentials when given) to read the version",)

    def run(self, probe: WebProbe) -> list[Finding]:
        _orthanc(probe)
        data = probe.system_authenticated.json
        text = data.get("Version", "") if isinstance(data, dict) else ""
        if not text:
            server = probe.system.headers.get("server", "")
            text = server.split("/", 1)[1] if server.lower().startswith("orthanc/") else ""
        version = _version(text)
        if version is None:
            raise NotRun("Orthanc version not disclosed (give credentials to read /system)")
        table = load("orthanc-cves.json")
        hits = [e for e in table["entries"] if version < (_version(e["fixed"]) or (0,))]
        if not hits:
            return []
        worst = max(Severity.parse(e["severity"]) for e in hits)
        return [self.finding(f"Orthanc {text} is affected by {', '.join(e['id'] for e in hits)}",
                             asset=probe.target.name, severity=worst, version=text,
                             cves=[e["id"] for e in hits],
                             fixed_in=max(e["fixed"] for e in hits),
                             table=table["version"])]
