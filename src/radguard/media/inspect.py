"""Per-file inspection: the bounded walk plus content checks, producing a :class:`FileReport`.

Runs in worker processes; everything it returns is a small frozen value. Never raises for bad input:
an unreadable file is a finding.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from radguard.dicomio import ReadLimits, WalkResult, walk
from radguard.dicomio.source import ByteSource, MemorySource
from radguard.findings import Finding, Verdict, worst
from radguard.media import checks
from radguard.media.engines import Engines
from radguard.media.interface import FileKind, FileReport
from radguard.media.medium import Entry, Medium, display_path
from radguard.media.signatures import SignatureTable, load_table

__all__ = ["InspectOptions", "inspect_entry"]

_log = logging.getLogger(__name__)
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
SCAN_CHUNK = 1024 * 1024
MAX_CONTENT_SCAN = 256 * 1024 * 1024
LARGE_UN = 16 * 1024 * 1024
DANGEROUS_CLASSES = frozenset({"executable", "script", "shortcut", "archive", "ole"})


@dataclass(frozen=True, slots=True)
class InspectOptions:
    """What a worker needs besides the entry: limits and the salt for identity hashes."""

    limits: ReadLimits
    salt: bytes


def _chunks(src: ByteSource, offset: int, length: int, overlap: int = 64) -> Iterator[bytes]:
    """Read ``length`` bytes from ``offset`` in chunks that overlap so patterns are not split."""
    end = offset + min(length, MAX_CONTENT_SCAN)
    pos = offset
    while pos < end:
        n = min(SCAN_CHUNK, end - pos)
        yield src.read_at(pos, n + overlap if pos + n < end else n)
        pos += n


def _contains(src: ByteSource, offset: int, length: int, pattern: re.Pattern[bytes]) -> bytes | None:
    """The first match of ``pattern`` in the byte range, read in overlapping chunks."""
    for chunk in _chunks(src, offset, length):
        m = pattern.search(chunk)
        if m:
            return bytes(m.group(0))
    return None


def _hash(salt: bytes, value: str | None) -> str:
    if not value:
        return ""
    return hashlib.sha256(salt + value.strip().upper().encode("utf-8", "replace")).hexdigest()[:16]


def _problem_findings(rel: str, result: WalkResult) -> Iterator[Finding]:
    for p in result.problems:
        limit = str(p.details.get("limit", "")) if p.details else ""
        cls = checks.for_problem(p.code, limit)
        where = " (inside the inflated data set)" if p.inflated else ""
        yield cls.finding(p.message + where, path=rel, offset=p.offset,
                          **({"limit": limit} if limit else {}))


def _dicom_findings(rel: str, src: ByteSource, result: WalkResult, table: SignatureTable,
                    limits: ReadLimits) -> Iterator[Finding]:
    pre = result.preamble
    if pre is not None and any(pre):
        sig = table.identify(pre, src.read_at(0, 4096))
        if sig is not None and sig.class_ == "tiff":
            yield checks.check("media.preamble-tiff").finding("TIFF dual-format preamble", path=rel,
                                                               offset=0)
        elif sig is not None and sig.class_ in ("executable", "script", "shortcut"):
            yield checks.check("media.preamble-executable").finding(
                f"preamble is a {sig.name} header (polyglot file)", path=rel, offset=0,
                signature=sig.name)
        else:
            first = next(i for i, b in enumerate(pre) if b)
            yield checks.check("media.preamble-nonzero").finding(
                f"preamble holds non-zero bytes from offset {first}"
                + (f" ({sig.name})" if sig else ""), path=rel, offset=first)
    yield from _problem_findings(rel, result)
    if result.trailing_length:
        sig = table.identify(result.trailing_head)
        if sig is not None and sig.class_ in DANGEROUS_CLASSES:
            yield checks.check("media.trailing-executable").finding(
                f"{result.trailing_length} bytes after the data set start with a {sig.name} header",
                path=rel, offset=result.trailing_offset, signature=sig.name)
        else:
            yield checks.check("media.trailing-data").finding(
                f"{result.trailing_length} bytes after the end of the data set", path=rel,
                offset=result.trailing_offset, length=result.trailing_length)
    for ref in result.refs:
        if ref.inflated:
            continue  # offsets point into the inflated stream; heads were already read
        sig = table.identify(ref.head)
        is_doc = ref.tag == 0x00420011
        if ref.tag == 0xFFFCFFFC and not (sig is not None and sig.class_ in DANGEROUS_CLASSES):
            if _has_nonzero(src, ref.offset, ref.length):
                yield checks.check("media.padding-nonzero").finding(
                    "Data Set Trailing Padding holds non-zero bytes", path=rel, offset=ref.offset)
            continue
        if sig is not None and sig.class_ in DANGEROUS_CLASSES:
            cid = "media.encapsulated-executable" if is_doc else "media.element-executable"
            yield checks.check(cid).finding(
                f"{ref.tag_text} ({ref.vr}, {ref.length} bytes) holds a {sig.name}", path=rel,
                offset=ref.offset, tag=ref.tag_text, signature=sig.name)
            continue
        if is_doc or (sig is not None and sig.class_ == "pdf"):
            mime = (result.value(0x00420012) or "").lower()
            pattern = table.html_patterns if ("html" in mime or "xml" in mime
                                              or not ref.head.startswith(b"%PDF")) \
                else table.pdf_patterns
            hit = _contains(src, ref.offset, ref.length, pattern)
            if hit is None and ref.head.startswith(b"%PDF"):
                hit = _contains(src, ref.offset, ref.length, table.pdf_patterns)
            if hit is not None:
                yield checks.check("media.encapsulated-script").finding(
                    f"{ref.tag_text} encapsulated document contains {hit.decode('latin-1')!r}",
                    path=rel, offset=ref.offset, tag=ref.tag_text)
        if ref.vr == "UN" and ref.length > LARGE_UN:
            yield checks.check("dicom.large-unknown-value").finding(
                f"{ref.tag_text} UN value of {ref.length} bytes", path=rel, offset=ref.offset)
    pix = result.pixel
    if pix is not None:
        declared = _declared_pixel_bytes(result)
        if declared is not None and declared > limits.max_decoded_pixels_bytes:
            yield checks.check("dicom.decompression-bomb").finding(
                f"pixel data declares {declared} bytes once decoded", path=rel, offset=pix.offset,
                declared=declared)
        elif (declared is not None and pix.length is None and pix.compressed_bytes
              and declared > 64 * 1024 * 1024 and declared / pix.compressed_bytes > 10_000):
            yield checks.check("dicom.decompression-bomb").finding(
                f"{pix.compressed_bytes} compressed bytes declare {declared} decoded bytes",
                path=rel, offset=pix.offset, declared=declared)
        if pix.first_fragment_head:
            sig = table.identify(pix.first_fragment_head)
            if sig is not None and sig.class_ in ("executable", "script", "shortcut"):
                yield checks.check("media.element-executable").finding(
                    f"a pixel data fragment holds a {sig.name}", path=rel, offset=pix.offset)
    if table.extension_class(rel) is not None:
        yield checks.check("dicom.executable-extension").finding(
            "DICOM file with an executable or script file name", path=rel)


def _pixel_range(result: WalkResult) -> tuple[int, int] | None:
    """The byte range of top-level pixel data in a file that walked cleanly, else ``None``."""
    pix = result.pixel
    if (pix is None or not result.completed or result.inflated_size is not None
            or result.problem_codes - {"group-length-mismatch", "duplicate-tag-identical"}):
        return None
    if pix.length is not None:
        end = pix.offset + pix.length
    else:  # items: 8-byte header each, then the sequence delimiter (PS3.5 A.4)
        end = pix.offset + 8 * pix.fragments + pix.compressed_bytes + 8
    return (pix.offset, end) if end > pix.offset else None


def _has_nonzero(src: ByteSource, offset: int, length: int) -> bool:
    return any(chunk.strip(b"\x00") for chunk in _chunks(src, offset, length, overlap=0))


def _declared_pixel_bytes(result: WalkResult) -> int | None:
    try:
        rows = int(result.value(0x00280010) or 0)
        cols = int(result.value(0x00280011) or 0)
        bits = int(result.value(0x00280100) or 0)
        samples = int(result.value(0x00280002) or 1)
        frames = int(float(result.value(0x00280008) or 1))
    except ValueError:
        return None
    if not rows or not cols or not bits:
        return None
    return rows * cols * max(1, samples) * max(1, frames) * max(1, bits) // 8


def _other_findings(rel: str, src: ByteSource, table: SignatureTable) -> Iterator[Finding]:
    name = rel.rsplit("/", 1)[-1]
    head = src.read_at(0, 4096)
    sig = table.identify(head[:64], head)
    ext_class = table.extension_class(name)
    if name.lower() == "autorun.inf":
        yield checks.check("media.autorun").finding("autorun.inf asks the PC to run software",
                                                    path=rel)
    klass = sig.class_ if sig is not None else None
    if klass == "executable" or ext_class == "executable":
        what = sig.name if sig is not None else f"file named {name!r}"
        yield checks.check("media.executable-file").finding(f"executable: {what}", path=rel,
                                                            offset=0)
    elif klass == "script" or ext_class == "script":
        yield checks.check("media.script-file").finding(f"script: {name}", path=rel, offset=0)
    elif klass == "shortcut" or ext_class == "shortcut":
        yield checks.check("media.shortcut-file").finding(f"shortcut: {name}", path=rel, offset=0)
    elif klass == "archive":
        yield checks.check("media.archive-file").finding(f"{sig.name if sig else 'archive'}",
                                                         path=rel, offset=0)
    elif klass == "ole":
        yield checks.check("media.office-file").finding(f"{sig.name if sig else 'OLE file'}",
                                                        path=rel, offset=0)
    if klass == "pdf":
        hit = _contains(src, 0, src.size, table.pdf_patterns)
        if hit is not None:
            yield checks.check("media.pdf-script").finding(
                f"PDF contains {hit.decode('latin-1')!r}", path=rel)
    elif table.is_html_name(name) or head.lstrip()[:15].lower().startswith((b"<!doctype html",
                                                                             b"<html", b"<svg")):
        hit = _contains(src, 0, src.size, table.html_patterns)
        if hit is not None:
            yield checks.check("media.html-script").finding(
                f"HTML contains {hit.decode('latin-1')!r}", path=rel)


def _dicomdir_refs(src: ByteSource) -> tuple[tuple[str, str], ...] | str:
    """Parse a DICOMDIR that passed the bounded walk; returns its records or an error text."""
    import io

    import pydicom

    try:
        data = src.data if isinstance(src, MemorySource) else src.read_at(0, src.size)
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
        records = ds.get("DirectoryRecordSequence") or []
        refs: list[tuple[str, str]] = []
        for rec in records:
            fid = rec.get((0x0004, 0x1500))
            if fid is None or fid.value in (None, ""):
                continue
            value = fid.value
            parts = list(value) if isinstance(value, list | tuple) or (hasattr(value, "__iter__") \
                and not isinstance(value, str)) else [str(value)]
            uid = str(rec.get((0x0004, 0x1511)).value) if (0x0004, 0x1511) in rec else ""
            refs.append(("\\".join(str(p) for p in parts), uid))
        return tuple(refs)
    except Exception as exc:  # pydicom raises many types on odd input
        return f"{type(exc).__name__}: {exc}"


def inspect_entry(medium: Medium, entry: Entry, options: InspectOptions,
                  engines: Engines | None = None, table: SignatureTable | None = None
                  ) -> FileReport:
    """Inspect one regular file of ``medium``; an unexpected failure becomes a finding, not a crash.

    ``table`` is the signature table (:func:`load_table` when not given; a worker passes the one
    it loaded once).
    """
    try:
        report = _inspect_entry(medium, entry, options, engines, table or load_table())
    except Exception as exc:  # invariant 3: a hostile file is a finding, never a crash
        _log.exception("inspecting %s failed", display_path(entry.rel))
        f = checks.check("media.unreadable").finding(
            f"could not be inspected ({type(exc).__name__}: {exc}); treat it as suspicious",
            path=entry.rel)
        report = FileReport(entry.rel, "other", entry.size, None, Verdict.SUSPICIOUS, (f,))
    shown = display_path(entry.rel)
    if shown is entry.rel:
        return report
    return replace(report, path=shown, findings=tuple(
        replace(f, evidence=replace(f.evidence, path=shown)) if f.evidence.path == entry.rel else f
        for f in report.findings))


def _inspect_entry(medium: Medium, entry: Entry, options: InspectOptions,
                   engines: Engines | None, table: SignatureTable) -> FileReport:
    """Inspect one regular file of ``medium``: never raises for bad content.

    Returns
    -------
    FileReport
        kind, size, SHA-256, verdict and findings, with UIDs and salted identity hashes.
    """
    rel = entry.rel
    try:
        src = medium.open(rel)
    except OSError as exc:
        f = checks.check("media.unreadable").finding(f"cannot read: {exc.strerror or exc}", path=rel)
        return FileReport(rel, "other", entry.size, None, Verdict.SUSPICIOUS, (f,))
    try:
        sha = src.sha256()
        result = walk(src, options.limits)
        findings: list[Finding] = []
        identity: dict[str, str] = {}
        references: tuple[tuple[str, str], ...] = ()
        kind: FileKind
        if result.is_dicom:
            sop_class = result.meta.get(0x00020002) or result.value(0x00080016) or ""
            kind = "dicomdir" if (sop_class == DICOMDIR_SOP_CLASS
                                  or rel.rsplit("/", 1)[-1].upper() == "DICOMDIR") else "dicom"
            findings.extend(_dicom_findings(rel, src, result, table, options.limits))
            identity = _identity(result, options.salt)
            if kind == "dicomdir" and result.completed:
                parsed = _dicomdir_refs(src)
                if isinstance(parsed, str):
                    findings.append(checks.check("dicomdir.unreadable").finding(
                        f"DICOMDIR records cannot be read: {parsed}", path=rel))
                else:
                    references = parsed
        else:
            kind = "other"
            findings.extend(_other_findings(rel, src, table))
        if engines is not None:
            local = medium.local_path(rel) if engines.config.clamscan else None
            findings.extend(engines.scan(rel, src, local, _pixel_range(result)))
    finally:
        src.close()
    verdict = worst(checks.check(f.check_id).verdict for f in findings)
    return FileReport(rel, kind, result.size, sha, verdict, tuple(findings), identity, references)


def _identity(result: WalkResult, salt: bytes) -> dict[str, str]:
    v = result.values.get
    patient_id = v(0x00100020) or ""
    issuer = v(0x00100021) or ""
    out = {
        "study_uid": v(0x0020000D) or "",
        "series_uid": v(0x0020000E) or "",
        "sop_instance_uid": v(0x00080018) or result.meta.get(0x00020003, "") or "",
        "sop_class_uid": v(0x00080016) or result.meta.get(0x00020002, "") or "",
        "transfer_syntax": result.transfer_syntax or "",
        "p_patient_id": patient_id,
        "p_issuer": issuer,
        "h_patient_id": _hash(salt, patient_id and patient_id + "^" + issuer),
        "h_patient_name": _hash(salt, v(0x00100010)),
        "h_birth_date": _hash(salt, v(0x00100030)),
    }
    return {k: val for k, val in out.items() if val}


def verdict_of(findings: Iterable[Finding]) -> Verdict:
    return worst(checks.check(f.check_id).verdict for f in findings)
