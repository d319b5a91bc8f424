"""Table E.1-1 (2023b) lists the three Station AE Title attributes twice, with Retain Device Identity
C in one row and K in the other. The more protective action applies: with Retain Device Identity the
AE title is cleaned, not kept verbatim."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from radguard.deid.tables import profile_table

AE_TITLES = {0x00400241: "PerformedStationAETitle", 0x00400001: "ScheduledStationAETitle",
             0x00321021: "ScheduledStudyLocationAETitle"}


@pytest.mark.parametrize("tag", sorted(AE_TITLES))
def test_duplicate_rows_merge_to_the_more_protective_action(tag: int) -> None:
    row = profile_table().fixed[tag]
    assert row.basic == "X"
    assert row.option("retain-device-identity") == "C"


def test_station_ae_title_is_cleaned_under_retain_device_identity(tmp_path: Path) -> None:
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.PerformedStationAETitle = "CTSCANNER01"
    ds.StationName = "CTROOM3"
    src = tmp_path / "in.dcm"
    ds.save_as(src)
    out = tmp_path / "out.dcm"
    env = {**os.environ, "RADGUARD_HOME": str(tmp_path / "home")}
    subprocess.run([sys.executable, "-m", "radguard.cli", "deid", str(src), "--out", str(out),
                    "--retain-device-identity"], check=True, capture_output=True, env=env, timeout=120)
    result = pydicom.dcmread(out)
    assert result.get("PerformedStationAETitle") != "CTSCANNER01"
    assert result.StationName == "CTROOM3"  # K under Retain Device Identity: the option still works
