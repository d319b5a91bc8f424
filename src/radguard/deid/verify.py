"""Residual identifiers in de-identified files: :func:`verify_file` (``radguard deid verify``).

Checks of the output alone:

- ``deid.not-marked``: Patient Identity Removed (0012,0062) is not YES (PS3.15 E.1.1 item 5);
- ``deid.private-element``: a private data element survives (allowed only for a safe private
  attribute of Table E.3.10-1 when code 113111 Retain Safe Private is in the method codes);
- ``deid.residual-date``: a date (DA, DT) other than a dummy while Longitudinal Temporal Information
  Modified says REMOVED (neither date option claimed);
- ``deid.date-in-text``: something that looks like a date in free text (ST, LT, UT);
- ``deid.identifying-value`` and ``deid.identifier-in-text`` (:mod:`.residue`): an attribute Table
  E.1-1 says to remove, empty or replace that holds a value which is not one of the de-identifier's
  own dummy or pseudonym forms; this file's names and IDs (or record-number shapes) in free text.
  Pseudonyms from a mapping file (``deid --mapping``) look like any other value: verify such
  output with ``--original``, where a top-level value that differs from the original's counts as a
  replacement (and the original's values are searched for in the bytes).

With the original file, also:

- ``deid.residual-original-value``: an identifying value of the original (names and their parts,
  IDs, accession and study numbers, addresses, institution, station and device identifiers, dates
  when they were to be removed or shifted, instance UIDs unless Retain UIDs) found anywhere in the
  output's bytes outside the pixel data, or inside a decoded text value (case-insensitive).

The options in force are read from the output's De-identification Method Code Sequence (CID 7050);
files without it are held to the Basic Profile. Findings never quote the value found: they name the
original attribute and the byte offset.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from radguard.deid.actions import unlisted_rules
from radguard.deid.dataset import plan_for
from radguard.deid.files import REFUSING_PROBLEMS, quiet_pydicom
from radguard.deid.options import Option
from radguard.deid.residue import residues
from radguard.deid.scrub import _GENERIC, _date_spellings
from radguard.deid.tables import method_codes, safe_private
from radguard.dicomio import MemorySource, ReadLimits, WalkResult, open_path, walk
from radguard.findings import ControlRef, Evidence, Finding, Severity

__all__ = ["options_in", "read_guarded", "verify_file"]

_CONTROLS = (ControlRef("HIPAA", "164.514(b)"), ControlRef("NIST-CSF-2.0", "PR.DS-01"))
_DUMMY_DATES = ("19000101", "")
_DATE_RE = re.compile("|".join(_GENERIC[:3]))
_INSTITUTION = {"InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName"}
_DEVICE = {"StationName", "DeviceSerialNumber"}


def read_guarded(path: Path) -> tuple[Dataset | None, bytes, WalkResult | None, str]:
    """Walk then parse ``path``; returns (data set or None, bytes, walk result, problem text)."""
    try:
        src = open_path(path)
    except OSError as exc:
        return None, b"", None, f"cannot open: {exc.strerror}"
    try:
        result = walk(src, ReadLimits())
        data = src.data if isinstance(src, MemorySource) else src.read_at(0, src.size)
    finally:
        src.close()
    if not result.is_dicom:
        return None, data, result, "not a DICOM file"
    if not result.completed or any(p.code in REFUSING_PROBLEMS for p in result.problems):
        return None, data, result, "the bounded reader refused it"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pydicom.dcmread(io.BytesIO(data), force=True), data, result, ""
    except Exception as exc:  # reported as a finding
        return None, data, result, f"pydicom cannot parse it ({type(exc).__name__})"


def options_in(ds: Dataset) -> frozenset[str]:
    """Option ids claimed by the method codes of a de-identified data set."""
    by_code = {code: option for option, (code, _) in method_codes().items()}
    found = {by_code.get(str(item.get("CodeValue", "")), "")
             for item in ds.get("DeidentificationMethodCodeSequence", [])}
    return frozenset(found - {"", "basic"})


def _finding(check: str, severity: Severity, message: str, path: Path, offset: int | None = None,
             **details: object) -> Finding:
    return Finding(check, severity, message, Evidence(str(path), offset, details), _CONTROLS,
                   remedy="de-identify the original again with RadGuard, or remove this file",
                   asset=str(path))


def _output_checks(ds: Dataset, path: Path, options: frozenset[str]) -> list[Finding]:
    findings: list[Finding] = []
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        findings.append(_finding("deid.not-marked", Severity.MEDIUM, "Patient Identity Removed "
                                 "(0012,0062) is not YES", path))
    safe = safe_private()
    keep_safe = Option.RETAIN_SAFE_PRIVATE in options
    dates_gone = not options & {Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES}
    rules = unlisted_rules()
    privates = dates = texts = 0
    for elem in ds.iterall():
        tag = int(elem.tag)
        if elem.tag.is_private:
            if elem.tag.is_private_creator:
                continue
            creator = str(elem.private_creator or "") if hasattr(elem, "private_creator") else ""
            if not (keep_safe and creator and safe.is_safe(creator, tag)):
                privates += 1
            continue
        if elem.VR in rules.date_vrs:
            values = elem.value if elem.VM > 1 else [elem.value]
            if dates_gone and any(str(v or "").strip()[:8] not in _DUMMY_DATES for v in values):
                dates += 1
        elif elem.VR in rules.free_text_vrs and elem.value and _DATE_RE.search(str(elem.value)):
            texts += 1
    if privates:
        findings.append(_finding("deid.private-element", Severity.HIGH, f"{privates} private data "
                                 "element(s) that are not safe private attributes", path,
                                 count=privates))
    if dates:
        findings.append(_finding("deid.residual-date", Severity.HIGH, f"{dates} date value(s) left "
                                 "although no date option was applied", path, count=dates))
    if texts:
        findings.append(_finding("deid.date-in-text", Severity.MEDIUM, f"{texts} free-text value(s) "
                                 "contain something that looks like a date", path, count=texts))
    return findings


def _original_tokens(original: Dataset, options: frozenset[str]) -> list[tuple[str, str]]:
    """(keyword, value) pairs of the original that must not appear in the output."""
    rules = unlisted_rules()
    pairs: set[tuple[str, str]] = set()
    dates_kept = Option.RETAIN_FULL_DATES in options
    for keyword in rules.identifier_keywords:
        if (keyword in _INSTITUTION and Option.RETAIN_INSTITUTION_IDENTITY in options) or (
                keyword in _DEVICE and Option.RETAIN_DEVICE_IDENTITY in options):
            continue
        de = original.data_element(keyword) if keyword in original else None
        if de is None or de.VR == "SQ":
            continue
        values = de.value if de.VM > 1 else [de.value]
        for value in values:
            text = str(value or "").strip()
            if de.VR in ("DA", "DT"):
                if not dates_kept:
                    pairs.update((keyword, d) for d in _date_spellings(text)[:1])
            elif de.VR == "PN":
                for part in text.replace("=", "^").split("^"):
                    if len(part.strip()) >= 4:
                        pairs.add((keyword, part.strip()))
            elif len(text) >= 4:
                pairs.add((keyword, text))
    if Option.RETAIN_UIDS not in options:
        changed = plan_for(options).changed_tags()
        for elem in original.iterall():
            if elem.VR == "UI" and int(elem.tag) in changed and elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                pairs.update((elem.keyword or "UID", str(v)) for v in values if len(str(v)) > 8)
    kept = _kept_values(original, options)
    return sorted((k, v) for k, v in pairs if v.strip().upper() not in kept)


def _kept_values(original: Dataset, options: frozenset[str]) -> set[str]:
    """Values the profile keeps (e.g. Manufacturer, code meanings, Implementation Class UID): a
    token equal to one of them is not a residual of de-identification."""
    changed = plan_for(options).changed_tags()
    identifiers = set(unlisted_rules().identifier_keywords)
    kept: set[str] = set()
    meta = getattr(original, "file_meta", None)
    elements = list(original.iterall()) + (list(meta) if meta is not None else [])
    for elem in elements:
        if elem.VR in ("PN", "SQ", "DA", "DT") or elem.tag.is_private or int(elem.tag) in changed \
                or elem.keyword in identifiers or elem.VR not in ("LO", "SH", "CS", "UI", "LT"):
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        for v in values:
            text = str(v or "").strip().upper()
            kept.add(text)
            kept.update(re.split(r"[^A-Z0-9]+", text))
    return kept


def _shifted_dates(output: Dataset, original: Dataset) -> set[str]:
    """Date values of the output that differ from the same attribute's original value.

    Under Retain Longitudinal Temporal Information with Modified Dates, a shifted date can by
    chance equal an original date of another attribute; that is not a residual.
    """
    shifted: set[str] = set()
    for elem in output.iterall():
        if elem.VR != "DA" or not elem.value or elem.tag not in original:
            continue
        before = original[elem.tag].value
        if str(elem.value).strip() != str(before or "").strip():
            shifted.add(str(elem.value).strip())
    return shifted


def _pixel_span(result: WalkResult | None) -> tuple[int, int]:
    if result is None or result.pixel is None:
        return (0, 0)
    end = (result.pixel.offset + 12 + result.pixel.length if result.pixel.length is not None
           else result.dataset_end)
    return (result.pixel.offset, end)


def _replaced(ds: Dataset, original: Dataset | None) -> frozenset[str]:
    """Top-level keywords the original has with another value: replacements (a mapping file's or
    another de-identifier's pseudonyms), whose original values the byte search below looks for."""
    if original is None:
        return frozenset()
    out = set()
    for elem in ds:
        keyword = elem.keyword
        if not keyword or elem.VR == "SQ" or keyword not in original:
            continue
        try:
            changed = str(elem.value).strip() != str(original[keyword].value).strip()
        except Exception:  # undecodable on either side: judged, not accepted
            changed = False
        if changed:
            out.add(keyword)
    return frozenset(out)


def _residue_findings(ds: Dataset, path: Path, options: frozenset[str],
                      original: Dataset | None) -> list[Finding]:
    """The checks of :mod:`.residue`; with the original, changed top-level values are accepted as
    replacements (see :func:`_replaced`)."""
    accepted = _replaced(ds, original)
    out = []
    for item in residues(ds, options, accepted=accepted):
        if item.check == "deid.identifying-value":
            out.append(_finding(item.check, Severity.HIGH, f"{item.keyword} {item.tag} holds a value "
                                "that Table E.1-1 says must be removed, emptied or replaced", path,
                                attribute=item.keyword, tag=item.tag))
        else:
            out.append(_finding(item.check, Severity.HIGH, f"free text {item.keyword} {item.tag} "
                                "contains a name or ID of this file, or a record number", path,
                                attribute=item.keyword, tag=item.tag))
    return out


def verify_file(path: Path, original: Path | None = None) -> list[Finding]:
    """Findings of residual identifiers in the de-identified file ``path`` (empty list: none found).

    ``original`` is the file it was made from, if known; its identifying values are then searched
    for in the output. Unreadable outputs give a ``deid.unreadable-output`` finding.
    """
    with quiet_pydicom():
        return _verify(Path(path), original)


def _verify(path: Path, original: Path | None) -> list[Finding]:
    ds, data, result, problem = read_guarded(path)
    if ds is None:
        return [_finding("deid.unreadable-output", Severity.HIGH, f"cannot verify: {problem}", path)]
    options = options_in(ds)
    findings = _output_checks(ds, path, options)
    orig_ds, orig_problem = None, ""
    if original is not None:
        orig_ds, _, _, orig_problem = read_guarded(Path(original))
    findings += _residue_findings(ds, path, options, orig_ds)
    if original is None:
        return findings
    if orig_ds is None:
        findings.append(_finding("deid.original-unreadable", Severity.LOW,
                                 f"original not usable for comparison: {orig_problem}", path))
        return findings
    start, end = _pixel_span(result)
    haystack = (data[:start] + b"\x00" * (end - start) + data[end:]).lower() if end else data.lower()
    seen: set[str] = set()
    shifted = _shifted_dates(ds, orig_ds) if Option.RETAIN_MODIFIED_DATES in options else set()
    for keyword, value in _original_tokens(orig_ds, options):
        if value in shifted:
            continue  # a shifted date that happens to equal another original date (E.3.6)
        needle = re.escape(value.lower().encode("latin-1", "replace"))
        word = rb"[a-z0-9_.]" if keyword.endswith("UID") else rb"[a-z0-9_]"
        match = re.search(rb"(?<!" + word + rb")" + needle + rb"(?!" + word + rb")", haystack)
        offset = match.start() if match else -1
        if offset >= 0 and keyword not in seen:
            seen.add(keyword)
            findings.append(_finding("deid.residual-original-value", Severity.HIGH,
                                     f"a value of the original {keyword} is still in the file",
                                     path, offset, attribute=keyword))
    return findings
