"""Fixtures for the custody path: a RadGuard home, media built from pydicom's real test files."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from radguard.config import Settings, load_settings
from radguard.media.engines import EngineConfig
from radguard.media.sanitize import SanitizeOptions
from radguard.media.scan import ScanOptions

REAL = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "rtdose.dcm", "SC_rgb.dcm"]


def real_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    home = tmp_path / "home"
    return load_settings(environ={"RADGUARD_HOME": str(home)}, station="media-station",
                         operator="tech1")


@pytest.fixture
def scan_options() -> ScanOptions:
    return ScanOptions(workers=1, engines=EngineConfig(yara=False))


@pytest.fixture
def options(scan_options: ScanOptions) -> SanitizeOptions:
    return SanitizeOptions(scan=scan_options)


def with_private(src: Path, dst: Path) -> None:
    """A real file plus one safe private element (Table E.3.10-1) and one unsafe one."""
    ds = pydicom.dcmread(src)
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    block.add_new(0x23, "DS", "1.5")  # Table Speed: safe
    block.add_new(0x77, "LO", "secret note")  # not in the table
    ds.save_as(dst, enforce_file_format=True)


def polyglot(src: Path, dst: Path) -> None:
    """A PE header in the preamble (CVE-2019-11687)."""
    data = bytearray(src.read_bytes())
    pre = bytearray(128)
    pre[0:2] = b"MZ"
    pre[0x3C:0x40] = struct.pack("<I", 0x40)
    pre[0x40:0x44] = b"PE\0\0"
    data[0:128] = pre
    dst.write_bytes(bytes(data))


@pytest.fixture
def make_medium(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "medium", *, hostile: bool = True, private: bool = True) -> Path:
        root = tmp_path / name
        (root / "DICOM").mkdir(parents=True)
        for i, n in enumerate(REAL):
            shutil.copy(real_file(n), root / "DICOM" / f"IM{i:04d}")
        if private:
            with_private(real_file("CT_small.dcm"), root / "DICOM" / "PRIV0001")
        tiff = bytearray(real_file("MR_small.dcm").read_bytes())
        tiff[0:4] = b"II*\0"
        (root / "DICOM" / "TIFF0001").write_bytes(bytes(tiff))
        (root / "README.TXT").write_text("Images of the outside hospital\n")
        if hostile:
            polyglot(real_file("CT_small.dcm"), root / "DICOM" / "POLY0001")
            trailing = real_file("MR_small.dcm").read_bytes() + b"hidden bytes after the data set"
            (root / "DICOM" / "TRAIL001").write_bytes(trailing)
            (root / "autorun.inf").write_text("[autorun]\nopen=viewer.exe\n")
        return root

    return make
