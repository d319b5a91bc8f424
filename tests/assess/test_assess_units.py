"""Specifications without peers: targets, credentials, the registry, tables, PDUs and grading."""

from __future__ import annotations

from pathlib import Path

import pytest

import radguard.assess as api
from radguard.assess import (
    TargetError,
    all_checks,
    load_credentials,
    parse_known_peer,
    parse_target,
    parse_targets,
    select,
)
from radguard.assess.pdu import Context, encode_associate_rq, parse_answer
from radguard.assess.probe import tier_contexts, tier_count
from radguard.assess.tables import TABLES, cipher_suites, versions

ISSUE_CHECKS = {
    "dicom.called-aet-not-enforced", "dicom.calling-aet-not-enforced",
    "dicom.calling-aet-spoofable", "dicom.query-open", "dicom.retrieve-open", "dicom.store-open",
    "dicom.no-tls", "dicom.tls-optional", "tls.protocol-weak", "tls.cipher-weak",
    "tls.certificate-invalid", "tls.no-mutual-auth", "dicom.identity-plaintext",
    "dicom.fingerprint", "dicomweb.unauthenticated", "http.plaintext", "http.cors-permissive",
    "orthanc.remote-unauthenticated", "orthanc.default-credentials",
    "orthanc.execute-script-exposed", "orthanc.version-vulnerable"}


def test_public_surface() -> None:
    for name in api.__all__:
        assert hasattr(api, name), name


def test_every_issue_check_is_registered_with_controls_and_docs() -> None:
    checks = all_checks()
    assert set(checks) == ISSUE_CHECKS
    docs = (Path(__file__).parents[2] / "docs" / "assess.md").read_text()
    for cid, cls in checks.items():
        frameworks = {c.framework for c in cls.controls()}
        assert {"NIST-CSF-2.0", "MITA-CSP1-2015"} <= frameworks, cid
        assert cls.description and cls.remedy and cls.sends, cid
        assert f"`{cid}`" in docs, cid


def test_intrusive_checks_need_the_flag() -> None:
    assert {c.id for c in select([], intrusive=False)} == ISSUE_CHECKS - {
        "dicom.store-open", "dicom.retrieve-open"}
    with pytest.raises(ValueError, match="unknown check"):
        select(["dicom.nope"], intrusive=False)


@pytest.mark.parametrize(("text", "name", "aet", "tls"), [
    ("pacs.local:104/PACS", "pacs.local:104/PACS", "PACS", None),
    ("[::1]:11112", "[::1]:11112", None, None),
    ("dicom+tls://10.0.0.5:2762/ARCH", "dicom+tls://10.0.0.5:2762/ARCH", "ARCH", True),
    ("dicom://10.0.0.5:104/ARCH", "dicom://10.0.0.5:104/ARCH", "ARCH", False),
])
def test_parse_dicom_targets(text: str, name: str, aet: str | None, tls: bool | None) -> None:
    t = parse_target(text)
    assert (t.kind, t.name, t.aet, t.tls) == ("dicom", name, aet, tls)


def test_parse_url_file_and_errors(tmp_path: Path) -> None:
    t = parse_target("https://pacs.example:8443/dicom-web")
    assert (t.kind, t.host, t.port) == ("http", "pacs.example", 8443)
    f = tmp_path / "scope.txt"
    f.write_text("# imaging\n10.1.1.1:104/CT01\n\n10.1.1.1:104/CT01  # dup\nhttp://10.1.1.2:8042\n")
    assert [x.name for x in parse_targets([f"@{f}"])] == ["10.1.1.1:104/CT01",
                                                        "http://10.1.1.2:8042"]
    for bad, why in (("host/AET", "no port"), ("h:99999", "out of range"),
                     ("h:104/WAY-TOO-LONG-AE-TITLE", "invalid AE title")):
        with pytest.raises(TargetError, match=why):
            parse_target(bad)
    f.write_text("10.1.1.1:x\n")
    with pytest.raises(TargetError) as err:
        parse_targets([str(f)])
    assert f"{f}:1" in str(err.value.subject)
    assert parse_known_peer("CT01@10.9.9.9").host == "10.9.9.9"


def test_credentials_file_hides_secrets(tmp_path: Path) -> None:
    f = tmp_path / "creds.toml"
    f.write_text('[http]\nuser = "admin"\npassword = "s3cret-pw"\ntry = [["orthanc", "orthanc"]]\n'
                 '[tls]\ncert = "c.pem"\nkey = "k.pem"\n')
    c = load_credentials(f)
    assert c.http_auth == ("admin", "s3cret-pw") and c.tls_cert == str(tmp_path / "c.pem")
    assert "s3cret-pw" not in repr(c)
    f.write_text("[http\n")
    with pytest.raises(api.CredentialsError, match="not valid TOML"):
        load_credentials(f)


def test_tiers_never_exceed_128_contexts_and_cover_services() -> None:
    all_uids = set()
    for i in range(tier_count()):
        ctxs = tier_contexts(i)
        assert 0 < len(ctxs) <= 128
        assert len({c.id for c in ctxs}) == len(ctxs) and all(c.id % 2 for c in ctxs)
        all_uids |= {c.abstract_syntax for c in ctxs}
    assert {"1.2.840.10008.1.1", "1.2.840.10008.5.1.4.31", "1.2.840.10008.5.1.4.1.2.2.2"} <= all_uids
    with pytest.raises(ValueError):
        encode_associate_rq("A", "B", [Context(1, "1.2", ("1.2",))] * 129)


def test_answer_parser_is_tolerant() -> None:
    assert parse_answer(0x03, bytes([0, 1, 1, 7])).reason.startswith("called AE title not")
    assert parse_answer(0x02, b"\x00" * 10).kind == "garbage"
    assert parse_answer(0x09, b"").kind == "garbage"
    assert parse_answer(0x07, bytes(4)).kind == "abort"


def test_tables_are_versioned_and_consistent() -> None:
    assert set(versions()) == set(TABLES) and all(versions().values())
    suites = cipher_suites()
    assert suites[0x000A].name == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    names = {s.name for s in suites.values()}
    from radguard.assess.tables import load

    for profile in load("tls-profiles.json")["profiles"]:
        assert set(profile["suites"]) <= names, profile["id"]
