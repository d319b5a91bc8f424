"""Fixtures of the export tests: a throw-away RSA recipient, a RadGuard home, and a small set of real
DICOM files (pydicom's test files) with distinct, recognisable patient names and IDs."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from radguard.config import Settings, load_settings

SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb.dcm", "JPEG2000.dcm", "rtplan.dcm")
PASSWORD = "Quartz-Lantern-47-Orbit"


@dataclass(frozen=True)
class Recipient:
    key: Path
    cert: Path


def make_recipient(folder: Path, name: str = "Dr Referrer") -> Recipient:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    kp, cp = folder / f"{name.replace(' ', '_')}.key.pem", folder / f"{name.replace(' ', '_')}.pem"
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption()))
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Recipient(kp, cp)


@pytest.fixture(scope="session")
def recipient(tmp_path_factory: pytest.TempPathFactory) -> Recipient:
    return make_recipient(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=str(tmp_path / "home"), operator="tech1")


@dataclass(frozen=True)
class Sources:
    folder: Path
    names: tuple[str, ...]
    ids: tuple[str, ...]

    def files(self) -> list[Path]:
        return sorted(self.folder.rglob("*.dcm"))


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    """Real test files, each given a patient of its own (two files share one study)."""
    folder = tmp_path_factory.mktemp("sources")
    names, ids = [], []
    study = generate_uid()
    for i, name in enumerate(SOURCES):
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.PatientName = f"Zebedee^Quintus{i}"
        ds.PatientID = f"PID-7731-{i:03d}"
        if i < 2:
            ds.StudyInstanceUID = study
            ds.PatientName, ds.PatientID = "Zebedee^Quintus0", "PID-7731-000"
        sub = folder / f"s{i}"
        sub.mkdir()
        ds.save_as(sub / f"{name}", enforce_file_format=True)
        names.append(str(ds.PatientName))
        ids.append(str(ds.PatientID))
    (folder / "notes.txt").write_text("not DICOM")
    return Sources(folder, tuple(dict.fromkeys(names)), tuple(dict.fromkeys(ids)))
