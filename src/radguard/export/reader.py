"""``media open``: check, decrypt and write a plain PDI folder any viewer reads.

Order of checks, so each failure has one clear meaning:

1. the medium has ``MANIFEST.JSN`` + ``MANIFEST.SIG`` and the Ed25519 signature verifies
   (else :class:`NotAnExportMedium` / :class:`TamperedFile`);
2. every file the manifest lists is present (else :class:`MissingFile`, naming them);
3. per file: the stored bytes match the signed size and SHA-256 (else :class:`TamperedFile`) *before*
   anything is decrypted; so a later failure to decrypt means a wrong password
   (:class:`WrongPassword`) or key (:class:`WrongKey`), never a damaged file;
4. the decrypted content has its signed size, and its signed SHA-256 where the manifest lists one
   (media before 2026-11-29; now the stored digest of step 3 alone fixes the content, since CBC
   decryption under the recovered key is deterministic) (else :class:`TamperedFile`).

Output goes to a private staging folder beside FOLDER and is renamed into place only when all files
passed; on any error the staging folder is removed. An existing FOLDER is never overwritten. Files
on the medium that the manifest does not list (an ``autorun.inf`` added later...) are not copied and
are reported. The decrypted DICOM files are written, never parsed, except the DICOMDIR, read through
the bounded reader for the audit message (Data Import, PS3.15 A.5.3.5).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from radguard.errors import CryptoError
from radguard.export.cms import CertificateRecipient
from radguard.export.cms_open import Opener, open_envelope
from radguard.export.errors import (
    MissingFile,
    NotAnExportMedium,
    OpenFailed,
    TamperedFile,
    TargetExists,
    WrongKey,
)
from radguard.export.interface import OpenOptions, OpenResult
from radguard.export.manifest import MANIFEST, MAX_MANIFEST, SIGNATURE, Entry, Manifest
from radguard.export.medium import Medium, open_medium, read_all
from radguard.export.signing import is_trusted

if TYPE_CHECKING:
    from radguard.audit import AuditEmitter
    from radguard.config import Settings

__all__ = ["open_export"]

IN_MEMORY = 64 * 1024 * 1024
_REMEDY = "the medium was altered or damaged; ask the sender for a new copy"


def _opener(options: OpenOptions) -> Opener:
    key = cert = None
    if options.key_pem is not None or options.cert_pem is not None:
        if options.key_pem is None or options.cert_pem is None:
            raise WrongKey("--key and --cert go together",
                           remedy="give the private key and its certificate")
        try:
            loaded = load_pem_private_key(options.key_pem, None)
        except (ValueError, TypeError) as exc:
            raise WrongKey("the private key cannot be read (PEM, unencrypted)",
                           remedy="give an unencrypted PEM private key") from exc
        if not isinstance(loaded, RSAPrivateKey):
            raise WrongKey("the private key is not an RSA key")
        key, cert = loaded, CertificateRecipient.from_pem(options.cert_pem)
    return Opener(password=options.password, private_key=key, certificate=cert)


def _stored(medium: Medium, e: Entry) -> BinaryIO | None:
    """The stored bytes after their digest check (in memory when small); ``None`` when large and
    already checked (the caller reopens the file)."""
    if medium.size(e.path) != e.size:
        raise TamperedFile("the file's size differs from the signed manifest", subject=e.path,
                           remedy=_REMEDY)
    sha = hashlib.sha256()
    with medium.open(e.path) as fh:
        if e.size <= IN_MEMORY:
            data = fh.read(e.size + 1)
            sha.update(data)
        else:
            data = b""
            while chunk := fh.read(1024 * 1024):
                sha.update(chunk)
    if sha.hexdigest() != e.sha256:
        raise TamperedFile("the file's SHA-256 differs from the signed manifest", subject=e.path,
                           remedy=_REMEDY)
    return io.BytesIO(data) if e.size <= IN_MEMORY else None


def _write(stage: Path, e: Entry, medium: Medium, opener: Opener) -> int:
    path = stage.joinpath(*e.path.split("/"))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    src = _stored(medium, e)
    with contextlib.ExitStack() as stack:
        if src is None:
            src = stack.enter_context(medium.open(e.path))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        dst = stack.enter_context(os.fdopen(fd, "wb"))
        if e.enveloped:
            digest, size = open_envelope(src, dst, opener, e.size)
            if size != e.content_size or (e.content_sha256 is not None
                                          and digest != e.content_sha256):
                raise TamperedFile("the decrypted content differs from the signed manifest",
                                   subject=e.path, remedy=_REMEDY)
        else:
            shutil.copyfileobj(src, dst)
            size = e.size
        dst.flush()
        os.fsync(dst.fileno())
    return size


def open_export(medium_path: Path, out: Path, options: OpenOptions, settings: Settings, *,
                emitter: AuditEmitter | None = None,
                progress: Callable[[int, int, str], None] | None = None) -> OpenResult:
    """Decrypt and verify the medium at ``medium_path`` into the new folder ``out``.

    Raises
    ------
    TargetExists, NotAnExportMedium, MissingFile, TamperedFile, WrongPassword, WrongKey, OpenFailed
        Nothing was left at ``out``.
    """
    if out.exists() or out.is_symlink():
        raise TargetExists("the output folder exists; RadGuard never overwrites", subject=str(out),
                           remedy="give a new --out folder")
    opener = _opener(options)
    medium = open_medium(medium_path)
    stage: Path | None = None
    try:
        names = medium.names()
        if MANIFEST not in names or SIGNATURE not in names:
            raise NotAnExportMedium("no RadGuard manifest (MANIFEST.JSN, MANIFEST.SIG) at the root",
                                    subject=str(medium_path),
                                    remedy="open an encrypted DICOM medium written by RadGuard")
        manifest = Manifest.verified(read_all(medium, MANIFEST, MAX_MANIFEST),
                                     read_all(medium, SIGNATURE, 4096))
        missing = [e.path for e in manifest.entries if e.path not in names]
        if missing:
            raise MissingFile(f"{len(missing)} file(s) of the signed manifest are missing from "
                              f"the medium: {', '.join(missing[:5])}", subject=str(medium_path),
                              remedy="the medium is incomplete (copy error?); ask for a new one")
        if manifest.encrypted and opener.password is None and opener.private_key is None:
            raise WrongKey("the medium is encrypted", remedy="give --password-file, or --key "
                           "with --cert")
        trusted = is_trusted(settings.home_path, settings.station_name, manifest.signer_key_id)
        if options.require_trusted and not trusted:
            raise OpenFailed(f"the signer {manifest.signer_key_id} is not in this station's "
                             "trust store", subject=str(medium_path),
                             remedy="confirm the fingerprint with the sender and 'radguard keys "
                             "trust' their key, or open without --require-trusted")
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".radguard-open-", dir=out.parent))
        total = 0
        for i, e in enumerate(manifest.entries, 1):
            try:
                total += _write(stage, e, medium, opener)
            except CryptoError as exc:
                exc.subject = exc.subject or e.path
                raise
            if progress:
                progress(i, len(manifest.entries), e.path)
        for dirpath, _d, _f in os.walk(stage):
            fd = os.open(dirpath, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        if out.exists():
            raise TargetExists("the output folder appeared while opening", subject=str(out))
        _audit(emitter, settings, stage, medium_path, manifest)
        os.rename(stage, out)
        stage = None
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        medium.close()
    listed = {e.path for e in manifest.entries} | {MANIFEST, SIGNATURE}
    return OpenResult(str(out), manifest.export_id, manifest.medium_index, manifest.medium_count,
                      len(manifest.entries), total, manifest.encrypted, manifest.signer_key_id,
                      trusted, tuple(sorted(names - listed)))


def _audit(emitter: AuditEmitter | None, settings: Settings, stage: Path, medium: Path,
           manifest: Manifest) -> None:
    """Data Import (110107) naming the patients and studies of the DICOMDIR, if it is sound."""
    if emitter is None:
        return
    from radguard.audit.builders import data_import
    from radguard.dicomio import open_path, walk

    patients: dict[str, None] = {}
    studies: dict[str, None] = {}
    dicomdir = stage / "DICOMDIR"
    if dicomdir.exists():
        src = open_path(dicomdir)
        try:
            sound = walk(src).completed
        finally:
            src.close()
        if sound:
            import pydicom

            for rec in pydicom.dcmread(dicomdir).get("DirectoryRecordSequence", []):
                if rec.get("DirectoryRecordType") == "PATIENT" and rec.get("PatientID"):
                    patients[str(rec.PatientID)] = None
                if rec.get("DirectoryRecordType") == "STUDY" and rec.get("StudyInstanceUID"):
                    studies[str(rec.StudyInstanceUID)] = None
    emitter.emit(data_import(
        user=settings.operator_name, station=settings.station_name,
        media_id=f"{medium.name} (export {manifest.export_id} {manifest.medium_index}/"
                 f"{manifest.medium_count})",
        patient_ids=list(patients), study_uids=list(studies), site=settings.site or None,
        description="encrypted export medium opened" if manifest.encrypted else
        "export medium opened"))
