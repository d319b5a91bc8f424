"""TLS checks against DCMTK ``storescp +tls`` under each profile, with generated certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from radguard.assess import Credentials
from tests.assess.certs import TestPki
from tests.assess.conftest import assess, details, ids
from tests.assess.dcmtk import storescp, tls_storescp

TLS_CHECKS = ["tls.protocol-weak", "tls.cipher-weak", "tls.certificate-invalid",
              "tls.no-mutual-auth", "dicom.no-tls", "dicom.tls-optional"]


def _run(tmp: Path, cert_key: tuple[Path, Path], profile: str, *extra: str,
         creds: Credentials | None = None, target_prefix: str = "") -> dict[str, list[dict]]:
    peer = tls_storescp(tmp, cert_key[1], cert_key[0], profile, *extra)
    try:
        r = assess([f"{target_prefix}127.0.0.1:{peer.port}/STORESCP"], TLS_CHECKS,
                   credentials=creds)
    finally:
        peer.stop()
    n = r.nodes[0]
    assert n.transport == "tls", n.reason
    return {i: details(n, i) for i in ids(n)}


def test_hardened_bcp195_nd_with_mutual_auth_is_quiet(tmp_path: Path, pki: TestPki) -> None:
    # Given B.10-like suites (all permitted by B.13), a valid certificate and client certs required
    server = pki.leaf("server-good")
    client = pki.leaf("client")
    creds = Credentials(tls_cert=str(client.cert), tls_key=str(client.key))
    found = _run(tmp_path, (server.cert, server.key), "--profile-bcp195-nd",
                 "+cf", str(pki.ca.cert), creds=creds)
    assert found == {}


def test_bcp195_accepts_old_versions_and_a_cbc_suite(tmp_path: Path, pki: TestPki) -> None:
    server = pki.leaf("server-bcp195")
    found = _run(tmp_path, (server.cert, server.key), "--profile-bcp195", "-ic")
    assert set(found) == {"tls.protocol-weak", "tls.cipher-weak", "tls.no-mutual-auth"}
    assert set(found["tls.protocol-weak"][0]["forbidden"]) == {"TLSv1", "TLSv1.1"}
    weak = found["tls.cipher-weak"][0]
    assert list(weak["suites"]) == ["TLS_RSA_WITH_AES_128_CBC_SHA"]
    assert weak["retired_profile"] == "bcp195"


def test_retired_aes_profile_with_expired_certificate(tmp_path: Path, pki: TestPki) -> None:
    server = pki.leaf("server-expired", expired=True)
    found = _run(tmp_path, (server.cert, server.key), "--profile-aes", "-ic",
                 target_prefix="dicom+tls://")
    assert found["tls.cipher-weak"][0]["retired_profile"] == "aes-tls"
    assert any(p.startswith("expired") for p in found["tls.certificate-invalid"][0]["problems"])


def test_retired_null_profile_self_signed_is_critical(tmp_path: Path, pki: TestPki) -> None:
    server = pki.leaf("server-self", self_signed=True)
    peer = tls_storescp(tmp_path, server.key, server.cert, "--profile-null", "-ic")
    try:
        r = assess([f"127.0.0.1:{peer.port}/STORESCP"], ["tls.cipher-weak",
                                                         "tls.certificate-invalid"])
    finally:
        peer.stop()
    by_id = {f.check_id: f for f in r.nodes[0].findings}
    assert by_id["tls.cipher-weak"].severity.label == "critical"
    assert by_id["tls.cipher-weak"].evidence.details["retired_profile"] == "null-tls"
    assert "self-signed" in by_id["tls.certificate-invalid"].evidence.details["problems"]


def test_weak_key_and_wrong_name(tmp_path: Path, pki: TestPki) -> None:
    weak = pki.leaf("server-1024", bits=1024)
    found = _run(tmp_path / "weak", (weak.cert, weak.key), "--profile-aes", "-ic")
    assert any("weak key: RSA 1024" in p for p in found["tls.certificate-invalid"][0]["problems"])
    other = pki.leaf("server-other", san_ip=None, san_dns="pacs.other.example")
    found = _run(tmp_path / "name", (other.cert, other.key), "--profile-bcp195-ex", "-ic")
    problems = found["tls.certificate-invalid"][0]["problems"]
    assert problems == ["name does not match 127.0.0.1 (certificate names: pacs.other.example)"]
    assert "tls.cipher-weak" not in found and "tls.protocol-weak" not in found


@pytest.mark.parametrize("with_tls", [True, False])
def test_plaintext_beside_tls_is_optional_tls_else_no_tls(tmp_path: Path, pki: TestPki,
                                                          with_tls: bool) -> None:
    server = pki.leaf("server-pair")
    plain = storescp(tmp_path / "plain")
    tls = tls_storescp(tmp_path / "tls", server.key, server.cert, "--profile-bcp195-nd", "-ic") \
        if with_tls else None
    try:
        targets = [f"127.0.0.1:{plain.port}/STORESCP"]
        if tls is not None:
            targets.append(f"127.0.0.1:{tls.port}/STORESCP")
        r = assess(targets, ["dicom.no-tls", "dicom.tls-optional"])
    finally:
        plain.stop()
        if tls is not None:
            tls.stop()
    by_node = {n.port: ids(n) for n in r.nodes}
    if with_tls:
        assert by_node == {plain.port: {"dicom.tls-optional"}, tls.port: set()}
    else:
        assert by_node == {plain.port: {"dicom.no-tls"}}
