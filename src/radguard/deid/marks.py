"""What a de-identifier writes about itself (PS3.15 E.1.1 items 5-7, PS3.3 C.7.1.1, C.7.6.1.1.3).

- Patient Identity Removed (0012,0062) = YES;
- De-identification Method (0012,0063): RadGuard, its version, the profile table and the options;
- De-identification Method Code Sequence (0012,0064): one CID 7050 code per option carried out on this
  data set (113100 always; an option that could not be applied to this file is not claimed);
- Longitudinal Temporal Information Modified (0028,0303): UNMODIFIED (Full Dates), MODIFIED (Modified
  Dates) or REMOVED;
- Burned In Annotation (0028,0301) = NO when Clean Pixel Data was carried out, Recognizable Visual
  Features (0028,0302) = NO when Clean Recognizable Visual Features was;
- Original Attributes Sequence (0400,0561) removed (the table's X; checked again here).
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radguard import __version__
from radguard.deid.options import Option
from radguard.deid.report import Change
from radguard.deid.tables import method_codes

__all__ = ["write_marks"]

ORIGINAL_ATTRIBUTES_SEQUENCE = 0x04000561


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def write_marks(ds: Dataset, applied: Seq[str], *, table_version: str) -> list[Change]:
    """Write the attributes above into ``ds`` for the options in ``applied`` (E.3 order)."""
    codes = method_codes()
    changes: list[Change] = []
    ds.PatientIdentityRemoved = "YES"
    method = [f"RadGuard {__version__}", "DICOM PS3.15 2023b Annex E", table_version[:64]]
    method += [codes[o][1][:64] for o in ["basic", *applied]]
    ds.DeidentificationMethod = method
    previous = [item for item in ds.get("DeidentificationMethodCodeSequence", [])
                if item.get("CodingSchemeDesignator") == "DCM"]
    seen = {str(item.get("CodeValue")) for item in previous}
    items = list(previous)
    for option in ["basic", *applied]:
        value, meaning = codes[option]
        if value not in seen:
            items.append(_code(value, meaning))
            seen.add(value)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    if Option.RETAIN_FULL_DATES in applied:
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    elif Option.RETAIN_MODIFIED_DATES in applied:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    else:
        ds.LongitudinalTemporalInformationModified = "REMOVED"
    if Option.CLEAN_PIXEL_DATA in applied and "PixelData" in ds:
        ds.BurnedInAnnotation = "NO"
    if Option.CLEAN_VISUAL_FEATURES in applied and "PixelData" in ds:
        ds.RecognizableVisualFeatures = "NO"
    if ORIGINAL_ATTRIBUTES_SEQUENCE in ds:
        del ds[ORIGINAL_ATTRIBUTES_SEQUENCE]
        changes.append(Change("(0400,0561)", "Original Attributes Sequence", "X",
                              "E.1.1: a de-identifier removes the Original Attributes Sequence"))
    for keyword, tag in (("PatientIdentityRemoved", "(0012,0062)"),
                         ("DeidentificationMethod", "(0012,0063)"),
                         ("DeidentificationMethodCodeSequence", "(0012,0064)"),
                         ("LongitudinalTemporalInformationModified", "(0028,0303)")):
        changes.append(Change(tag, keyword, "D", "written by the de-identifier (PS3.15 E.1.1)"))
    return changes
