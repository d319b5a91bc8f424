"""``deid verify`` without the original: names and IDs a reviewer puts back are found (issue 4).

RadGuard's own output verifies clean (its dummies and keyed pseudonyms are recognised); values that
Table E.1-1 says must be removed, emptied or replaced, the file's names and IDs in free text and
private elements are residuals.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from radguard.deid import DeidOptions, deidentify_tree
from radguard.deid.verify import verify_file

KEY = b"verify-no-original-key-0123456789"
REAL = ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "rtstruct.dcm",
        "test-SR.dcm", "US1_UNCR.dcm", "SC_rgb.dcm", "nested_priv_SQ.dcm", "waveform_ecg.dcm"]
OPTION_SETS = [[], ["clean-descriptors"], ["clean-structured-content"], ["retain-safe-private"],
               ["retain-long-modified-dates"], ["tcia"], ["research"]]


@pytest.fixture(scope="module")
def real_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("in")
    for name in REAL:
        path = pydicom.data.get_testdata_file(name)
        if path is not None:
            shutil.copy(path, src / name)
    return src


@pytest.fixture(scope="module")
def basic_output(real_input: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    report = deidentify_tree(real_input, out, DeidOptions.from_names([], key=KEY, ocr=False),
                             workers=1)
    assert all(f.ok for f in report.files)
    return out


def _checks(path: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for f in verify_file(path):
        found.setdefault(f.check_id, set()).add(str(f.evidence.details.get("attribute", "")))
    return found


@pytest.mark.parametrize("names", OPTION_SETS, ids=lambda n: "+".join(n) or "basic")
def test_radguard_output_verifies_clean_without_original(real_input: Path, tmp_path: Path,
                                                         names: list[str]) -> None:
    report = deidentify_tree(real_input, tmp_path / "out", DeidOptions.from_names(
        names, key=KEY, ocr=False), workers=1)
    outputs = [Path(f.output) for f in report.files if f.output]
    assert len(outputs) == len(list(real_input.iterdir()))
    for out in outputs:
        assert verify_file(out) == [], out.name


def test_reviewer_example_names_ids_institution_and_comment(basic_output: Path,
                                                            tmp_path: Path) -> None:
    ds = pydicom.dcmread(basic_output / "CT_small.dcm")
    assert verify_file(basic_output / "CT_small.dcm") == []
    ds.PatientName = "Doe^John"
    ds.PatientID = "MRN123456"
    ds.InstitutionName = "St Elsewhere General Hospital"
    ds.ImageComments = "John Doe MRN123456"
    target = tmp_path / "reviewed.dcm"
    ds.save_as(target)
    found = _checks(target)
    assert {"PatientName", "PatientID", "InstitutionName", "ImageComments"} <= found[
        "deid.identifying-value"]
    assert "ImageComments" in found["deid.identifier-in-text"]
    messages = " ".join(f.message for f in verify_file(target))
    assert "Doe" not in messages and "123456" not in messages  # findings never quote PHI


def test_name_in_description_kept_by_option_is_found(basic_output: Path, tmp_path: Path) -> None:
    """Under Clean Descriptors a description is kept (cleaned); the file's own person name put
    into it is still found, and an ID-shaped token too."""
    src = sorted(p for p in basic_output.iterdir() if p.name == "MR_small.dcm")[0]
    ds = pydicom.dcmread(src)
    ds.OperatorsName = "Nakamura^Hiroshi"
    ds.SeriesDescription = "T1 axial for hiroshi nakamura"
    target = tmp_path / "named.dcm"
    ds.save_as(target)
    found = _checks(target)
    assert "OperatorsName" in found["deid.identifying-value"]
    assert "SeriesDescription" in found["deid.identifier-in-text"]
    ds2 = pydicom.dcmread(src)
    ds2.StudyComments = "see chart MRN 0042 and A1234567"
    ds2.save_as(tmp_path / "idshape.dcm")
    assert "StudyComments" in _checks(tmp_path / "idshape.dcm")["deid.identifier-in-text"]


def test_nested_and_sequence_residuals(basic_output: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(basic_output / "CT_small.dcm")
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8"  # U: must be a 2.25 replacement
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.ReferencedImageSequence = [item]
    request = Dataset()
    request.RequestedProcedureID = "RP0001"
    ds.RequestAttributesSequence = [request]  # X: must be gone
    target = tmp_path / "nested.dcm"
    ds.save_as(target)
    found = _checks(target)["deid.identifying-value"]
    assert {"ReferencedSOPInstanceUID", "RequestAttributesSequence"} <= found


def test_private_elements_and_own_forms(basic_output: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(basic_output / "CT_small.dcm")
    block = ds.private_block(0x0011, "ACME RESEARCH", create=True)
    block.add_new(0x01, "LO", "anything")
    ds.save_as(tmp_path / "private.dcm")
    assert "deid.private-element" in _checks(tmp_path / "private.dcm")
    # values in the de-identifier's own forms are not residuals
    ds = pydicom.dcmread(basic_output / "CT_small.dcm")
    ds.ReferringPhysicianName = "PERSON^ABCDEFGH23"
    ds.StationName = "ANONYMIZED"
    ds.save_as(tmp_path / "own.dcm")
    assert verify_file(tmp_path / "own.dcm") == []


def test_cli_verify_without_original_exits_1(basic_output: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from radguard.cli import app

    ds = pydicom.dcmread(basic_output / "CT_small.dcm")
    ds.PatientName = "Doe^John"
    folder = tmp_path / "reviewed"
    folder.mkdir()
    ds.save_as(folder / "a.dcm")
    runner = CliRunner()
    bad = runner.invoke(app, ["deid", "verify", str(folder)])
    assert bad.exit_code == 1 and "deid.identifying-value" in bad.stdout
    assert "Doe" not in bad.stdout
    ok = runner.invoke(app, ["deid", "verify", str(basic_output)])
    assert ok.exit_code == 0, ok.stdout


def test_output_with_encrypted_attributes_verifies_clean(real_input: Path, tmp_path: Path) -> None:
    """The Encrypted Attributes Sequence (PS3.15 E.1.1, reversible protection) holds the replaced
    values as a CMS envelope: not a residual."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recipient")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    options = DeidOptions.from_names([], key=KEY, ocr=False,
                                     recipient_cert=cert.public_bytes(serialization.Encoding.PEM))
    report = deidentify_tree(real_input, tmp_path / "out", options, workers=1)
    outputs = [Path(f.output) for f in report.files if f.output]
    assert outputs and all("EncryptedAttributesSequence" in pydicom.dcmread(p) for p in outputs)
    for out in outputs:
        assert verify_file(out) == [], out.name
