"""``media export --study UID --from PROFILE``: studies fetched from a real Orthanc (loopback only)
by WADO-RS and by C-GET, exported, opened again and compared with what was uploaded; unknown
studies, unreachable or refusing PACS and crossed limits fail cleanly and leave no plaintext."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from radguard.config import load_settings
from radguard.dicomio.uids import IMPLEMENTATION_CLASS_UID
from radguard.export.fetch import STAGING, fetch_studies, staging
from radguard.export.fetch_base import FetchFailed, FetchIncomplete, FetchLimits, Sink
from radguard.export.fetch_web import MultipartSplitter
from tests.export.conftest import PASSWORD
from tests.support.peers import OrthancPeer, free_port, start_orthanc

UNKNOWN_STUDY = "1.2.826.0.1.3680043.8.498.1"


@dataclass(frozen=True)
class Pacs:
    orthanc: OrthancPeer
    study_a: str  # CT + MR, uncompressed, one patient
    study_b: str  # JPEG 2000
    uploaded: dict[str, bytes]  # SOP Instance UID -> file bytes as uploaded


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pacs]:
    folder = tmp_path_factory.mktemp("orthanc")
    orthanc = start_orthanc(folder / "peer", overrides={
        "DicomCheckCalledAet": True,
        "DicomModalities": {"radguard": {"AET": "RADGUARD", "Host": "127.0.0.1",
                                         "Port": free_port(), "AllowGet": True},
                            "noget": {"AET": "NOGET", "Host": "127.0.0.1",
                                      "Port": free_port(), "AllowGet": False}}})
    try:
        uploaded: dict[str, bytes] = {}
        studies = [generate_uid(), generate_uid()]
        for name, study, patient in (("CT_small.dcm", 0, "PID-FETCH-1"),
                                     ("MR_small.dcm", 0, "PID-FETCH-1"),
                                     ("JPEG2000.dcm", 1, "PID-FETCH-2")):
            ds = pydicom.dcmread(get_testdata_file(name))
            ds.StudyInstanceUID = studies[study]
            ds.PatientID, ds.PatientName = patient, f"Fetch^{patient}"
            path = folder / name
            ds.save_as(path, enforce_file_format=True)
            uploaded[str(ds.SOPInstanceUID)] = path.read_bytes()
            assert orthanc.rest("/instances", method="POST",
                                body=uploaded[str(ds.SOPInstanceUID)])["Status"] == "Success"
        yield Pacs(orthanc, studies[0], studies[1], uploaded)
    finally:
        orthanc.stop()


def _home(tmp_path: Path, pacs: Pacs, extra: str = "") -> Path:
    home = tmp_path / "home"
    home.mkdir()
    o = pacs.orthanc
    (home / "radguard.toml").write_text(
        f'[destinations.web]\nurl = "{o.dicomweb}"\n\n'
        f'[destinations.pacs]\nurl = "dimse://{o.aet}@127.0.0.1:{o.dicom_port}"\n'
        'calling = "RADGUARD"\n\n'
        f'[destinations.noget]\nurl = "dimse://{o.aet}@127.0.0.1:{o.dicom_port}"\n'
        'calling = "NOGET"\n\n'
        f'[destinations.wrongaet]\nurl = "dimse://NOT_ORTHANC@127.0.0.1:{o.dicom_port}"\n\n'
        f'[destinations.down]\nurl = "dimse://{o.aet}@127.0.0.1:{free_port()}"\ntimeout = 5\n\n'
        + extra)
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n")
    return home


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RADGUARD_HOME=str(home), RADGUARD_OPERATOR="tech1")
    env.pop("RADGUARD_CONFIG", None)
    radguard = str(Path(sys.executable).parent / "radguard")
    return subprocess.run([radguard, *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


def _export(home: Path, tmp_path: Path, source: str, *studies: str, out: str = "m.iso"
            ) -> subprocess.CompletedProcess[str]:
    args = [a for s in studies for a in ("--study", s)]
    return _run(home, "media", "export", *args, "--from", source, "--out", str(tmp_path / out),
                "--iso", "--password-file", str(tmp_path / "pw.txt"), "--format", "json")


def _open(home: Path, tmp_path: Path, out: str = "m.iso") -> dict[str, Path]:
    plain = tmp_path / "plain"
    r = _run(home, "media", "open", str(tmp_path / out), "--out", str(plain),
             "--password-file", str(tmp_path / "pw.txt"))
    assert r.returncode == 0, r.stderr
    files = {}
    for path in (plain / "DICOM").rglob("*"):
        if path.is_file():
            files[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    return files


def _staging_empty(home: Path) -> bool:
    root = home / STAGING
    return not root.exists() or not any(root.iterdir())


def _journal(home: Path) -> str:
    return "".join(p.read_text() for p in (home / "audit" / "journal").glob("*.log"))


def _dataset_part(data: bytes) -> bytes:
    """The data set after the File Meta Information (group 0002) of a PS3.10 file."""
    meta_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL value
    return data[144 + meta_length:]


def test_wado_rs_export_is_byte_identical(tmp_path: Path, pacs: Pacs) -> None:
    home = _home(tmp_path, pacs)
    r = _export(home, tmp_path, "web", pacs.study_a, pacs.study_b)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["instances"] == 3 and result["studies"] == 2 and result["encrypted"]
    assert _staging_empty(home)
    opened = _open(home, tmp_path)
    assert set(opened) == set(pacs.uploaded)
    for sop, path in opened.items():
        assert path.read_bytes() == pacs.uploaded[sop]  # WADO-RS transfer-syntax=*: as stored
    journal = _journal(home)
    assert 'csd-code="110104"' in journal and 'csd-code="110106"' in journal
    assert pacs.orthanc.dicomweb in journal and pacs.study_b in journal


def test_c_get_export_keeps_data_sets(tmp_path: Path, pacs: Pacs) -> None:
    home = _home(tmp_path, pacs)
    r = _export(home, tmp_path, "pacs", pacs.study_a, pacs.study_b)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["instances"] == 3
    assert _staging_empty(home)
    opened = _open(home, tmp_path)
    assert set(opened) == set(pacs.uploaded)
    for sop, path in opened.items():
        got, sent = pydicom.dcmread(path), pydicom.dcmread(pydicom.filebase.DicomBytesIO(
            pacs.uploaded[sop]))
        assert got.file_meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
        assert got.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
        assert (got.StudyInstanceUID, got.SeriesInstanceUID) == (sent.StudyInstanceUID,
                                                                  sent.SeriesInstanceUID)
        assert got.PixelData == sent.PixelData
        if sent.StudyInstanceUID == pacs.study_a:  # uncompressed: the data set byte for byte,
            # except the Data Set Trailing Padding (FFFC,FFFC) Orthanc does not send back
            mine, theirs = _dataset_part(path.read_bytes()), _dataset_part(pacs.uploaded[sop])
            assert theirs[:len(mine)] == mine
            assert theirs[len(mine):][:4] in (b"", b"\xfc\xff\xfc\xff")
    journal = _journal(home)
    assert 'csd-code="110104"' in journal and "RADGUARD" in journal
    assert 'csd-code="110153"' in journal and 'csd-code="110152"' in journal


@pytest.mark.parametrize("source", ["web", "pacs"])
def test_unknown_study_exit_2(tmp_path: Path, pacs: Pacs, source: str) -> None:
    home = _home(tmp_path, pacs)
    r = _export(home, tmp_path, source, pacs.study_a, UNKNOWN_STUDY)
    err = " ".join(r.stderr.split())
    assert r.returncode == 2
    assert f"study {UNKNOWN_STUDY}" in err and "holds no study with this Study Instance UID" in err
    assert not (tmp_path / "m.iso").exists()
    assert _staging_empty(home)  # the first study was fetched, then removed
    assert 'EventOutcomeIndicator="8"' in _journal(home)


@pytest.mark.parametrize(("source", "expected"), [
    ("down", "cannot connect"), ("wrongaet", "rejected the association"),
    ("noget", "after 0 of 2 instances (a PACS that does not allow C-GET for the calling AE "
              "title 'NOGET' does this)")])
def test_unreachable_or_refusing_pacs(tmp_path: Path, pacs: Pacs, source: str,
                                      expected: str) -> None:
    home = _home(tmp_path, pacs)
    r = _export(home, tmp_path, source, pacs.study_a)
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and expected in err and pacs.study_a in err
    assert "127.0.0.1" in err and "pynetdicom" not in err
    assert _staging_empty(home) and not (tmp_path / "m.iso").exists()


@pytest.mark.parametrize(("source", "table", "expected"), [
    ("web", "max_bytes = 20000", "exceeds max_bytes = 20,000"),  # CT_small alone is ~39 kB
    ("pacs", "max_bytes = 20000", "exceeds max_bytes = 20,000"),
    ("pacs", "max_instances = 1", "more than max_instances = 1"),
    ("web", "timeout = 0", "did not finish within 0 s")])
def test_limit_crossed_leaves_nothing(tmp_path: Path, pacs: Pacs, source: str, table: str,
                                      expected: str) -> None:
    home = _home(tmp_path, pacs, f"[fetch]\n{table}\n")
    r = _export(home, tmp_path, source, pacs.study_a)
    err = " ".join(r.stderr.split())
    assert r.returncode == 2 and expected in err and "[fetch]" in err
    assert "pynetdicom" not in err
    assert _staging_empty(home) and not (tmp_path / "m.iso").exists()


def test_options_need_each_other(tmp_path: Path, pacs: Pacs) -> None:
    home = _home(tmp_path, pacs)
    r = _run(home, "media", "export", "--study", pacs.study_a, "--out", str(tmp_path / "m"),
             "--password-file", str(tmp_path / "pw.txt"))
    assert r.returncode == 2 and "--from" in r.stderr
    r = _run(home, "media", "export", "--out", str(tmp_path / "m"),
             "--password-file", str(tmp_path / "pw.txt"))
    assert r.returncode == 2 and "--study" in r.stderr


def test_profile_tls_client_certificate_and_basic_auth(tmp_path: Path) -> None:
    """DIMSE over TLS (PS3.15 B.12) with a client certificate the PACS requires, and DICOMweb with
    basic authentication: each as the profile says; a wrong password or a missing client
    certificate fails with the PACS and study named, and leaves the staging folder empty."""
    import httpx

    from tests.custody.pki import make_pki

    pki = make_pki(tmp_path / "pki")
    orthanc = start_orthanc(tmp_path / "peer", overrides={
        "AuthenticationEnabled": True, "RegisteredUsers": {"alice": "S3cret-fetch-7"},
        "DicomTlsEnabled": True, "DicomTlsCertificate": str(pki["server_cert"]),
        "DicomTlsPrivateKey": str(pki["server_key"]),
        "DicomTlsTrustedCertificates": str(pki["ca"]),
        "DicomTlsRemoteCertificateRequired": True,
        "DicomModalities": {"radguard": {"AET": "RADGUARD", "Host": "127.0.0.1",
                                         "Port": free_port(), "AllowGet": True}}})
    try:
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.StudyInstanceUID = study = generate_uid()
        ds.save_as(tmp_path / "ct.dcm", enforce_file_format=True)
        httpx.post(f"{orthanc.url}/instances", content=(tmp_path / "ct.dcm").read_bytes(),
                   auth=("alice", "S3cret-fetch-7"), timeout=30).raise_for_status()
        dimse = (f"url = \"dimse://{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}\"\ntls = 1\n"
                 f"ca = \"{pki['ca']}\"\n")
        client = f"cert = \"{pki['client_cert']}\"\nkey = \"{pki['client_key']}\"\n"
        (tmp_path / "radguard.toml").write_text(
            f"[destinations.web]\nurl = \"{orthanc.dicomweb}\"\nusername = \"alice\"\n"
            "password = \"S3cret-fetch-7\"\n\n"
            f"[destinations.badpw]\nurl = \"{orthanc.dicomweb}\"\nusername = \"alice\"\n"
            "password = \"wrong-password\"\n\n"
            f"[destinations.tls]\n{dimse}{client}\n[destinations.nocert]\n{dimse}")
        settings = load_settings(tmp_path / "radguard.toml", home=str(tmp_path / "home"))
        for source in ("web", "tls"):
            with staging(settings) as folder:
                fetched = fetch_studies([study], source, folder, settings)
                assert fetched.instances == 1
                got = next(folder.iterdir()).read_bytes()
                assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(got)).SOPInstanceUID == \
                    ds.SOPInstanceUID
        for source, expected in (("badpw", "refused with HTTP 401"),
                                 ("nocert", "aborted the association")):
            with pytest.raises(FetchFailed) as caught, staging(settings) as folder:
                fetch_studies([study], source, folder, settings)
            assert expected in caught.value.message and study in str(caught.value.subject)
        assert _staging_empty(tmp_path / "home")
    finally:
        orthanc.stop()


# -- staging and the multipart splitter, without a peer -----------------------------------------


def test_staging_is_private_and_removed_on_interrupt(tmp_path: Path) -> None:
    settings = load_settings(home=str(tmp_path / "home"))
    stale = tmp_path / "home" / STAGING / "run-stale"
    (stale / "files").mkdir(parents=True)
    (stale / ".lock").write_text("")
    (stale / "files" / "000001.dcm").write_bytes(b"left by a killed run")
    seen: list[Path] = []
    with pytest.raises(KeyboardInterrupt), staging(settings) as folder:
        seen.append(folder)
        assert not stale.exists()  # nobody held its lock
        assert (folder.stat().st_mode & 0o777) == 0o700
        assert (folder.parent.stat().st_mode & 0o777) == 0o700
        Sink(folder, FetchLimits(), "test").put(b"plaintext")
        os.kill(os.getpid(), signal.SIGTERM)  # turned into KeyboardInterrupt, like Ctrl-C
    assert seen and not seen[0].parent.exists()
    assert list((tmp_path / "home" / STAGING).iterdir()) == []


def test_fetched_files_are_walked_and_must_belong_to_the_study(tmp_path: Path) -> None:
    from radguard.dicomio import ReadLimits
    from radguard.export.fetch import _check, _Tally

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    whole = tmp_path / "000001.dcm"
    ds.save_as(whole, enforce_file_format=True)
    cut = tmp_path / "000002.dcm"
    cut.write_bytes(whole.read_bytes()[:-5000])  # a PACS that sends a truncated instance
    tally = _Tally({}, {}, set())
    assert _check([whole], str(ds.StudyInstanceUID), "test", ReadLimits(), tally) > 0
    assert tally.sops == {str(ds.SOPInstanceUID)}
    with pytest.raises(FetchFailed, match="refused"):
        _check([cut], str(ds.StudyInstanceUID), "test", ReadLimits(), _Tally({}, {}, set()))
    with pytest.raises(FetchFailed, match="another study"):
        _check([whole], UNKNOWN_STUDY, "test", ReadLimits(), _Tally({}, {}, set()))


def _split(body: bytes, chunk: int, tmp_path: Path) -> list[bytes]:
    sink = Sink(tmp_path, FetchLimits(), "test")
    splitter = MultipartSplitter(b"XyZ", sink, "test")
    for i in range(0, len(body), chunk):
        splitter.feed(body[i:i + chunk])
    splitter.finish()
    return [p.read_bytes() for p in sink.paths]


def test_multipart_splitter_any_chunking(tmp_path: Path) -> None:
    parts = [b"\x00" * 128 + b"DICM--XyZ\r\n-XyZ\r\n--Xy", b"second\r\n"]
    body = b"preamble\r\n" + b"".join(
        b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n" for p in parts
    ) + b"--XyZ--\r\nepilogue"
    for chunk in (1, 2, 7, 64, len(body)):
        folder = tmp_path / f"c{chunk}"
        folder.mkdir()
        assert _split(body, chunk, folder) == parts


def test_multipart_splitter_refuses_cut_and_foreign_parts(tmp_path: Path) -> None:
    for sub in "abc":
        (tmp_path / sub).mkdir()
    with pytest.raises(FetchIncomplete, match="close delimiter"):
        _split(b"--XyZ\r\nContent-Type: application/dicom\r\n\r\nabc", 5, tmp_path / "a")
    with pytest.raises(FetchIncomplete, match="not application/dicom"):
        _split(b"--XyZ\r\nContent-Type: text/html\r\n\r\n<script>\r\n--XyZ--", 9, tmp_path / "b")
    with pytest.raises(FetchIncomplete, match="headers too long"):
        _split(b"--XyZ\r\nX-Pad: " + b"a" * 40000, 4096, tmp_path / "c")
