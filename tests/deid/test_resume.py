"""An interrupted run resumes to complete outputs; the workers' JSON parts give the same report.

Outputs are named only after their data are flushed (temporary file, ``fdatasync``, rename), so
``--resume`` may trust any output it finds; temporary files an interrupted run left behind are
removed by the resumed run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from radguard.deid import DeidOptions, deidentify_tree
from radguard.deid.verify import verify_file

KEY = b"resume-test-key-0123456789abcdef"
SOURCES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "MR_small_bigendian.dcm"]


def _corpus(root: Path, count: int) -> Path:
    src = root / "in"
    for i in range(count):
        name = SOURCES[i % len(SOURCES)]
        folder = src / f"s{i // 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(pydicom.data.get_testdata_file(name), folder / f"{i:04d}-{name}")
    return src


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from radguard.cli import main; main()", "deid", *args]


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_killed_run_resumes_to_the_outputs_of_an_uninterrupted_run(
        tmp_path: Path, radguard_home: Path) -> None:
    """Given a run killed (SIGKILL to its whole process group) once some outputs exist, a
    ``--resume`` run completes it: every input has its output, byte for byte the output of an
    uninterrupted run with the same key, no temporary file is left, the files done before the
    kill are reported as resumed, and the verifier finds nothing in any output."""
    src = _corpus(tmp_path, 600)
    key_file = tmp_path / "project.key"
    key_file.write_bytes(KEY)
    clean, out = tmp_path / "clean", tmp_path / "out"
    common = ["--key-file", str(key_file), "--workers", "2", "-f", "json"]
    done = subprocess.run(_cli(str(src), "--out", str(clean), *common), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _outputs(clean)
    assert len(expected) == 600

    proc = subprocess.Popen(_cli(str(src), "--out", str(out), *common), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and sum(1 for p in out.rglob("*.dcm")) < 48:
            time.sleep(0.002)
        if proc.poll() is not None:
            pytest.skip("the run finished before it could be interrupted")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        with_kill = proc.wait(timeout=60)
    assert with_kill == -signal.SIGKILL
    time.sleep(0.2)  # workers of the killed group are gone (same session, same signal)
    before = {p.relative_to(out).as_posix() for p in out.rglob("*.dcm")}
    assert 0 < len(before) < 600

    resumed = subprocess.run(_cli(str(src), "--out", str(out), "--resume", *common),
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    skipped = {Path(f["output"]).relative_to(out).as_posix() for f in report["files"]
               if f["message"] == "already de-identified (resume)"}
    assert before <= skipped and report["counts"]["deidentified"] == 600
    assert _outputs(out) == expected
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    for rel in sorted(expected)[::40]:
        assert verify_file(out / rel, src / rel) == []


def test_json_parts_made_by_the_workers_equal_the_whole_report(tmp_path: Path) -> None:
    """Given runs on one and on two workers with ``json=True``, ``to_json()`` (the workers' parts
    joined) is the text of ``json.dumps(to_dict())`` (what the generic JSON format writes), and
    without it the report still renders the same document."""
    src = _corpus(tmp_path, 30)
    (src / "s00" / "not-dicom.txt").write_text("hello")
    options = DeidOptions.from_names(["tcia"], key=KEY)
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        report = deidentify_tree(src, out, options, workers=workers, json=True)
        assert len(report.files_json) == len(report.files) == 31
        whole = json.dumps(report.to_dict(), ensure_ascii=False, default=str)
        assert report.to_json() == whole
        plain = deidentify_tree(src, tmp_path / f"plain{workers}", options, workers=workers,
                                resume=False)
        assert plain.files_json == () and json.loads(plain.to_json())["counts"] == \
            json.loads(whole)["counts"]
