"""``media export``: select, (de-identify), lay out, envelope, sign, write folder or ISO, audit.

Flow per medium (PS3.15 D.1 / PS3.10 7.4, IHE PDI):

1. every DICOM file is read once, streamed through AES-256-CBC into its CMS envelope under its 8.3
   file ID, hashing the content and the stored bytes on the way (1 MiB chunks; a de-identified file
   is re-encoded in memory, never written in plain);
2. the DICOMDIR is built from the files' headers and enveloped too (it names patients);
3. README.TXT, INDEX.HTM (no patient data when encrypted), the manifest and its signature;
4. the medium is assembled in a private staging folder (mode 0700, beside the target so the final
   rename is atomic) that holds only ciphertext, then renamed into place or turned into an ISO image
   (written to a temporary name, fsynced, renamed). On any failure every staging folder and every
   medium already written by this run is removed: an export is all or nothing.

An Export audit message (PS3.15 A.5.3.4: EventID 110106, Destination Media role, studies with
life cycle 10 and Encrypted) is emitted per medium, or one failure message if the export fails.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset

from radguard.export.cms import Digests, Recipients, envelope
from radguard.export.dicomdir import Leaf, build_dicomdir
from radguard.export.errors import ExportError, TargetExists
from radguard.export.interface import ExportOptions, ExportResult, MediumResult
from radguard.export.layout import MediumPlan, PlannedFile, plan_media
from radguard.export.manifest import MANIFEST, SIGNATURE, Entry, Manifest
from radguard.export.medium import write_iso
from radguard.export.passwords import check_password
from radguard.export.policy import capacity, policy
from radguard.export.pwri import PasswordKek
from radguard.export.selection import Selection, select
from radguard.export.signing import Signer, load_signer
from radguard.export.texts import MediumFacts, index_htm, readme_txt

if TYPE_CHECKING:
    from radguard.audit import AuditEmitter
    from radguard.config import Settings

__all__ = ["export_media", "targets"]

Progress = Callable[[int, int, str], None]
CHUNK = 1024 * 1024


def targets(out: Path, count: int) -> list[Path]:
    """Output paths: ``out`` itself, or ``NAME-1of3.iso``... when the export is split."""
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}of{count}{out.suffix}") for i in range(1, count + 1)]


def _deid_hook(names: Sequence[str], key: bytes) -> Callable[[Dataset], Dataset]:
    """The de-identification engine of :mod:`radguard.deid` (PS3.15 Annex E), if installed."""
    try:
        deid = importlib.import_module("radguard.deid")
        deid_options, deidentify_dataset = deid.DeidOptions, deid.deidentify_dataset
    except (ImportError, AttributeError) as exc:
        raise ExportError("de-identification (--deid) is not available in this installation",
                          remedy="install RadGuard with its radguard.deid engine, or export "
                          "without --deid") from exc
    options = deid_options.from_names(list(names), key=key)

    def run(ds: Dataset) -> Dataset:
        result = deidentify_dataset(ds, options)
        if isinstance(result, Dataset):
            return result
        inner = getattr(result, "dataset", None)
        return inner if isinstance(inner, Dataset) else ds

    return run


class _Out:
    """A file of the staging folder, created exclusively (0600); fsynced on close when it is part
    of the final medium (a folder target), not when it only feeds an ISO image."""

    def __init__(self, stage: Path, rel: str, durable: bool = True):
        self.durable = durable
        path = staged(stage, rel, flat=not durable)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fh = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    def __enter__(self) -> BinaryIO:
        return self.fh

    def __exit__(self, *exc: object) -> None:
        self.fh.flush()
        if self.durable:
            os.fsync(self.fh.fileno())
        self.fh.close()


def staged(stage: Path, rel: str, *, flat: bool) -> Path:
    """Where file ``rel`` of a medium is staged: at its place in a folder target, or under a flat
    name when it only feeds an ISO image (no directory tree to create and remove)."""
    return stage / rel.replace("/", "_") if flat else stage.joinpath(*rel.split("/"))


def _copy(src: BinaryIO, size: int, dst: BinaryIO) -> Digests:
    sha, n = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        sha.update(chunk)
        dst.write(chunk)
        n += len(chunk)
    if n != size:
        raise ExportError(f"expected {size} bytes, read {n}",
                          remedy="the file changed during the export; run it again")
    return Digests(sha.hexdigest(), n, sha.hexdigest(), n)


@dataclass
class _Job:
    options: ExportOptions
    recipients: Recipients | None
    signer: Signer
    settings: Settings
    deid: Callable[[Dataset], Dataset] | None
    export_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))

    def store(self, stage: Path, rel: str, src: BinaryIO, size: int) -> Entry:
        with _Out(stage, rel, not self.options.iso) as dst:
            if self.recipients is None:
                d = _copy(src, size, dst)
                return Entry(rel, d.stored_size, d.stored_sha256, False)
            d = envelope(src, size, dst, self.recipients)
        return Entry(rel, d.stored_size, d.stored_sha256, True, d.content_size, d.content_sha256)

    def one(self, stage: Path, pf: PlannedFile) -> tuple[Leaf, Entry]:
        path = pf.source.path
        if self.deid is not None:
            ds = self.deid(pydicom.dcmread(path))
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            data = buf.getvalue()
            header = ds
            entry = self.store(stage, pf.rel, io.BytesIO(data), len(data))
        else:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            with open(path, "rb") as src:
                entry = self.store(stage, pf.rel, src, pf.source.size)
        ts = str(header.file_meta.TransferSyntaxUID)
        return Leaf(pf.file_id, header, ts), entry

    def facts(self, plan: MediumPlan, total: int, leaves: Sequence[Leaf]) -> MediumFacts:
        rows: list[dict[str, str]] = []
        if self.recipients is None:
            seen: dict[str, dict[str, str]] = {}
            for leaf in leaves:
                h = leaf.header
                row = seen.setdefault(str(h.StudyInstanceUID), {
                    "patient": str(h.get("PatientName", "")), "date": str(h.get("StudyDate", "")),
                    "description": str(h.get("StudyDescription", "")), "files": "0"})
                row["files"] = str(int(row["files"]) + 1)
            rows = list(seen.values())
        r = self.recipients
        return MediumFacts(
            plan.index, plan.count, self.created, self.settings.site, self.settings.station_name,
            len(plan.study_uids), len(plan.files), f"{total / 1e6:.1f}", r is not None,
            r is not None and r.password is not None,
            tuple(c.fingerprint for c in r.certificates) if r else (), self.signer.key_id,
            plan.files[0].rel, tuple(rows))

    def medium(self, plan: MediumPlan, target: Path, progress: Progress | None,
               done: list[int], total_files: int) -> MediumResult:
        stage = Path(tempfile.mkdtemp(prefix=".radguard-export-", dir=target.parent))
        try:
            leaves, entries = [], []
            for pf in plan.files:
                leaf, entry = self.one(stage, pf)
                leaves.append(leaf)
                entries.append(entry)
                done[0] += 1
                if progress:
                    progress(done[0], total_files, pf.rel)
            dicomdir = build_dicomdir(leaves)
            entries.append(self.store(stage, "DICOMDIR", io.BytesIO(dicomdir), len(dicomdir)))
            facts = self.facts(plan, sum(e.size for e in entries), leaves)
            texts = [("README.TXT", readme_txt(facts))]
            if self.options.index_html:
                texts.append(("INDEX.HTM", index_htm(facts)))
            for rel, data in texts:
                with _Out(stage, rel, not self.options.iso) as fh:
                    fh.write(data)
                entries.append(Entry(rel, len(data), hashlib.sha256(data).hexdigest(), False))
            body, sig = self.manifest(plan, entries).signed(self.signer)
            for rel, data in ((MANIFEST, body), (SIGNATURE, sig)):
                with _Out(stage, rel, not self.options.iso) as fh:
                    fh.write(data)
            names = [e.path for e in entries] + [MANIFEST, SIGNATURE]
            if self.options.iso:
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                try:
                    write_iso(stage, names, tmp, self.options.label,
                              lambda rel: staged(stage, rel, flat=True))
                    _check_fits(tmp.stat().st_size, self.options.media, target)
                    os.rename(tmp, target)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                shutil.rmtree(stage)
                size = target.stat().st_size
            else:
                _fsync_tree(stage)
                os.rename(stage, target)
                size = sum(e.size for e in entries) + len(body) + len(sig)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return MediumResult(str(target), plan.index, plan.count, len(plan.files),
                            len(plan.study_uids), size)

    def manifest(self, plan: MediumPlan, entries: list[Entry]) -> Manifest:
        r = self.recipients
        recipients: dict[str, Any] = {
            "certificates": [c.fingerprint for c in r.certificates] if r else [],
            "password": bool(r and r.password is not None),
            "key_transport": r.transport if r else None,
            "content_encryption": "aes256-cbc" if r else None,
        }
        return Manifest(self.export_id, self.created, plan.index, plan.count, r is not None,
                        recipients, self.signer.key_id,
                        base64.b64encode(self.signer.public_raw).decode("ascii"), tuple(entries))


def _check_fits(size: int, media: str, target: Path) -> None:
    cap = capacity(media).bytes
    if cap is not None and size > cap:
        raise ExportError(f"the image is {size} bytes, more than a {media} holds ({cap})",
                          subject=str(target), remedy="choose a larger medium (--media dvd/usb)")


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, _files in os.walk(root):
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _recipients(options: ExportOptions) -> Recipients | None:
    if options.password is not None and options.check_strength:
        check_password(options.password)
    if not options.certificates and options.password is None:
        if options.encrypt:
            raise ExportError("an encrypted export needs --recipient CERT.pem or a password",
                              remedy="give a recipient certificate or a password, or ask for an "
                              "unencrypted medium explicitly (--no-encrypt)")
        return None
    kek = None
    if options.password is not None:
        pb = policy()["pbkdf2"]
        kek = PasswordKek.derive(options.password, iterations=options.pbkdf2_iterations
                                 or int(pb["iterations"]), prf=str(pb["prf"]))
    return Recipients(options.certificates, kek, options.transport)


def _audit(emitter: AuditEmitter | None, settings: Settings, selection: Selection,
           plans: Sequence[MediumPlan], paths: Sequence[Path], options: ExportOptions,
           encrypted: bool, failure: str | None = None) -> None:
    if emitter is None:
        return
    from radguard.audit.builders import data_export
    from radguard.audit.message import Outcome

    by_uid = {f.sop_uid: f for f in selection.files}
    for plan, path in zip(plans, paths, strict=True):
        sops: dict[str, dict[str, int]] = {}
        patients: dict[str, None] = {}
        for pf in plan.files:
            f = by_uid[pf.source.sop_uid]
            per = sops.setdefault(f.study_uid, {})
            per[f.sop_class] = per.get(f.sop_class, 0) + 1
            patients[f.patient_id or "UNKNOWN"] = None
        emitter.emit(data_export(
            user=settings.operator_name, station=settings.station_name,
            media_id=f"{path.name} ({options.label} {plan.index}/{plan.count})",
            patient_ids=list(patients), study_uids=list(plan.study_uids), encrypted=encrypted,
            anonymized=bool(options.deid), media_type=capacity(options.media).media_type,
            sop_classes=sops, site=settings.site or None,
            outcome=Outcome.SUCCESS if failure is None else Outcome.SERIOUS_FAILURE,
            description=failure))


def export_media(inputs: Sequence[Path], out: Path, options: ExportOptions, settings: Settings,
                 *, emitter: AuditEmitter | None = None,
                 progress: Progress | None = None) -> ExportResult:
    """Export ``inputs`` (DICOM files or folders) to ``out`` (a folder, or an ISO image).

    Raises
    ------
    TargetExists
        ``out`` (or one of its split names) exists.
    WeakPassword, NothingToExport, DoesNotFit, ExportError, CryptoError
        Nothing was written.
    """
    recipients = _recipients(options)
    selection = select(inputs, options.limits, progress)
    plans = plan_media(selection.files, capacity(options.media).usable())
    paths = targets(out, len(plans))
    for p in paths:
        if p.exists() or p.is_symlink():
            raise TargetExists("the output exists; RadGuard never overwrites", subject=str(p),
                               remedy="choose a new --out path or remove the old one")
    out.parent.mkdir(parents=True, exist_ok=True)
    if capacity(options.media).bytes is None:
        need = sum(p.estimated_bytes for p in plans)
        free = shutil.disk_usage(out.parent).free
        if need > free:
            raise ExportError(f"the export needs about {need} bytes, {free} are free",
                              subject=str(out.parent), remedy="free space or use another target")
    deid = None
    if options.deid:
        deid = _deid_hook(options.deid, options.deid_key or os.urandom(32))
    job = _Job(options, recipients, load_signer(settings.home_path, settings.station_name),
               settings, deid)
    written: list[MediumResult] = []
    done = [0]
    try:
        for plan, path in zip(plans, paths, strict=True):
            written.append(job.medium(plan, path, progress, done, len(selection.files)))
    except BaseException as exc:
        for m in written:
            p = Path(m.path)
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        with contextlib.suppress(Exception):
            _audit(emitter, settings, selection, plans, paths, options, recipients is not None,
                   failure=f"export failed: {type(exc).__name__}")
        raise
    _audit(emitter, settings, selection, plans, paths, options, recipients is not None)
    return ExportResult(
        job.export_id, tuple(written), selection.skipped, recipients is not None, deid is not None,
        len(selection.files), len({f.study_uid for f in selection.files}), job.signer.key_id,
        job.manifest(plans[0], []).recipients)
