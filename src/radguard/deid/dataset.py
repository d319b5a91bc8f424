"""De-identify one pydicom data set in place: :func:`deidentify_dataset` (PS3.15 Annex E).

Order of work: Clean Pixel Data first (its rules read Manufacturer, Modality...), then the attribute
pass of :mod:`.engine` over the whole data set, then the marks of :mod:`.marks`, then (if a recipient
certificate is given) the Encrypted Attributes Sequence of :mod:`.encrypt`.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom.dataset import Dataset

from radguard.deid.actions import Plan, unlisted_rules
from radguard.deid.encrypt import encrypted_attributes_item
from radguard.deid.engine import Context, process_dataset
from radguard.deid.marks import write_marks
from radguard.deid.options import DeidOptions, Option
from radguard.deid.pixels import clean_pixels, visual_features_risk
from radguard.deid.pseudonym import Pseudonymizer
from radguard.deid.report import DeidChanges
from radguard.deid.scrub import Scrubber, identifier_tokens

__all__ = ["deidentify_dataset", "plan_for", "pseudonymizer_for"]


@lru_cache(maxsize=16)
def plan_for(options: frozenset[str]) -> Plan:
    """The compiled Table E.1-1 for a set of options (cached per process)."""
    return Plan(options)


_PSEUDONYMIZERS: dict[int, tuple[DeidOptions, Pseudonymizer]] = {}


def pseudonymizer_for(options: DeidOptions) -> Pseudonymizer:
    """One pseudonymizer per options object (its UID memo is shared by every file of a run).

    Keyed by identity, not equality: the mapping is not part of equality (it may be large)."""
    cached = _PSEUDONYMIZERS.get(id(options))
    if cached is not None and cached[0] is options:
        return cached[1]
    if len(_PSEUDONYMIZERS) >= 8:
        _PSEUDONYMIZERS.clear()
    made = Pseudonymizer(options.key, mapping=options.mapping, max_shift_days=options.max_shift_days)
    _PSEUDONYMIZERS[id(options)] = (options, made)
    return made


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
    except Exception:  # an undecodable value counts as absent
        return ""
    return str(value or "").strip()


def deidentify_dataset(ds: Dataset, options: DeidOptions) -> DeidChanges:
    """De-identify ``ds`` in place (give it a copy you own) and say what was done.

    Parameters
    ----------
    ds: a data set that passed the bounded reader (``radguard.dicomio.walk``) or was built in memory.
    options: the profile options, key and settings (:class:`DeidOptions`).

    Returns
    -------
    DeidChanges: every change (attribute path, action, reason), the options carried out on this data
    set (the CID 7050 codes written) and what could not be cleaned.

    Raises
    ------
    EncryptionError: the recipient certificate is unusable (only with ``recipient_cert``).
    """
    plan = plan_for(options.options)
    pseudo = pseudonymizer_for(options)
    patient_id, issuer = _text(ds, "PatientID"), _text(ds, "IssuerOfPatientID")
    study_uid, sop_class = _text(ds, "StudyInstanceUID"), _text(ds, "SOPClassUID")
    patient_key = f"{issuer}\x00{patient_id}" if patient_id else f"name\x00{_text(ds, 'PatientName')}"
    ctx = Context(
        options=options, plan=plan, rules=unlisted_rules(), pseudo=pseudo,
        scrubber=Scrubber(identifier_tokens(ds) if options.options else ()),
        sop_class=sop_class,
        date_offset=pseudo.date_offset(patient_key) if options.has(
            Option.RETAIN_MODIFIED_DATES) else None,
        patient_id=patient_id, issuer=issuer,
        originals=Dataset() if options.recipient_cert else None,
    )
    applied = list(options.option_list)
    uncleaned: list[str] = []
    if options.has(Option.CLEAN_PIXEL_DATA):
        outcome = clean_pixels(ds, rules_file=options.pixel_rules_file, ocr=options.ocr,
                               ocr_timeout=options.ocr_timeout)
        ctx.changes.extend(outcome.changes)
        ctx.notes.extend(outcome.notes)
        uncleaned.extend(outcome.uncleaned)
        if not outcome.applied:
            applied.remove(Option.CLEAN_PIXEL_DATA)
    if options.has(Option.CLEAN_VISUAL_FEATURES):
        risk = visual_features_risk(ds)
        if risk is not None:
            uncleaned.append(f"Clean Recognizable Visual Features: {risk}")
            applied.remove(Option.CLEAN_VISUAL_FEATURES)
    process_dataset(ds, ctx)
    ctx.changes.extend(write_marks(ds, applied, table_version=plan.version))
    if ctx.originals is not None and len(ctx.originals) and options.recipient_cert:
        charset = ds.get("SpecificCharacterSet")
        ds.EncryptedAttributesSequence = [
            encrypted_attributes_item(ctx.originals, options.recipient_cert, charset)]
        ctx.notes.append(f"{len(ctx.originals)} original attribute(s) kept in the Encrypted "
                         "Attributes Sequence (0400,0500)")
    return DeidChanges(
        changes=tuple(ctx.changes), applied=tuple(applied), uncleaned=tuple(uncleaned),
        notes=tuple(ctx.notes), original_patient_id=patient_id, original_study_uid=study_uid,
        new_patient_id=_text(ds, "PatientID"), new_study_uid=_text(ds, "StudyInstanceUID"),
        sop_class_uid=sop_class,
    )
