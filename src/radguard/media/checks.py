"""The media checks: small classes declaring id, severity, verdict, description, remedy and controls.

One registry (:data:`REGISTRY`) holds them; the CLI help, the JSON schema and docs derive from it.
Reader problems (:mod:`radguard.dicomio`) map to checks by their ``code`` (and, for limits, by the
limit crossed); content checks run in :mod:`radguard.media.inspect`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from radguard.findings import ControlRef, Evidence, Finding, Severity, Verdict

__all__ = ["REGISTRY", "MediaCheck", "check", "for_problem"]

_CSP = ControlRef("MITA-CSP1-2015", "media-handling")
_DE = ControlRef("NIST-CSF-2.0", "DE.CM-09")
_PR_DS = ControlRef("NIST-CSF-2.0", "PR.DS-01")
_ID_RA = ControlRef("NIST-CSF-2.0", "ID.RA-01")
_HIPAA_INT = ControlRef("HIPAA", "164.312(c)(1)")
_HIPAA_MAL = ControlRef("HIPAA", "164.308(a)(5)(ii)(B)")


class MediaCheck:
    """Base of media checks; subclasses only declare class data."""

    id: ClassVar[str]
    severity: ClassVar[Severity]
    verdict: ClassVar[Verdict]
    description: ClassVar[str]
    remedy: ClassVar[str]
    controls: ClassVar[tuple[ControlRef, ...]] = (_CSP, _DE)
    problem_codes: ClassVar[tuple[str, ...]] = ()
    limits: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def finding(cls, message: str, *, path: str | None = None, offset: int | None = None,
                asset: str | None = None, **details: Any) -> Finding:
        return Finding(cls.id, cls.severity, message, Evidence(path, offset, details),
                       cls.controls, cls.remedy, asset)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.id, "severity": cls.severity.label, "verdict": cls.verdict.label,
                "description": cls.description, "remedy": cls.remedy,
                "controls": [str(c) for c in cls.controls]}


REGISTRY: dict[str, type[MediaCheck]] = {}
_BY_PROBLEM: dict[tuple[str, str], type[MediaCheck]] = {}


def register(cls: type[MediaCheck]) -> type[MediaCheck]:
    if cls.id in REGISTRY:
        raise ValueError(f"duplicate media check id {cls.id}")
    REGISTRY[cls.id] = cls
    for code in cls.problem_codes:
        for limit in cls.limits or ("",):
            _BY_PROBLEM[(code, limit)] = cls
    return cls


def check(check_id: str) -> type[MediaCheck]:
    return REGISTRY[check_id]


def for_problem(code: str, limit: str = "") -> type[MediaCheck]:
    """The check a reader problem maps to; unknown codes map to ``dicom.malformed``."""
    return _BY_PROBLEM.get((code, limit)) or _BY_PROBLEM.get((code, "")) or REGISTRY["dicom.malformed"]


_D, _S, _C = Verdict.DANGEROUS, Verdict.SUSPICIOUS, Verdict.CLEAN
_SEV = Severity


def _define(id_: str, severity: Severity, verdict: Verdict, description: str, remedy: str, *,
            codes: tuple[str, ...] = (), limits: tuple[str, ...] = (),
            controls: tuple[ControlRef, ...] = (_CSP, _DE)) -> type[MediaCheck]:
    cls = type(id_.replace(".", "_").replace("-", "_"), (MediaCheck,), {
        "id": id_, "severity": severity, "verdict": verdict, "description": description,
        "remedy": remedy, "problem_codes": codes, "limits": limits, "controls": controls,
        "__doc__": description,
    })
    return register(cls)


_QUARANTINE = "Do not import or open this file; keep it in quarantine and report the medium's sender."
_REVIEW = "Have a person review the file; import only after sanitising it (radguard media sanitize)."

# -- executable content (dangerous) ------------------------------------------------------------------
_define("media.preamble-executable", _SEV.CRITICAL, _D,
        "The 128-byte preamble holds an executable header: a DICOM/executable polyglot "
        "(CVE-2019-11687).", _QUARANTINE, controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.trailing-executable", _SEV.CRITICAL, _D,
        "Bytes after the end of the data set start with an executable or script header.", _QUARANTINE,
        controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.element-executable", _SEV.CRITICAL, _D,
        "A private, unknown (UN) or binary element carries an executable, script or archive.",
        _QUARANTINE, controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.encapsulated-executable", _SEV.CRITICAL, _D,
        "An Encapsulated Document (0042,0011) carries an executable, script or archive.", _QUARANTINE,
        controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.encapsulated-script", _SEV.HIGH, _D,
        "An encapsulated PDF or HTML/CDA document carries scripts, launch actions or embedded files.",
        _QUARANTINE, controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.executable-file", _SEV.CRITICAL, _D,
        "An executable program on the medium (IHE PDI: media readers never run software from media).",
        "Never run it; the images can be imported without it.", controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.script-file", _SEV.HIGH, _D, "A script on the medium.",
        "Never run it; the images can be imported without it.", controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.shortcut-file", _SEV.HIGH, _D, "A shortcut (LNK/URL/SCF/desktop) on the medium.",
        "Never open it.", controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.autorun", _SEV.HIGH, _D, "An autorun.inf file: the medium asks to run software.",
        "Never let the station auto-run media; keep autorun disabled.", controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.html-script", _SEV.HIGH, _D, "An HTML/SVG file on the medium carries scripts or "
        "active content.", "Open it only in a sandboxed viewer, never on the PACS network.")
_define("media.pdf-script", _SEV.HIGH, _D, "A PDF on the medium carries scripts, launch actions or "
        "embedded files.", "Do not open it on a networked PC.")
_define("media.yara-match", _SEV.HIGH, _D, "A YARA rule matched the file.", _QUARANTINE,
        controls=(_CSP, _DE, _HIPAA_MAL))
_define("media.antivirus-detection", _SEV.CRITICAL, _D, "ClamAV detected malware.", _QUARANTINE,
        controls=(_CSP, _DE, _HIPAA_MAL))

# -- structure that needs a person (suspicious) --------------------------------------------------
_define("media.preamble-nonzero", _SEV.MEDIUM, _S,
        "The preamble is not all zero and is not a TIFF dual-format header (PS3.10 7.1).", _REVIEW)
_define("media.trailing-data", _SEV.MEDIUM, _S,
        "Bytes after the end of the data set (a hiding place).", _REVIEW, codes=("trailing-data",))

_define("media.archive-file", _SEV.MEDIUM, _S, "An archive (ZIP, RAR, 7z, CAB, gzip) on the medium; "
        "its content was not inspected.", "Extract it only on the offline station and scan the result.")
_define("media.office-file", _SEV.MEDIUM, _S, "An OLE compound file (MSI installer or Office document "
        "that may hold macros).", "Open only on the offline station with macros disabled.")
_define("dicom.value-past-end", _SEV.MEDIUM, _S,
        "A length runs past the end of the file or of its item (lying length or truncation).", _REVIEW,
        codes=("value-past-eof", "value-past-item"))
_define("dicom.truncated", _SEV.MEDIUM, _S, "The file ends before its data set does.",
        "Ask the sender for a new copy of the study.", codes=("truncated",))
_define("dicom.malformed", _SEV.MEDIUM, _S, "The data set cannot be walked to its end (PS3.5 7).",
        _REVIEW, codes=("malformed", "invalid-vr", "inflate-error"))
_define("dicom.tag-order", _SEV.MEDIUM, _S, "Elements out of order or repeated with different values:"
        " readers may disagree on the data set (PS3.5 7.1).", _REVIEW,
        codes=("tag-order", "duplicate-tag"))
_define("dicom.nesting-bomb", _SEV.HIGH, _S, "Sequences nested beyond the depth limit.", _REVIEW,
        codes=("limit-exceeded",), limits=("max_depth",))
_define("dicom.element-bomb", _SEV.HIGH, _S, "More data elements than the element limit.", _REVIEW,
        codes=("limit-exceeded",), limits=("max_elements",))
_define("dicom.decompression-bomb", _SEV.HIGH, _S, "Compressed content that inflates beyond the size "
        "or ratio limit, or pixel data declaring an absurd size.", _REVIEW,
        codes=("limit-exceeded",), limits=("max_inflated_size", "max_inflate_ratio", "pixel"))
_define("dicom.limit-exceeded", _SEV.MEDIUM, _S, "The file exceeds a limit of the bounded reader "
        "(size, value length, time).", "Raise the limit only for media from a trusted source.",
        codes=("limit-exceeded",), limits=("max_file_size", "max_value_length", "max_seconds", "meta"))
_define("dicom.meta-group-length", _SEV.MEDIUM, _S, "(0002,0000) File Meta Information Group Length "
        "lies about the group's size (PS3.10 7.1).", _REVIEW, codes=("meta-group-length-mismatch",))
_define("dicom.meta-incomplete", _SEV.LOW, _C, "File Meta Information lacks the Transfer Syntax UID; "
        "the encoding was recognised from the data set (a broken walk is reported by its own "
        "check).", "None needed; sanitising writes complete File Meta Information.",
        codes=("meta-missing-transfer-syntax",))
_define("dicom.no-file-meta", _SEV.LOW, _S, "No preamble, DICM prefix or File Meta Information: not "
        "a PS3.10 file as IHE PDI media require.", "Import only after rebuilding the file "
        "(radguard media sanitize).", codes=("no-file-meta",))
_define("dicom.unknown-transfer-syntax", _SEV.MEDIUM, _S, "A transfer syntax UID RadGuard does not "
        "know.", _REVIEW, codes=("unknown-transfer-syntax",))
_define("dicom.large-unknown-value", _SEV.MEDIUM, _S, "An element of VR UN larger than 16 MiB: a way "
        "to smuggle content past readers.", _REVIEW)
_define("dicom.executable-extension", _SEV.MEDIUM, _S, "A DICOM file named like an executable or "
        "script.", _REVIEW)
_define("media.symlink", _SEV.MEDIUM, _S, "A symbolic link on the medium; it was not followed.",
        "Copy the files it points to only if they are on the medium.")
_define("media.special-file", _SEV.MEDIUM, _S, "A device, pipe or socket on the medium.",
        "Do not copy it; report the medium.")

_define("media.filename-unsafe", _SEV.MEDIUM, _S, "A file name with control characters or bytes "
        "that are not valid text.", _REVIEW)
_define("media.unreadable", _SEV.MEDIUM, _S, "A file or folder that could not be read.",
        "Check the medium for damage; ask for a new copy.")
_define("dicomdir.reference-escapes", _SEV.HIGH, _S, "A DICOMDIR Referenced File ID leaves the medium"
        " (absolute, '..', separators or characters outside the PS3.10 8.3 alphabet; CVE-2022-2119).",
        _REVIEW)
_define("dicomdir.missing-file", _SEV.MEDIUM, _S, "A DICOMDIR record points to a file that is not on "
        "the medium.", "Ask the sender for a complete medium.")
_define("dicomdir.unlisted-file", _SEV.LOW, _S, "A DICOM file that the DICOMDIR does not list.",
        _REVIEW)
_define("dicomdir.uid-mismatch", _SEV.MEDIUM, _S, "A DICOMDIR record's SOP Instance UID differs from "
        "the file it points to.", _REVIEW)
_define("dicomdir.unreadable", _SEV.MEDIUM, _S, "The DICOMDIR cannot be read as a directory.",
        _REVIEW)
_define("study.identity-mismatch", _SEV.HIGH, _S, "Files of one study disagree on patient identity "
        "(what dcentvfy checks).", "Reconcile the patient before import; never merge blindly.",
        controls=(_CSP, _HIPAA_INT, _ID_RA))

# -- informational (clean) ---------------------------------------------------------------------------
_define("media.padding-nonzero", _SEV.LOW, _C,
        "Data Set Trailing Padding (FFFC,FFFC) holds non-zero bytes (real writers leave such bytes; "
        "executable content there is reported as media.element-executable).",
        "None needed; sanitising drops the padding.")
_define("media.hard-link", _SEV.INFO, _C, "A file with more than one hard link (package managers and "
        "copy tools make them); it is scanned like any file.", "None needed.")
_define("media.preamble-tiff", _SEV.INFO, _C, "The preamble is a TIFF dual-format header (allowed by "
        "PS3.10 7.1).", "None needed; sanitising zeroes it.")
_define("dicom.group-length", _SEV.INFO, _C, "A retired group length (gggg,0000) does not match its "
        "group (PS3.5 7.2); RadGuard never trusts it.", "None needed.", codes=("group-length-mismatch",))
_define("dicom.duplicate-identical", _SEV.INFO, _C, "An element repeated with identical bytes.",
        "None needed.", codes=("duplicate-tag-identical",))
_define("dicom.item-length-overrun", _SEV.INFO, _C, "The last item of a sequence claims more bytes "
        "than its sequence holds; its content walks cleanly.", "None needed.",
        codes=("item-length-overrun",))
_define("dicom.meta-no-group-length", _SEV.INFO, _C, "File Meta Information has no group length "
        "(0002,0000).", "None needed; sanitising writes it.", codes=("meta-no-group-length",))
_define("media.engine-unavailable", _SEV.INFO, _C, "A scanning engine (YARA, ClamAV) was not "
        "available or failed for a file; that file was not checked by it.",
        "Install or configure the engine (see README).")
