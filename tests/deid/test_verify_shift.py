"""Verify under Modified Dates: a shifted date equal to another original date is no residual,
an unshifted original date is."""

from __future__ import annotations

from pathlib import Path

import pydicom

from radguard.deid import DeidOptions, deidentify_file
from radguard.deid.verify import verify_file
from tests.conftest import PYDICOM_TEST_FILES


def _outputs(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "in.dcm"
    ds = pydicom.dcmread(PYDICOM_TEST_FILES / "CT_small.dcm")
    ds.StudyDate, ds.SeriesDate = "20200110", "20200105"
    ds.save_as(src)
    out = tmp_path / "out.dcm"
    options = DeidOptions.from_names(["retain-modified-dates"], key=b"k" * 32)
    deidentify_file(src, out, options)
    return src, out


def test_shifted_date_equal_to_another_original_date_is_not_a_residual(tmp_path: Path) -> None:
    src, out = _outputs(tmp_path)
    assert [f.check_id for f in verify_file(out, src)] == []
    ds = pydicom.dcmread(out)
    assert ds.StudyDate != "20200110"  # shifted
    ds.StudyDate = "20200105"  # as if the shift had landed on the original Series Date
    ds.save_as(out)
    assert [f.check_id for f in verify_file(out, src)] == []


def test_an_original_date_left_in_place_is_a_residual(tmp_path: Path) -> None:
    src, out = _outputs(tmp_path)
    ds = pydicom.dcmread(out)
    ds.SeriesDate = "20200105"  # the original value of the same attribute
    ds.save_as(out)
    found = verify_file(out, src)
    assert "deid.residual-original-value" in {f.check_id for f in found}
