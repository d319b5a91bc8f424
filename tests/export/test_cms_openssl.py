"""CMS EnvelopedData (PS3.10 7.4, RFC 5652, RFC 3211) against the reference implementation, OpenSSL.

Given a real DICOM file, when RadGuard envelopes it for a certificate and/or a password, then
``openssl cms -decrypt -inform DER`` gives back the exact bytes; and RadGuard opens what
``openssl cms -encrypt`` writes.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydicom.data import get_testdata_file

from radguard.export import (
    CertificateRecipient,
    EnvelopeError,
    Opener,
    Recipients,
    WrongKey,
    WrongPassword,
    open_envelope,
)
from radguard.export.cms import envelope_bytes
from radguard.export.pwri import PasswordKek, kek_unwrap, kek_wrap
from tests.export.conftest import PASSWORD, Recipient, make_recipient
from tests.support.peers import require

SOURCE = Path(get_testdata_file("CT_small.dcm")).read_bytes()


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([require("openssl"), "cms", *args], capture_output=True, timeout=60)


def _kek() -> PasswordKek:
    return PasswordKek.derive(PASSWORD, iterations=2048)


@pytest.mark.parametrize("transport", ["rsa-oaep", "rsa-pkcs1v15"])
def test_openssl_opens_certificate_recipient(tmp_path: Path, recipient: Recipient,
                                             transport: str) -> None:
    cert = CertificateRecipient.from_pem(recipient.cert.read_bytes())
    data, digests = envelope_bytes(SOURCE, Recipients((cert,), transport=transport))  # type: ignore[arg-type]
    (tmp_path / "f.p7m").write_bytes(data)
    r = _openssl("-decrypt", "-inform", "DER", "-in", str(tmp_path / "f.p7m"), "-recip",
                 str(recipient.cert), "-inkey", str(recipient.key), "-out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o").read_bytes() == SOURCE
    assert digests.stored_size == len(data) and digests.content_size == len(SOURCE)


def test_openssl_opens_password_recipient_and_refuses_a_wrong_one(tmp_path: Path) -> None:
    data, _ = envelope_bytes(SOURCE, Recipients(password=_kek()))
    (tmp_path / "f.p7m").write_bytes(data)
    ok = _openssl("-decrypt", "-inform", "DER", "-in", str(tmp_path / "f.p7m"),
                  "-pwri_password", PASSWORD, "-out", str(tmp_path / "o"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "o").read_bytes() == SOURCE
    bad = _openssl("-decrypt", "-inform", "DER", "-in", str(tmp_path / "f.p7m"),
                   "-pwri_password", PASSWORD + "x", "-out", str(tmp_path / "o2"))
    assert bad.returncode != 0


def test_both_recipients_in_one_envelope(tmp_path: Path, recipient: Recipient) -> None:
    cert = CertificateRecipient.from_pem(recipient.cert.read_bytes())
    data, _ = envelope_bytes(SOURCE, Recipients((cert,), _kek()))
    (tmp_path / "f.p7m").write_bytes(data)
    for args in (["-recip", str(recipient.cert), "-inkey", str(recipient.key)],
                 ["-pwri_password", PASSWORD]):
        r = _openssl("-decrypt", "-inform", "DER", "-in", str(tmp_path / "f.p7m"), *args,
                     "-out", str(tmp_path / "o"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "o").read_bytes() == SOURCE


@pytest.mark.parametrize("stream", [False, True])
def test_radguard_opens_what_openssl_writes(tmp_path: Path, recipient: Recipient,
                                            stream: bool) -> None:
    src = tmp_path / "src.dcm"
    src.write_bytes(SOURCE)
    extra = ["-stream"] if stream else []
    for args, opener in (
        ([str(recipient.cert)], Opener(private_key=load_pem_private_key(  # type: ignore[arg-type]
            recipient.key.read_bytes(), None), certificate=CertificateRecipient.from_pem(
            recipient.cert.read_bytes()))),
        (["-pwri_password", PASSWORD], Opener(password=PASSWORD)),
    ):
        out = tmp_path / "e.p7m"
        r = _openssl("-encrypt", "-aes256", "-binary", "-outform", "DER", *extra, "-in", str(src),
                     "-out", str(out), *args)
        assert r.returncode == 0, r.stderr
        data = out.read_bytes()
        dst = io.BytesIO()
        open_envelope(io.BytesIO(data), dst, opener, len(data))
        assert dst.getvalue() == SOURCE


def test_wrong_password_wrong_key_and_garbage_are_told_apart(tmp_path: Path,
                                                             recipient: Recipient) -> None:
    cert = CertificateRecipient.from_pem(recipient.cert.read_bytes())
    data, _ = envelope_bytes(SOURCE, Recipients((cert,), _kek()))
    with pytest.raises(WrongPassword):
        open_envelope(io.BytesIO(data), io.BytesIO(), Opener(password="not the password"),
                      len(data))
    other = make_recipient(tmp_path / "other", "Someone Else")
    with pytest.raises(WrongKey, match="no recipient"):
        open_envelope(io.BytesIO(data), io.BytesIO(), Opener(
            private_key=load_pem_private_key(other.key.read_bytes(), None),  # type: ignore[arg-type]
            certificate=CertificateRecipient.from_pem(other.cert.read_bytes())), len(data))
    with pytest.raises(EnvelopeError):
        open_envelope(io.BytesIO(data[:200]), io.BytesIO(), Opener(password=PASSWORD), 200)
    with pytest.raises(EnvelopeError):
        open_envelope(io.BytesIO(SOURCE), io.BytesIO(), Opener(password=PASSWORD), len(SOURCE))


def test_rfc3211_wrap_round_trip_and_check_bytes() -> None:
    kek, iv, cek = bytes(range(32)), bytes(16), bytes(range(100, 132))
    wrapped = kek_wrap(kek, iv, cek)
    assert len(wrapped) == 48  # 1 + 3 + 32 = 36 bytes, padded to whole blocks
    assert kek_unwrap(kek, iv, wrapped) == cek
    with pytest.raises(WrongPassword):
        kek_unwrap(bytes(32), iv, wrapped)


def test_weak_or_foreign_certificates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvelopeError, match="PEM"):
        CertificateRecipient.from_pem(b"not a certificate")
    key = tmp_path / "ec.key"
    crt = tmp_path / "ec.pem"
    subprocess.run([require("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-subj", "/CN=ec", "-days", "2"], check=True, capture_output=True)
    with pytest.raises(EnvelopeError, match="RSA"):
        CertificateRecipient.from_pem(crt.read_bytes())
