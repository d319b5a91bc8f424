"""``media export``: select, (de-identify), lay out, envelope, sign, write folder or ISO, audit.

Flow (PS3.15 D.1 / PS3.10 7.4, IHE PDI):

1. every input file is read once, on a process pool over the cores
   (:func:`radguard.engine.run_shared`, :mod:`radguard.export.prepare`): walked by the bounded
   reader, judged, and the same bytes streamed through AES-256-CBC into a CMS envelope, hashing the
   stored bytes on the way (a de-identified file is re-encoded in memory, never written in plain);
   the envelope goes to a private staging folder (mode 0700, beside the target so the final
   renames are atomic): one file per input for a folder target, or straight into the ISO image
   being built (:mod:`radguard.export.iso9660`) for an ISO target; the DICOMDIR record values come
   from that walk;
2. the selected files are laid out on media (:mod:`radguard.export.layout`) under 8.3 file IDs;
3. per medium: the DICOMDIR is built from the record values and enveloped too (it names
   patients); README.TXT, INDEX.HTM (no patient data when encrypted), the manifest and its
   signature; a folder medium is assembled in its own staging folder that holds only ciphertext and
   renamed into place; an ISO image gets its directories (planned from the names and written,
   all but the roots, by a forked process while this one makes the small files:
   :class:`radguard.export.iso9660.Directories`, :func:`radguard.export.image.beside`) and the
   small files appended, is fsynced (its write-out started during step 1,
   :mod:`radguard.export.writeback`) and linked to its name without replacing anything.

On any failure every staging folder and every medium already written by this run is removed: an
export is all or nothing. An Export audit message (PS3.15 A.5.3.4: EventID 110106, Destination
Media role, studies with life cycle 10 and Encrypted) is emitted per medium, or one failure message
if the export fails.
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
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from radguard.engine import run_shared
from radguard.export.cms import Recipients, envelope
from radguard.export.dicomdir import (
    PATIENT_NAME,
    STUDY_DATE,
    STUDY_DESCRIPTION,
    STUDY_UID,
    Leaf,
    build_dicomdir,
    display,
)
from radguard.export.errors import ExportError, NothingToExport, TargetExists
from radguard.export.image import add_bytes, add_envelope, beside, blank, copy_extent, publish
from radguard.export.interface import ExportOptions, ExportResult, MediumResult
from radguard.export.iso9660 import MAX_FILE, SECTOR, Directories, IsoFile, create_image
from radguard.export.layout import FIXED, MediumPlan, estimate_size, plan_media
from radguard.export.manifest import MANIFEST, SIGNATURE, Entry, Manifest
from radguard.export.passwords import check_password
from radguard.export.policy import capacity, policy
from radguard.export.prepare import FileJob, Prepared, close_image, image_fd, prepare
from radguard.export.pwri import PasswordKek
from radguard.export.selection import SelectedFile, Selection, Skipped, candidates
from radguard.export.signing import Signer, load_signer
from radguard.export.texts import MediumFacts, index_htm, readme_txt
from radguard.export.writeback import Writeback

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from radguard.audit import AuditEmitter
    from radguard.config import Settings

__all__ = ["export_media", "targets"]

Progress = Callable[[int, int, str], None]


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
    from pydicom.dataset import Dataset

    def run(ds: Dataset) -> Dataset:
        result = deidentify_dataset(ds, options)
        if isinstance(result, Dataset):
            return result
        inner = getattr(result, "dataset", None)
        return inner if isinstance(inner, Dataset) else ds

    return run


class _Out:
    """A file of a folder medium's staging tree, created exclusively (0600), fsynced on close."""

    def __init__(self, stage: Path, rel: str):
        path = stage.joinpath(*rel.split("/"))
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fh = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    def __enter__(self) -> BinaryIO:
        return self.fh

    def __exit__(self, *exc: object) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()


@dataclass
class _Job:
    options: ExportOptions
    recipients: Recipients | None
    signer: Signer
    settings: Settings
    work: Path  # the staging folder of the prepared files
    prepared: dict[str, Prepared]  # by SOP Instance UID
    export_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M"))

    image: Path | None = None  # ISO target: the image the workers wrote the envelopes into

    def store(self, stage: Path, rel: str, data: bytes) -> Entry:
        with _Out(stage, rel) as dst:
            if self.recipients is None:
                dst.write(data)
                return Entry(rel, len(data), hashlib.sha256(data).hexdigest(), False)
            d = envelope(io.BytesIO(data), len(data), dst, self.recipients)
        return Entry(rel, d.stored_size, d.stored_sha256, True, d.content_size, d.content_sha256)

    def files(self, plan: MediumPlan) -> tuple[list[Leaf], list[Entry]]:
        """Leaves and manifest entries of the DICOM files of ``plan``."""
        leaves, entries = [], []
        enveloped = self.recipients is not None
        for pf in plan.files:
            p = self.prepared[pf.source.sop_uid]
            assert p.staged is not None and p.values is not None
            d = p.staged.digests
            leaves.append(Leaf(pf.file_id, p.values, p.transfer_syntax, p.tail, p.header,
                               p.halves))
            entries.append(Entry(pf.rel, d.stored_size, d.stored_sha256, enveloped,
                                 d.content_size if enveloped else None,
                                 d.content_sha256 if enveloped else None))
        return leaves, entries

    def text_names(self) -> list[str]:
        """The names :meth:`texts` gives, known before the texts are."""
        return ["README.TXT", "INDEX.HTM"] if self.options.index_html else ["README.TXT"]

    def texts(self, plan: MediumPlan, leaves: Sequence[Leaf],
              entries: Sequence[Entry]) -> list[tuple[str, bytes]]:
        """README.TXT and INDEX.HTM of the medium."""
        facts = self.facts(plan, sum(e.size for e in entries), leaves)
        texts = [("README.TXT", readme_txt(facts))]
        if self.options.index_html:
            texts.append(("INDEX.HTM", index_htm(facts)))
        return texts

    def facts(self, plan: MediumPlan, total: int, leaves: Sequence[Leaf]) -> MediumFacts:
        rows: list[dict[str, str]] = []
        if self.recipients is None:
            seen: dict[str, dict[str, str]] = {}
            for leaf in leaves:
                v = leaf.values
                row = seen.get(v[STUDY_UID])
                if row is None:
                    row = seen[v[STUDY_UID]] = {
                        "patient": display(v, PATIENT_NAME), "date": v.get(STUDY_DATE, ""),
                        "description": display(v, STUDY_DESCRIPTION), "files": "0"}
                row["files"] = str(int(row["files"]) + 1)
            rows = list(seen.values())
        r = self.recipients
        return MediumFacts(
            plan.index, plan.count, self.created, self.settings.site, self.settings.station_name,
            len(plan.study_uids), len(plan.files), f"{total / 1e6:.1f}", r is not None,
            r is not None and r.password is not None,
            tuple(c.fingerprint for c in r.certificates) if r else (), self.signer.key_id,
            plan.files[0].rel, tuple(rows))

    def medium(self, plan: MediumPlan, target: Path) -> MediumResult:
        if self.image is not None:
            return self.medium_iso(plan, target)
        stage = Path(tempfile.mkdtemp(prefix=".radguard-export-", dir=target.parent))
        try:
            leaves, entries = self.files(plan)
            for pf in plan.files:  # the staged envelopes move into the medium's tree
                p = self.prepared[pf.source.sop_uid]
                assert p.staged is not None
                dest = stage.joinpath(*pf.file_id)
                dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.rename(self.work / p.staged.name, dest)
            entries.append(self.store(stage, "DICOMDIR", build_dicomdir(leaves)))
            for rel, data in self.texts(plan, leaves, entries):
                with _Out(stage, rel) as fh:
                    fh.write(data)
                entries.append(Entry(rel, len(data), hashlib.sha256(data).hexdigest(), False))
            body, sig = self.manifest(plan, entries).signed(self.signer)
            for rel, data in ((MANIFEST, body), (SIGNATURE, sig)):
                with _Out(stage, rel) as fh:
                    fh.write(data)
            _fsync_tree(stage)
            os.rename(stage, target)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return MediumResult(str(target), plan.index, plan.count, len(plan.files),
                            len(plan.study_uids), sum(e.size for e in entries) + len(body)
                            + len(sig))

    def medium_iso(self, plan: MediumPlan, target: Path) -> MediumResult:
        """The image of one medium (:mod:`radguard.export.iso9660`): for a single medium, the
        image the envelopes already are in; for a split export, a new image per medium with its
        envelopes copied in by extent."""
        assert self.image is not None
        pack = image_fd(str(self.image))
        if plan.count == 1:
            path, fd = self.image, pack
        else:
            path = self.work / f"medium-{plan.index}.iso"
            fd = create_image(str(path))
        try:
            leaves, entries = self.files(plan)
            isos: list[IsoFile] = []
            for pf, e in zip(plan.files, entries, strict=True):
                p = self.prepared[pf.source.sop_uid]
                assert p.staged is not None
                if plan.count == 1:
                    isos.append(IsoFile(pf.rel, p.staged.offset // SECTOR, e.size))
                else:
                    isos.append(copy_extent(pack, p.staged.offset, fd, pf.rel, e.size))
            # the directories depend on the names only: planned and written (all but the two
            # roots) by another process while this one makes the root's files
            rels = [f.rel for f in isos] + ["DICOMDIR", *self.text_names(), MANIFEST, SIGNATURE]
            below, image_path = tuple(isos), str(path)

            def directories() -> bytes:
                own = os.open(image_path, os.O_RDWR)  # own open file: reserve()'s flock
                return Directories.plan(own, rels).write_below_root(own, below).to_json()

            with beside(directories) as planned:
                dicomdir = build_dicomdir(leaves)
                if self.recipients is not None:
                    f, d = add_envelope(fd, "DICOMDIR", dicomdir, self.recipients)
                    entries.append(Entry("DICOMDIR", d.stored_size, d.stored_sha256, True,
                                         d.content_size, d.content_sha256))
                else:
                    f = add_bytes(fd, "DICOMDIR", dicomdir)
                    entries.append(Entry("DICOMDIR", len(dicomdir),
                                         hashlib.sha256(dicomdir).hexdigest(), False))
                isos.append(f)
                for rel, data in self.texts(plan, leaves, entries):
                    isos.append(add_bytes(fd, rel, data))
                    entries.append(Entry(rel, len(data), hashlib.sha256(data).hexdigest(),
                                         False))
                body, sig = self.manifest(plan, entries).signed(self.signer)
                isos += [add_bytes(fd, MANIFEST, body), add_bytes(fd, SIGNATURE, sig)]
            dirs = Directories.from_json(planned[0])
            size = dirs.finish(fd, isos, self.options.label)
            _check_fits(size, self.options.media, target)
            publish(fd, path, target)
        finally:
            if fd != pack:
                os.close(fd)
                path.unlink(missing_ok=True)
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


def _recipients(options: ExportOptions) -> Callable[[], Recipients] | None:
    """Check the recipients of ``options`` now; return ``None`` for an unencrypted export, else a
    function that gives the :class:`Recipients`. The password's PBKDF2 (RFC 8018, the slowest
    serial step of an export: ~0.15 s for 600,000 iterations) runs on a thread meanwhile, so it
    overlaps with listing and checking the input files (it releases the GIL)."""
    if options.password is not None and options.check_strength:
        check_password(options.password)
    if not options.certificates and options.password is None:
        if options.encrypt:
            raise ExportError("an encrypted export needs --recipient CERT.pem or a password",
                              remedy="give a recipient certificate or a password, or ask for an "
                              "unencrypted medium explicitly (--no-encrypt)")
        return None
    if options.password is None:
        done = Recipients(options.certificates, None, options.transport)
        return lambda: done
    pb = policy()["pbkdf2"]
    out: list[PasswordKek | BaseException] = []

    def derive() -> None:
        try:
            out.append(PasswordKek.derive(options.password or "", iterations=options.
                                          pbkdf2_iterations or int(pb["iterations"]),
                                          prf=str(pb["prf"])))
        except BaseException as exc:  # handed to the caller of result()
            out.append(exc)

    thread = threading.Thread(target=derive, name="radguard-pbkdf2", daemon=True)
    thread.start()

    def result() -> Recipients:
        thread.join()  # ended before any worker is forked
        if isinstance(out[0], BaseException):
            raise out[0]
        return Recipients(options.certificates, out[0], options.transport)

    return result


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


def _prepare(paths: Sequence[str], skipped: list[Skipped], job: FileJob, workers: int,
             progress: Progress | None) -> tuple[Selection, dict[str, Prepared]]:
    """Run :func:`radguard.export.prepare.prepare` over every input file; keep the first file of
    each SOP Instance UID (in input order) and drop the staged bytes of the others."""
    results: list[Prepared | None] = [None] * len(paths)
    items = list(enumerate(paths))
    workers = max(1, min(workers, len(paths) // 2))
    batch = max(1, min(16, len(paths) // (4 * workers)))
    with contextlib.ExitStack() as stack:
        wb = (stack.enter_context(Writeback(image_fd(job.image))) if job.image is not None
              else None)
        for done, one in enumerate(run_shared(prepare, items, initializer=_same, initargs=(job,),
                                              workers=workers, batch_size=batch), 1):
            results[one.index] = one
            if wb is not None and one.staged is not None:
                wb.done(one.staged.digests.stored_size)
            if progress:
                progress(done, len(paths), os.path.basename(paths[one.index]))
    files: list[SelectedFile] = []
    by_uid: dict[str, Prepared] = {}
    for p in results:
        assert p is not None
        if isinstance(p.outcome, Skipped):
            skipped.append(p.outcome)
        elif p.outcome.sop_uid in by_uid:
            skipped.append(Skipped(p.outcome.path, "duplicate SOP Instance UID (exported once)"))
            if p.staged is not None and job.image is not None:  # no stray ciphertext on the disc
                blank(image_fd(job.image), p.staged.offset, p.staged.digests.stored_size)
            elif p.staged is not None:
                (Path(job.stage) / p.staged.name).unlink(missing_ok=True)
        else:
            by_uid[p.outcome.sop_uid] = p
            files.append(p.outcome)
    if not files:
        raise NothingToExport(f"none of the {len(paths)} input file(s) can be exported "
                              f"({len(skipped)} skipped)",
                              remedy="give DICOM PS3.10 files or folders that hold them")
    return Selection(tuple(files), tuple(skipped)), by_uid


def _same(job: FileJob) -> FileJob:
    return job


def _refuse_existing(paths: Sequence[Path]) -> None:
    for p in paths:
        if p.exists() or p.is_symlink():
            raise TargetExists("the output exists; RadGuard never overwrites", subject=str(p),
                               remedy="choose a new --out path or remove the old one")


def export_media(inputs: Sequence[Path], out: Path, options: ExportOptions, settings: Settings,
                 *, emitter: AuditEmitter | None = None,
                 progress: Progress | None = None) -> ExportResult:
    """Export ``inputs`` (DICOM files or folders) to ``out`` (a folder, or an ISO image).

    The per-file work runs on ``settings.worker_count`` processes (one with de-identification,
    whose pseudonym state is per process).

    Raises
    ------
    TargetExists
        ``out`` (or one of its split names) exists.
    WeakPassword, NothingToExport, DoesNotFit, ExportError, CryptoError
        Nothing was written.
    """
    pending = _recipients(options)  # the password's PBKDF2 runs meanwhile
    import pydicom  # noqa: F401 - imported once here (during the PBKDF2), inherited by the workers

    _refuse_existing([out])
    skipped: list[Skipped] = []
    inputs_found = list(candidates(inputs, skipped))
    if options.iso:
        for name, size in inputs_found:
            if estimate_size(size) >= MAX_FILE:
                raise ExportError(f"a file of {size} bytes is larger than one ISO 9660 file may "
                                  "be (4 GiB, ECMA-119 9.1.4)", subject=name,
                                  remedy="export to a folder (a USB stick) instead of --iso")
    out.parent.mkdir(parents=True, exist_ok=True)
    if capacity(options.media).bytes is None:
        need = sum(estimate_size(size) for _p, size in inputs_found) + FIXED
        free = shutil.disk_usage(out.parent).free
        if need > free:
            raise ExportError(f"the export needs about {need} bytes, {free} are free",
                              subject=str(out.parent), remedy="free space or use another target")
    deid = None
    if options.deid:
        deid = _deid_hook(options.deid, options.deid_key or os.urandom(32))
    signer = load_signer(settings.home_path, settings.station_name)
    recipients = pending() if pending is not None else None
    work = Path(tempfile.mkdtemp(prefix=".radguard-export-", dir=out.parent))
    image = work / "image.iso" if options.iso else None
    written: list[MediumResult] = []
    selection: Selection | None = None
    plans: tuple[MediumPlan, ...] = ()
    paths: list[Path] = []
    try:
        if image is not None:
            os.close(create_image(str(image)))
        file_job = FileJob(str(work), options.limits, recipients,
                           str(image) if image is not None else None, deid)
        selection, prepared = _prepare([p for p, _size in inputs_found], skipped, file_job,
                                       1 if deid else settings.worker_count, progress)
        plans = plan_media(selection.files, capacity(options.media).usable())
        candidates_out = targets(out, len(plans))
        _refuse_existing(candidates_out)
        job = _Job(options, recipients, signer, settings, work, prepared, image=image)
        paths = candidates_out
        for plan, path in zip(plans, paths, strict=True):
            written.append(job.medium(plan, path))
    except BaseException as exc:
        for m in written:
            p = Path(m.path)
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        if selection is not None and paths:  # a failure while writing media, as before
            with contextlib.suppress(Exception):
                _audit(emitter, settings, selection, plans, paths, options, recipients is not None,
                       failure=f"export failed: {type(exc).__name__}")
        raise
    finally:
        if image is not None:
            close_image(str(image))
        shutil.rmtree(work, ignore_errors=True)
    _audit(emitter, settings, selection, plans, paths, options, recipients is not None)
    return ExportResult(
        job.export_id, tuple(written), selection.skipped, recipients is not None, deid is not None,
        len(selection.files), len({f.study_uid for f in selection.files}), job.signer.key_id,
        job.manifest(plans[0], []).recipients)
