"""The attribute pass beyond the table: depth, private, overlays, pseudonyms, dates, marks, types."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radguard.deid import DeidOptionError, DeidOptions, deidentify_dataset, load_mapping
from radguard.deid.errors import DeidKeyError, MappingFileError

KEY = b"engine-test-key-0123456789abcdef"
CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def _patient(pid: str = "PID-12345", name: str = "Smith^Alice") -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.9.1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.9.2"
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = "19700302"
    ds.StudyDate = "20230415"
    ds.StudyDescription = "CT chest for Smith"
    ds.Manufacturer = "ACME"
    return ds


def _run(ds: Dataset, *names: str, **settings: object) -> tuple[Dataset, object]:
    out = copy.deepcopy(ds)
    changes = deidentify_dataset(out, DeidOptions.from_names(names, key=KEY, **settings))
    return out, changes


def test_attributes_are_cleaned_at_any_depth() -> None:
    ds = _patient()
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.9.77"
    inner.PatientName = "Smith^Alice"
    middle = Dataset()
    middle.ReferencedImageSequence = Sequence([inner])
    outer = Dataset()
    outer.SourceImageSequence = Sequence([middle])
    ds.ReferencedSeriesSequence = Sequence([outer])
    out, _ = _run(ds)
    deep = out.ReferencedSeriesSequence[0].SourceImageSequence[0].ReferencedImageSequence[0]
    assert deep.ReferencedSOPInstanceUID.startswith("2.25.")
    assert "PatientName" not in deep or str(deep.PatientName) != "Smith^Alice"


def test_uids_are_keyed_and_consistent_across_runs_but_not_across_keys() -> None:
    ds = _patient()
    a, _ = _run(ds)
    b, _ = _run(ds)
    other = copy.deepcopy(ds)
    deidentify_dataset(other, DeidOptions.from_names([], key=b"another-key-0123456789abcdef"))
    assert a.StudyInstanceUID == b.StudyInstanceUID != other.StudyInstanceUID
    assert a.StudyInstanceUID.startswith("2.25.") and len(a.StudyInstanceUID) <= 64
    assert a.SOPInstanceUID != a.StudyInstanceUID


def test_patient_gets_keyed_pseudonym_or_mapped_one(tmp_path: Path) -> None:
    out, _ = _run(_patient())
    assert out.PatientID.startswith("RG") and out.PatientID != "PID-12345"
    assert str(out.PatientName) == "PSEUDO^" + out.PatientID
    mapping = tmp_path / "map.csv"
    mapping.write_text("PatientID,PseudonymID,PseudonymName\nPID-12345,SUBJ-001,Subject^One\n")
    out, _ = _run(_patient(), mapping=load_mapping(mapping))
    assert (out.PatientID, str(out.PatientName)) == ("SUBJ-001", "Subject^One")


def test_bad_mapping_file_names_the_row(tmp_path: Path) -> None:
    mapping = tmp_path / "map.csv"
    mapping.write_text("PatientID,PseudonymID\nPID-1,\n")
    with pytest.raises(MappingFileError, match="row 2"):
        load_mapping(mapping)


def test_modified_dates_shift_per_patient_by_a_keyed_offset() -> None:
    a, _ = _run(_patient(), "retain-long-modified-dates")
    b, _ = _run(_patient(), "retain-long-modified-dates")
    other, _ = _run(_patient(pid="OTHER-9"), "retain-long-modified-dates")
    shift = (dt.datetime.strptime(a.StudyDate, "%Y%m%d") - dt.datetime(2023, 4, 15)).days
    birth = (dt.datetime.strptime(a.PatientBirthDate, "%Y%m%d") if a.get("PatientBirthDate")
             else None)
    assert -365 <= shift <= -1
    assert a.StudyDate == b.StudyDate
    assert other.StudyDate != a.StudyDate or other.PatientID != a.PatientID
    assert a.LongitudinalTemporalInformationModified == "MODIFIED"
    assert birth is None or (birth - dt.datetime(1970, 3, 2)).days == shift


def test_full_and_modified_dates_exclude_each_other() -> None:
    with pytest.raises(DeidOptionError, match="not both"):
        DeidOptions.from_names(["retain-full-dates", "retain-modified-dates"], key=KEY)
    with pytest.raises(DeidOptionError, match="unknown"):
        DeidOptions.from_names(["retain-everything"], key=KEY)
    with pytest.raises(DeidKeyError):
        DeidOptions.from_names([], key=b"short")


def test_method_codes_follow_the_options_used() -> None:
    out, changes = _run(_patient(), "tcia")
    codes = {item.CodeValue for item in out.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113105", "113107", "113108", "113109", "113111"}
    assert all(item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence)
    assert out.PatientIdentityRemoved == "YES"
    assert changes.applied == ("clean-descriptors", "retain-long-modified-dates",  # type: ignore[attr-defined]
                               "retain-patient-characteristics", "retain-device-identity",
                               "retain-safe-private")
    basic, _ = _run(_patient())
    assert [i.CodeValue for i in basic.DeidentificationMethodCodeSequence] == ["113100"]
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_original_attributes_sequence_is_removed() -> None:
    ds = _patient()
    item = Dataset()
    item.ModifiedAttributesSequence = Sequence([Dataset()])
    ds.OriginalAttributesSequence = Sequence([item])
    out, _ = _run(ds)
    assert "OriginalAttributesSequence" not in out


def test_private_removed_unless_safe_and_retained() -> None:
    ds = _patient()
    block = ds.private_block(0x7053, "Philips PET Private Group", create=True)
    block.add_new(0x00, "DS", "1.5")  # SUV factor: safe (Table E.3.10-1)
    block.add_new(0x77, "LO", "Smith^Alice")  # not in the table
    other = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    other.add_new(0x10, "OB", b"secret")
    basic, _ = _run(ds)
    assert not any(e.tag.is_private for e in basic.iterall())
    kept, _ = _run(ds, "retain-safe-private")
    private = {int(e.tag) for e in kept.iterall() if e.tag.is_private}
    assert private == {0x70530010, 0x70531000}


def test_overlays_follow_clean_graphics() -> None:
    ds = _patient()
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"\x00\x00")
    ds.add_new(0x60004000, "LT", "drawn by Dr Smith")
    basic, _ = _run(ds)
    assert not [e for e in basic if e.tag.group == 0x6000]
    graphics, _ = _run(ds, "clean-graphics")
    assert 0x60003000 in graphics and 0x60000010 in graphics
    assert "Smith" not in str(graphics[0x60004000].value)


def test_clean_descriptors_masks_identifiers_in_free_text() -> None:
    out, _ = _run(_patient(), "clean-descriptors")
    assert "StudyDescription" in out
    assert "Smith" not in out.StudyDescription and out.StudyDescription.startswith("CT chest")
    basic, _ = _run(_patient())
    assert "StudyDescription" not in basic


def test_compound_actions_take_the_iod_type_into_account() -> None:
    ds = _patient()
    ds.ContentDate = "20230415"
    ds.DeviceSerialNumber = "SN-998877"
    ds.AcquisitionDateTime = "20230415101010"
    ct, _ = _run(ds)
    assert "ContentDate" in ct and not ct.ContentDate  # Type 2 -> Z
    assert "DeviceSerialNumber" not in ct  # Type 3 -> X
    assert "AcquisitionDateTime" not in ct
    ds.SOPClassUID = ENHANCED_CT
    enhanced, _ = _run(ds)
    assert enhanced.ContentDate not in ("", None, "20230415")  # Type 1 -> D
    assert enhanced.DeviceSerialNumber not in ("", "SN-998877")
    assert enhanced.AcquisitionDateTime not in ("", "20230415101010")


def test_sex_neutered_becomes_empty_for_animals() -> None:
    ds = _patient()
    ds.PatientSexNeutered = "ALTERED"
    human, _ = _run(ds)
    assert "PatientSexNeutered" not in human
    ds.PatientSpeciesDescription = "canine"
    animal, _ = _run(ds)
    assert "PatientSexNeutered" in animal and not animal.PatientSexNeutered


def test_content_sequence_keeps_structure_but_not_text() -> None:
    ds = _patient()
    item = Dataset()
    item.ValueType = "TEXT"
    item.RelationshipType = "CONTAINS"
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121071", "DCM", "Finding"
    item.ConceptNameCodeSequence = Sequence([code])
    item.TextValue = "Mrs Smith, ID PID-12345, seen 2023-04-15"
    ds.ContentSequence = Sequence([item])
    basic, _ = _run(ds)
    got = basic.ContentSequence[0]
    assert got.ConceptNameCodeSequence[0].CodeValue == "121071"
    assert "Smith" not in got.TextValue
    cleaned, _ = _run(ds, "clean-structured-content")
    text = cleaned.ContentSequence[0].TextValue
    assert "Smith" not in text and "PID-12345" not in text and "2023-04-15" not in text
    assert text.startswith("Mrs ")


def test_encrypted_attributes_sequence_round_trip(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    from radguard.deid import decrypt_attributes

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "research-recipient")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    out, _ = _run(_patient(), recipient_cert=pem)
    item = out.EncryptedAttributesSequence[0]
    assert item.EncryptedContentTransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert b"Smith" not in bytes(item.EncryptedContent)
    originals = decrypt_attributes(item, pem, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    assert str(originals.PatientName) == "Smith^Alice" and originals.PatientID == "PID-12345"


def test_changes_never_carry_values() -> None:
    _, changes = _run(_patient(), "clean-descriptors")
    text = repr(changes.to_dict())  # type: ignore[attr-defined]
    assert "Smith" not in text and "PID-12345" not in text and "19700302" not in text
    assert any(c["name"] == "Patient's Name" for c in changes.to_dict()["changes"])  # type: ignore[attr-defined]


def test_openssl_opens_the_encrypted_attributes(tmp_path: Path) -> None:
    """Interoperability: the envelope is plain CMS that ``openssl cms -decrypt`` opens."""
    import subprocess

    from tests.support.peers import require

    openssl = require("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=recipient", "-days", "1"], check=True,
                   capture_output=True)
    out, _ = _run(_patient(), recipient_cert=cert.read_bytes())
    envelope = tmp_path / "content.der"
    envelope.write_bytes(bytes(out.EncryptedAttributesSequence[0].EncryptedContent))
    proc = subprocess.run([openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in",
                           str(envelope), "-recip", str(cert), "-inkey", str(key)],
                          capture_output=True, check=True)
    assert b"Smith^Alice" in proc.stdout and b"PID-12345" in proc.stdout


def test_html_report_renders_changes(tmp_path: Path) -> None:
    import pydicom

    from radguard.deid import deidentify_tree
    from radguard.formats.html import HtmlFormat

    src = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    report = deidentify_tree(src, tmp_path / "ct.dcm", DeidOptions.from_names([], key=KEY))
    html = HtmlFormat(template="deid.html.j2").render(report)
    assert "Patient&#39;s Name" in html and "Basic Profile" in html and "<script" not in html
