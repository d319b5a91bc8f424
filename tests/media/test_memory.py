"""Memory stays flat whatever the input (issue 2: under 300 MB RSS)."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

from radguard.samples import hostile

LIMIT_KB = 300 * 1024


def _big_dicom(path: Path, pixel_bytes: int) -> None:
    """A valid file whose native pixel data is ``pixel_bytes`` long (sparse on disk)."""
    ds = hostile.explicit_le(uid_suffix="900", with_pixel=False)
    header = hostile.base_file(ds, uid_suffix="900")
    header += struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, pixel_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + pixel_bytes)


def test_large_files_and_bombs_keep_rss_flat(tmp_path: Path) -> None:
    medium = tmp_path / "big"
    medium.mkdir()
    _big_dicom(medium / "BIG1.DCM", 700 * 1024 * 1024)
    _big_dicom(medium / "BIG2.DCM", 400 * 1024 * 1024)
    (medium / "BOMB.DCM").write_bytes(hostile.deflate_bomb(600 * 1024 * 1024))
    (medium / "NEST.DCM").write_bytes(hostile.nesting_bomb(5000))
    radguard = str(Path(sys.executable).parent / "radguard")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([radguard, "media", "scan", str(medium), "--workers", "2", "--format",
                        "json", "--no-record"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert r.returncode == 1, r.stderr
    assert '"BIG1.DCM"' in r.stdout and '"verdict": "suspicious"' in r.stdout
    assert max(peak, before) < LIMIT_KB, f"peak RSS {peak} kB"
