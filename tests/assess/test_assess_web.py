"""DICOMweb/HTTP and Orthanc checks against real Orthanc peers and scripted HTTP(S) peers."""

from __future__ import annotations

from radguard.assess import Credentials
from tests.assess.certs import TestPki
from tests.assess.conftest import STRONG, assess, details, ids
from tests.assess.scripted import HttpPeer
from tests.support.peers import OrthancPeer

WEB = ["dicomweb.unauthenticated", "http.plaintext", "http.cors-permissive",
       "orthanc.remote-unauthenticated", "orthanc.default-credentials",
       "orthanc.execute-script-exposed", "orthanc.version-vulnerable"]
TRY = Credentials(http_try=(("orthanc", "orthanc"), ("admin", "admin")))


def test_default_orthanc_is_open(orthanc_default: OrthancPeer) -> None:
    n = assess([orthanc_default.url], WEB, credentials=TRY).nodes[0]
    assert {"dicomweb.unauthenticated", "http.plaintext", "orthanc.remote-unauthenticated",
            "orthanc.version-vulnerable"} <= ids(n)
    assert details(n, "dicomweb.unauthenticated")[0]["statuses"]["QIDO-RS"] == 200
    assert "orthanc.execute-script-exposed" not in ids(n)  # Lua disabled by default
    assert n.checks["orthanc.execute-script-exposed"] == "ran"


def test_weak_orthanc_user_named_credentials_open_lua(orthanc_weak: OrthancPeer) -> None:
    n = assess([orthanc_weak.url], WEB, credentials=TRY).nodes[0]
    assert {"orthanc.default-credentials", "orthanc.execute-script-exposed",
            "orthanc.version-vulnerable"} <= ids(n)
    assert details(n, "orthanc.default-credentials")[0] == {"user": "orthanc"}
    assert "dicomweb.unauthenticated" not in ids(n)  # auth is on
    assert "orthanc.remote-unauthenticated" not in ids(n)
    assert details(n, "orthanc.version-vulnerable")[0]["cves"] == ["CVE-2023-33466"]


def test_default_credentials_are_not_tried_unless_named(orthanc_weak: OrthancPeer) -> None:
    n = assess([orthanc_weak.url], ["orthanc.default-credentials"]).nodes[0]
    assert n.checks["orthanc.default-credentials"].startswith("not run")
    assert n.findings == ()


def test_hardened_orthanc_is_quiet_even_with_its_real_account(
        orthanc_hardened: OrthancPeer) -> None:
    creds = Credentials(http_user="admin", http_password=STRONG,
                        http_try=(("orthanc", "orthanc"), ("admin", "admin")))
    n = assess([orthanc_hardened.url], [c for c in WEB if c not in (
        "http.plaintext", "orthanc.version-vulnerable")], credentials=creds).nodes[0]
    assert n.findings == ()
    assert all(v == "ran" for v in n.checks.values())
    assert STRONG not in str(n.to_dict())  # secrets never reach a report


def test_cors_wildcard_with_credentials_fires_and_plain_http_too() -> None:
    peer = HttpPeer(headers={"Access-Control-Allow-Origin": "*",
                             "Access-Control-Allow-Credentials": "true"})
    try:
        n = assess([peer.url + "/dicom-web"], ["http.cors-permissive", "http.plaintext"]).nodes[0]
    finally:
        peer.close()
    assert ids(n) == {"http.cors-permissive", "http.plaintext"}
    assert [f.severity.label for f in n.findings if f.check_id == "http.cors-permissive"] == \
        ["high"]


def test_https_without_cors_and_fixed_orthanc_version_is_quiet(pki: TestPki) -> None:
    cert = pki.leaf("https")
    peer = HttpPeer(status=200, system={"Version": "1.12.5", "DicomAet": "ORTHANC",
                                        "Name": "patched"},
                    tls=(str(cert.cert), str(cert.key)))
    try:
        n = assess([peer.url], ["http.cors-permissive", "http.plaintext",
                                "orthanc.version-vulnerable"]).nodes[0]
    finally:
        peer.close()
    assert n.reachable and n.findings == ()
    assert n.checks["orthanc.version-vulnerable"] == "ran"
