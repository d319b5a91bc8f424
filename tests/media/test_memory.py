"""Memory stays flat whatever the input (issue 2: under 300 MB RSS)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
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
        # Polled from /proc: the RSS summed over the scan and its workers. Not ru_maxrss: a child
        # forked from this (large) pytest process keeps the parent's high-water mark across exec.
        peak_kb = _peak_tree_rss_kb(proc)
    stdout = out.read_text("utf-8")
    assert proc.returncode == 1, err.read_text("utf-8")
    assert '"BIG1.DCM"' in stdout and '"verdict": "suspicious"' in stdout
    assert 0 < peak_kb < LIMIT_KB, f"peak RSS {peak_kb} kB"


def _peak_tree_rss_kb(proc: subprocess.Popen[bytes]) -> int:
    import psutil  # type: ignore[import-untyped]

    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree) // 1024)
        except psutil.Error:
            pass
        time.sleep(0.02)
    return peak
