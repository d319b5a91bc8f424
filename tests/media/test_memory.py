"""Memory stays flat whatever the input (issue 2: under 300 MB RSS)."""

from __future__ import annotations

import os
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
    out, err = tmp_path / "out.json", tmp_path / "err.txt"
    with open(out, "wb") as fout, open(err, "wb") as ferr:
        proc = subprocess.Popen([radguard, "media", "scan", str(medium), "--workers", "2",
                                 "--format", "json", "--no-record"], stdout=fout, stderr=ferr,
                                env=dict(os.environ))
        # wait4: the peak RSS of this scan's process tree (the largest of the scan and the workers
        # it reaped), not of whatever other child of the test process Popen happens to reap now
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out.read_text("utf-8")
    assert proc.returncode == 1, err.read_text("utf-8")
    assert '"BIG1.DCM"' in stdout and '"verdict": "suspicious"' in stdout
    assert usage.ru_maxrss < LIMIT_KB, f"peak RSS {usage.ru_maxrss} kB"
