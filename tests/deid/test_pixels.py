"""Clean Pixel Data (E.3.1): OCR with the real Tesseract, rule regions, and honest failures."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from radguard.deid import DeidOptions, deidentify_dataset
from tests.support.peers import require

KEY = b"pixels-test-key-0123456789abcdef"
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"
TEXT_BOX = (60, 200, 560, 260)  # x0, y0, x1, y1 of the burned-in text


def _image_with_text(rows: int = 480, cols: int = 640, modality: str = "US") -> Dataset:
    image = Image.new("L", (cols, rows), 0)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, cols, rows), fill=90)  # "anatomy" that must survive
    draw.text((TEXT_BOX[0] + 5, TEXT_BOX[1] + 5), "SMITH ALICE 1234567",
              fill=255, font=ImageFont.load_default(size=40))
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = US_IMAGE, generate_uid()
    ds.Modality, ds.Manufacturer = modality, "ACME Medical"
    ds.PatientName, ds.PatientID = "Smith^Alice", "1234567"
    ds.BurnedInAnnotation = "YES"
    ds.set_pixel_data(np.asarray(image, dtype=np.uint8), "MONOCHROME2", 8)
    return ds


def _run(ds: Dataset, *names: str, **settings: object) -> tuple[Dataset, object]:
    out = copy.deepcopy(ds)
    return out, deidentify_dataset(out, DeidOptions.from_names(names, key=KEY, **settings))


def test_ocr_blanks_burned_in_text_in_ultrasound() -> None:
    require("tesseract")
    out, changes = _run(_image_with_text(), "clean-pixel-data")
    x0, y0, x1, y1 = TEXT_BOX
    assert int(out.pixel_array[y0:y1, x0:x1].max()) == 0
    assert int(out.pixel_array[400, 320]) == 90  # the rest of the image is untouched
    assert out.BurnedInAnnotation == "NO"
    assert "113101" in {i.CodeValue for i in out.DeidentificationMethodCodeSequence}
    assert any("OCR" in c.reason for c in changes.changes)  # type: ignore[attr-defined]


def test_rule_file_regions_are_blanked(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"id": "acme-banner", "match": {
        "Manufacturer": "^acme", "Modality": "MR"}, "regions": [[0, 190, 640, 80]]}]}))
    ds = _image_with_text(modality="MR")
    out, changes = _run(ds, "clean-pixel-data", pixel_rules_file=str(rules))
    assert int(out.pixel_array[190:270, :].max()) == 0
    assert int(out.pixel_array[400, 320]) == 90
    assert any("acme-banner" in c.reason for c in changes.changes)  # type: ignore[attr-defined]


def test_declared_annotation_without_rule_is_reported_not_claimed() -> None:
    out, changes = _run(_image_with_text(modality="MR"), "clean-pixel-data")
    assert changes.uncleaned  # type: ignore[attr-defined]
    assert "clean-pixel-data" not in changes.applied  # type: ignore[attr-defined]
    assert out.BurnedInAnnotation == "YES"
    assert "113101" not in {i.CodeValue for i in out.DeidentificationMethodCodeSequence}


def test_undecodable_compressed_pixels_are_reported() -> None:
    path = pydicom.data.get_testdata_file("MR_small_jpeg_ls_lossless.dcm")
    ds = pydicom.dcmread(path)
    try:
        ds.pixel_array
        pytest.skip("a JPEG-LS decoder is installed here")
    except Exception:
        pass
    ds.Modality = "US"
    out, changes = _run(ds, "clean-pixel-data")
    assert any("could not be decoded" in u for u in changes.uncleaned)  # type: ignore[attr-defined]
    assert "BurnedInAnnotation" not in out or out.BurnedInAnnotation != "NO"


def test_visual_features_of_a_head_ct_are_not_claimed() -> None:
    ds = _image_with_text(modality="CT")
    ds.BodyPartExamined = "HEAD"
    out, changes = _run(ds, "clean-recognizable-visual-features")
    assert "clean-recognizable-visual-features" not in changes.applied  # type: ignore[attr-defined]
    assert any("deface" in u for u in changes.uncleaned)  # type: ignore[attr-defined]
    chest = _image_with_text(modality="CT")
    chest.BodyPartExamined = "CHEST"
    out, _ = _run(chest, "clean-recognizable-visual-features")
    assert out.RecognizableVisualFeatures == "NO"
