"""Atomic output writes of the de-identifier: temporary file, fdatasync of our own descriptor,
rename; never ``os.sync()`` (which flushes every dirty page of the machine)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest

from radguard.deid import DeidOptions, deidentify_tree
from radguard.deid.files import StagedWrites, sync_dirs, write_atomic

KEY = b"write-test-key-0123456789abcdef!"


def test_pieces_are_written_whole_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    """Given bytes and memoryview pieces, the file holds them in order and only the file is left."""
    big = os.urandom(300_000)
    dst = tmp_path / "a" / "b" / "out.dcm"
    write_atomic([b"head", memoryview(big)[10:], b"tail"], dst)
    assert dst.read_bytes() == b"head" + big[10:] + b"tail"
    assert sorted(p.name for p in dst.parent.iterdir()) == ["out.dcm"]
    many = [bytes([i % 256]) * 3 for i in range(3000)]  # more pieces than one writev takes
    write_atomic(many, dst)
    assert dst.read_bytes() == b"".join(many)


def test_a_folder_removed_after_a_write_is_made_again(tmp_path: Path) -> None:
    """Given an output folder deleted between two writes of the same process, the second write
    still lands (the folder cache does not trust a folder that went away)."""
    dst = tmp_path / "gone" / "x.dcm"
    write_atomic(b"one", dst)
    shutil.rmtree(dst.parent)
    write_atomic(b"two", dst)
    assert dst.read_bytes() == b"two"
    sync_dirs([dst.parent, tmp_path / "never-made"])  # a missing folder is not an error


def test_a_run_never_calls_os_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a folder run on one worker, every output is in place without any ``os.sync()``."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("CT_small.dcm", "MR_small_bigendian.dcm"):
        shutil.copy(pydicom.data.get_testdata_file(name), src / name)

    def no_sync() -> None:
        raise AssertionError("os.sync() flushes the whole machine")

    monkeypatch.setattr(os, "sync", no_sync)
    report = deidentify_tree(src, tmp_path / "out", DeidOptions.from_names([], key=KEY),
                             workers=1)
    assert [f.status.value for f in report.files] == ["deidentified", "deidentified"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["CT_small.dcm",
                                                                     "MR_small_bigendian.dcm"]


def test_staged_batch_is_renamed_only_after_commit_and_failures_are_named(tmp_path: Path) -> None:
    """Given three staged outputs, none is visible before commit; after it the two that could be
    renamed are in place with their bytes, the one whose name is taken by a folder is reported with
    its error, and no temporary file is left."""
    staging = StagedWrites()
    blocked = tmp_path / "out" / "blocked.dcm"
    blocked.mkdir(parents=True)
    (blocked / "keep").write_bytes(b"x")  # a non-empty folder: the rename must fail
    tmps = [staging.stage([b"one", memoryview(b"-1")], tmp_path / "out" / "a.dcm"),
            staging.stage(b"two", blocked),
            staging.stage(b"three", tmp_path / "out" / "sub" / "c.dcm")]
    assert len(staging) == 3
    assert not (tmp_path / "out" / "a.dcm").exists()
    errors = staging.commit()
    assert list(errors) == [tmps[1]] and isinstance(errors[tmps[1]], OSError)
    assert (tmp_path / "out" / "a.dcm").read_bytes() == b"one-1"
    assert (tmp_path / "out" / "sub" / "c.dcm").read_bytes() == b"three"
    left = [p.name for p in (tmp_path / "out").rglob("*.part")]
    assert left == [] and len(staging) == 0


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    """Given staged outputs and an abort, neither outputs nor temporary files remain."""
    staging = StagedWrites()
    staging.stage(b"data", tmp_path / "x.dcm")
    staging.abort()
    assert list(tmp_path.iterdir()) == []


def test_every_output_is_flushed_before_its_name_appears(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a folder run in batches, each temporary file was ``fdatasync``-ed before the rename
    that gives it its final name, and every file is reported done with its output in place."""
    src = tmp_path / "in"
    src.mkdir()
    names = ["CT_small.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "JPEG2000.dcm"]
    for i in range(30):  # more files than one batch
        name = names[i % len(names)]
        shutil.copy(pydicom.data.get_testdata_file(name), src / f"{i:02d}-{name}")
    flushed: set[str] = set()
    renamed: list[str] = []
    real_sync, real_replace = os.fdatasync, os.replace

    def sync(fd: int) -> None:
        real_sync(fd)
        flushed.add(os.readlink(f"/proc/self/fd/{fd}"))

    def rename(a: str | Path, b: str | Path) -> None:
        assert str(a) in flushed, f"{a} renamed before it was flushed"
        renamed.append(str(b))
        real_replace(a, b)

    monkeypatch.setattr(os, "fdatasync", sync)
    monkeypatch.setattr(os, "replace", rename)
    report = deidentify_tree(src, tmp_path / "out", DeidOptions.from_names([], key=KEY),
                             workers=1)
    assert {f.status.value for f in report.files} == {"deidentified"}
    assert len(renamed) == 30 and all(f.pending is None for f in report.files)
    assert all(Path(f.output).is_file() for f in report.files if f.output)
    assert not list((tmp_path / "out").rglob("*.part"))


def test_reports_cross_process_boundaries_intact(tmp_path: Path) -> None:
    """Given the reports of a real run (changes, findings, refusals), a pickle round trip (how
    workers hand them to the main process) gives equal reports, field for field."""
    import pickle

    src = tmp_path / "in"
    src.mkdir()
    for name in ("CT_small.dcm", "rtplan.dcm", "MR_small_bigendian.dcm"):
        shutil.copy(pydicom.data.get_testdata_file(name), src / name)
    (src / "not-dicom.txt").write_text("hello")
    report = deidentify_tree(src, tmp_path / "out", DeidOptions.from_names(["tcia"], key=KEY))
    back = pickle.loads(pickle.dumps(report.files, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == report.files
    assert [f.changes.original_study_uid if f.changes else None for f in back] == \
        [f.changes.original_study_uid if f.changes else None for f in report.files]
    assert any(f.findings for f in back) and sum(len(f.changes.changes) for f in back
                                                   if f.changes) > 20


def test_listing_mirrors_the_tree_and_skips_symlinks(tmp_path: Path) -> None:
    """Given nested folders, a symlinked file and a symlinked folder, the pairs are the regular
    files only, in path-component order, each mapped to the same relative path under OUTPUT."""
    from radguard.deid.batch import pairs

    src = tmp_path / "in"
    for rel in ("b/x.dcm", "a-c/y.dcm", "a/b/z.dcm", "top.dcm"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(b"x")
    (src / "link.dcm").symlink_to(src / "top.dcm")
    (src / "linked-dir").symlink_to(src / "b")
    got = [(s.relative_to(src).as_posix(), d.relative_to(tmp_path / "out").as_posix())
           for s, d in pairs(src, tmp_path / "out")]
    assert got == [(r, r) for r in ("a/b/z.dcm", "a-c/y.dcm", "b/x.dcm", "top.dcm")]
