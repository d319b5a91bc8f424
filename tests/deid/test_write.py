"""Atomic output writes of the de-identifier: temporary file, fdatasync of our own descriptor,
rename; never ``os.sync()`` (which flushes every dirty page of the machine)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pydicom
import pytest

from radguard.deid import DeidOptions, deidentify_tree
from radguard.deid.files import sync_dirs, write_atomic

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
