"""Clean Pixel Data (PS3.15 E.3.1) and the Recognizable Visual Features check (E.3.2).

Burned-in text is blanked in two ways, both reported per file:

1. regions of a rule file per device (``pixel-rules.json`` and a site's own ``--pixel-rules`` file;
   a rule matches Manufacturer / Manufacturer's Model Name by regular expression and Modality, Rows,
   Columns by equality; regions are ``[x, y, width, height]``, negative x/y from the right/bottom);
2. for ultrasound (Modality US) and secondary capture (SOP Classes 1.2.840.10008.5.1.4.1.1.7*), where
   scanners and workstations burn text in, OCR with Tesseract (:mod:`.ocr`) on the first, middle and
   last frame; the union of the word boxes is blanked in every frame.

What cannot be done is returned as ``uncleaned`` (compressed pixel data that cannot be decoded,
Tesseract missing or too slow, burned-in annotation declared but no rule and no OCR for the device):
the option is then not claimed for that file (no code 113101, Burned In Annotation not set to NO).
Decoded compressed pixel data is written back uncompressed (Explicit VR Little Endian).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from radguard.deid.ocr import Box, OcrUnavailable, detect_text
from radguard.deid.report import Change
from radguard.deid.tables import load_json, pixel_rules

__all__ = ["PixelOutcome", "clean_pixels", "visual_features_risk"]

PIXEL_DATA = 0x7FE00010
SC_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
OCR_MARGIN = 3


@dataclass
class PixelOutcome:
    applied: bool = False
    changes: list[Change] = field(default_factory=list)
    uncleaned: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@cache
def _rules(extra_file: str | None) -> tuple[dict[str, Any], ...]:
    rules: list[dict[str, Any]] = []
    if extra_file:
        rules.extend(load_json(extra_file).get("rules", []))
    rules.extend(pixel_rules().get("rules", []))
    return tuple(rules)


def _matches(rule: dict[str, Any], ds: Dataset) -> bool:
    for key, want in rule.get("match", {}).items():
        have = ds.get(key)
        if have is None:
            return False
        if key in ("Manufacturer", "ManufacturerModelName"):
            if re.search(str(want), str(have), re.IGNORECASE) is None:
                return False
        elif str(have).strip() != str(want).strip():
            return False
    return True


def _rule_boxes(rule: dict[str, Any], rows: int, cols: int) -> list[Box]:
    boxes = []
    for x, y, w, h in rule.get("regions", []):
        x0 = cols + int(x) if int(x) < 0 else int(x)
        y0 = rows + int(y) if int(y) < 0 else int(y)
        boxes.append(Box(max(0, x0), max(0, y0), int(w), int(h)).grow(0, cols, rows))
    return boxes


def _needs_ocr(ds: Dataset) -> bool:
    return str(ds.get("Modality", "")).upper() == "US" or str(
        ds.get("SOPClassUID", "")).startswith(SC_PREFIX)


def clean_pixels(ds: Dataset, *, rules_file: str | None, ocr: bool,
                 ocr_timeout: float) -> PixelOutcome:
    """Blank burned-in text in ``ds`` in place (before the attribute pass, which needs no pixels)."""
    out = PixelOutcome()
    if PIXEL_DATA not in ds:
        out.applied = True
        return out
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    rule = next((r for r in _rules(rules_file) if _matches(r, ds)), None)
    boxes = _rule_boxes(rule, rows, cols) if rule else []
    want_ocr = ocr and _needs_ocr(ds)
    declared = str(ds.get("BurnedInAnnotation", "")).upper() == "YES"
    if not boxes and not want_ocr:
        if declared:
            out.uncleaned.append("Burned In Annotation is YES but no pixel rule matches this "
                                 "device and OCR does not apply: pixel data not cleaned")
        else:
            out.applied = True
            out.notes.append("pixel data: no rule for this device and no burned-in text expected")
        return out
    try:
        arr = ds.pixel_array
    except Exception as exc:  # any decoder failure is reported, not raised
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "?")
        out.uncleaned.append(f"pixel data could not be decoded (transfer syntax {ts}: "
                             f"{type(exc).__name__}): not cleaned")
        return out
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    multi = frames > 1
    how = [f"rule {rule.get('id', '?')}"] if rule else []
    if want_ocr:
        picks = sorted({0, frames // 2, frames - 1}) if multi else [0]
        try:
            for i in picks:
                found = detect_text(arr[i] if multi else arr, timeout=ocr_timeout)
                boxes.extend(b.grow(OCR_MARGIN, cols, rows) for b in found)
            how.append(f"OCR of frame(s) {', '.join(map(str, picks))} of {frames}")
        except OcrUnavailable as exc:
            out.uncleaned.append(f"OCR for burned-in text could not run ({exc}): pixel data "
                                 "checked by rules only" if rule else f"OCR could not run ({exc})")
            if not rule:
                return out
    if boxes:
        arr = np.array(arr, copy=True)
        for b in boxes:
            if multi:
                arr[:, b.y:b.y + b.height, b.x:b.x + b.width] = 0
            else:
                arr[b.y:b.y + b.height, b.x:b.x + b.width] = 0
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
        if arr.ndim == (4 if multi else 3) and photometric.startswith("YBR"):
            photometric = "RGB"
        ds.set_pixel_data(arr, photometric, int(ds.get("BitsStored", arr.dtype.itemsize * 8)),
                          generate_instance_uid=False)
        out.changes.append(Change("(7FE0,0010)", "Pixel Data", "C",
                                  f"Clean Pixel Data (E.3.1): {len(boxes)} region(s) blanked by "
                                  f"{' and '.join(how)}"))
    else:
        out.notes.append(f"pixel data examined ({' and '.join(how)}): no burned-in text found")
    out.applied = not out.uncleaned
    return out


def visual_features_risk(ds: Dataset) -> str | None:
    """Why this image may show recognizable visual features (E.3.2), or ``None``."""
    spec = load_json("rules.json")["visual_features"]
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class in spec["photo_sop_classes"]:
        return "photographic image: recognizable visual features cannot be removed automatically"
    modality = str(ds.get("Modality", "")).upper()
    body_part = str(ds.get("BodyPartExamined", "")).upper().replace(" ", "")
    if modality in spec["volume_modalities"] and body_part in spec["head_body_parts"]:
        return (f"{modality} of the {body_part.lower()}: a face can be reconstructed from the "
                "volume and RadGuard does not deface")
    return None
