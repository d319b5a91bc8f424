"""RadGuard's own ISO 9660 writer (ECMA-119 level 1 + Joliet) and the ISO export built on it.

Every image is read back by independent readers: pycdlib (both hierarchies, byte for byte),
genisoimage's ``isoinfo``, ``xorriso`` (listing and a read of every block), the Linux kernel when
``mount -o loop,ro`` is permitted, and ``media open`` (every opened file byte-identical to its
source). Names outside level 1 are refused; an export never leaves a temporary file behind and
never overwrites.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import random
import subprocess
from pathlib import Path

import pycdlib
import pytest

from radguard.config import Settings
from radguard.export import ExportError, OpenOptions, TargetExists, open_export
from radguard.export import writer as writer_module
from radguard.export.image import beside
from radguard.export.iso9660 import (
    HEAD_SECTORS,
    SECTOR,
    Directories,
    IsoFile,
    create_image,
    finish_image,
    reserve,
)
from radguard.export.policy import Capacity, capacity
from tests.export.conftest import PASSWORD, Sources
from tests.export.helpers import export
from tests.support.peers import require


def _names() -> list[str]:
    names = ["DICOMDIR", "README.TXT", "INDEX.HTM", "MANIFEST.JSN", "MANIFEST.SIG", "A", "Z_9.X"]
    names += [f"DICOM/PA000001/ST000001/SE000001/IM{i:06d}" for i in range(1, 90)]  # > 1 sector
    names += [f"DICOM/PA{p:06d}/ST000001/SE{s:06d}/IM000001" for p in range(2, 6)
              for s in range(1, 3)]
    names.append("L2/L3/L4/L5/L6/L7/L8/DEEPEST")  # 8 levels with the root
    return names


def _build(path: Path, names: list[str], seed: int = 7) -> dict[str, bytes]:
    rng = random.Random(seed)
    sizes = [0, 1, SECTOR - 1, SECTOR, SECTOR + 1, 3 * SECTOR]
    order = names[:]
    rng.shuffle(order)  # extents in any order, as workers finish
    fd = create_image(str(path))
    files, content = [], {}
    try:
        for i, rel in enumerate(order):
            data = rng.randbytes(sizes[i] if i < len(sizes) else rng.randint(0, 9000))
            offset = reserve(fd, len(data))
            os.pwrite(fd, data, offset)
            files.append(IsoFile(rel, offset // SECTOR, len(data)))
            content[rel] = data
        size = finish_image(fd, files, "radguard test-1")
        os.fsync(fd)
    finally:
        os.close(fd)
    assert size == path.stat().st_size and size % SECTOR == 0
    return content


def _iso9660_path(rel: str) -> str:
    last = rel.rsplit("/", 1)[-1]
    return "/" + rel + ("" if "." in last else ".") + ";1"


def _read_back(image: Path, content: dict[str, bytes]) -> None:
    """pycdlib reads every file of both hierarchies byte for byte and lists nothing else."""
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        assert iso.has_joliet() and not iso.has_rock_ridge()
        assert iso.pvd.volume_identifier.rstrip() == b"RADGUARD_TEST_1"
        for rel, data in content.items():
            for kw in ({"iso_path": _iso9660_path(rel)}, {"joliet_path": "/" + rel}):
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, **kw)
                assert out.getvalue() == data, (rel, kw)
        listed = {(d.rstrip("/") + "/" + f).lstrip("/") for d, _s, fs in iso.walk(iso_path="/")
                  for f in fs}
        assert listed == {_iso9660_path(r).lstrip("/") for r in content}
    finally:
        iso.close()


def test_pycdlib_reads_both_hierarchies_byte_for_byte(tmp_path: Path) -> None:
    image = tmp_path / "t.iso"
    _read_back(image, _build(image, _names()))


def test_directories_planned_and_written_by_another_process(tmp_path: Path) -> None:
    """As an export does it: the directories are planned from the names and written, all but the
    roots, by a forked process while the root's files are still being added; this process then
    finishes the image from the plan handed back as JSON."""
    image = tmp_path / "t.iso"
    names = _names()
    rng = random.Random(3)
    fd = create_image(str(image))
    files: list[IsoFile] = []
    content: dict[str, bytes] = {}

    def put(rel: str) -> None:
        data = rng.randbytes(rng.randint(0, 5000))
        offset = reserve(fd, len(data))
        os.pwrite(fd, data, offset)
        files.append(IsoFile(rel, offset // SECTOR, len(data)))
        content[rel] = data

    try:
        for rel in names:
            if "/" in rel:
                put(rel)
        below = tuple(files)

        def work() -> bytes:
            own = os.open(image, os.O_RDWR)  # its own open file, as reserve()'s flock needs
            return Directories.plan(own, names).write_below_root(own, below).to_json()

        with beside(work) as planned:
            for rel in names:
                if "/" not in rel:
                    put(rel)
        size = Directories.from_json(planned[0]).finish(fd, files, "radguard test-1")
        os.fsync(fd)
    finally:
        os.close(fd)
    assert size == image.stat().st_size
    _read_back(image, content)


def test_a_failure_of_the_directory_process_is_an_export_error() -> None:
    def work() -> bytes:
        raise ValueError("not an ISO 9660 level 1 file ID")

    with pytest.raises(ExportError, match="level 1 file ID"), beside(work):
        pass


def test_finish_refuses_files_other_than_the_planned_ones(tmp_path: Path) -> None:
    fd = create_image(str(tmp_path / "t.iso"))
    try:
        at = reserve(fd, 10) // SECTOR
        dirs = Directories.plan(fd, ["A", "B"])
        with pytest.raises(ValueError, match="planned"):
            dirs.finish(fd, [IsoFile("A", at, 10)], "X")
    finally:
        os.close(fd)


def test_isoinfo_and_xorriso_list_and_read_every_block(tmp_path: Path) -> None:
    image = tmp_path / "t.iso"
    content = _build(image, _names())
    listing = subprocess.run([require("isoinfo"), "-l", "-i", str(image)], capture_output=True,
                             text=True, check=True).stdout
    assert "IM000089.;1" in listing and "README.TXT;1" in listing and "DEEPEST.;1" in listing
    joliet = subprocess.run(["isoinfo", "-J", "-f", "-i", str(image)], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert {"/" + r for r in content} <= set(joliet)
    xo = subprocess.run([require("xorriso"), "-indev", str(image), "-find", "/", "-type", "f"],
                        capture_output=True, text=True)
    assert xo.returncode == 0, xo.stderr
    found = {line.strip("'") for line in xo.stdout.splitlines()}
    assert {"/" + r for r in content} <= found
    check = subprocess.run(["xorriso", "-indev", str(image), "-check_media", "--"],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "+ good" in check.stdout + check.stderr
    extracted = tmp_path / "x"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(image), "-extract", "/",
                    str(extracted)], capture_output=True, check=True)
    for rel, data in content.items():
        assert (extracted / rel).read_bytes() == data, rel


def test_linux_mounts_the_image_when_permitted(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mount needs root")
    image = tmp_path / "t.iso"
    content = _build(image, _names())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-o", "loop,ro", str(image), str(mnt)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"loop mount not available here: {r.stderr.strip()[:120]}")
    try:
        for rel, data in content.items():
            assert (mnt / rel).read_bytes() == data, rel
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@pytest.mark.parametrize("rel", ["dicom/IM1", "ABCDEFGHI", "A/B.TOOLONG", "A/../B", "A B",
                                 "1/2/3/4/5/6/7/8/9"])
def test_names_outside_level_1_are_refused(tmp_path: Path, rel: str) -> None:
    fd = create_image(str(tmp_path / "t.iso"))
    try:
        with pytest.raises(ValueError):
            finish_image(fd, [IsoFile(rel, HEAD_SECTORS, 0)], "X")
    finally:
        os.close(fd)


@pytest.mark.parametrize("files", [
    [IsoFile("A", HEAD_SECTORS, 0), IsoFile("A", HEAD_SECTORS, 0)],
    [IsoFile("A", HEAD_SECTORS, 0), IsoFile("A/B", HEAD_SECTORS, 0)],
    [IsoFile("A/B", HEAD_SECTORS, 0), IsoFile("A", HEAD_SECTORS, 0)],
    [IsoFile("A", 3, 0)],  # inside the descriptors
    [IsoFile("A", HEAD_SECTORS, 10 * SECTOR)],  # past the data written
    [IsoFile("A", HEAD_SECTORS, 2 * SECTOR), IsoFile("B", HEAD_SECTORS + 1, 10)],  # overlap
])
def test_clashes_and_extents_outside_the_data_are_refused(tmp_path: Path,
                                                          files: list[IsoFile]) -> None:
    fd = create_image(str(tmp_path / "t.iso"))
    try:
        reserve(fd, 3 * SECTOR)
        with pytest.raises(ValueError):
            finish_image(fd, files, "X")
    finally:
        os.close(fd)


def _sources_by_digest(sources: Sources) -> dict[str, bytes]:
    return {hashlib.sha256(b := p.read_bytes()).hexdigest(): b for p in sources.files()}


def test_iso_export_opens_byte_identical_and_leaves_nothing(tmp_path: Path, sources: Sources,
                                                            settings: Settings) -> None:
    iso = tmp_path / "out" / "export.iso"
    result = export(sources, iso, settings, iso=True, media="cd")
    assert [p.name for p in iso.parent.iterdir()] == ["export.iso"]  # no temp, no stage
    assert oct(iso.stat().st_mode & 0o777) == "0o600"
    opened = open_export(iso, tmp_path / "plain", OpenOptions(password=PASSWORD), settings)
    assert opened.files == result.instances + 3  # + DICOMDIR, README.TXT, INDEX.HTM
    want = _sources_by_digest(sources)
    got = [p for p in (tmp_path / "plain" / "DICOM").rglob("*") if p.is_file()]
    assert len(got) == len(want)
    for p in got:
        assert hashlib.sha256(p.read_bytes()).hexdigest() in want, p
    with pytest.raises(TargetExists):
        export(sources, iso, settings, iso=True, media="cd")


def test_split_iso_export_copies_extents_into_each_medium(
        tmp_path: Path, sources: Sources, settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    small = dataclasses.replace(capacity("cd"), bytes=320 * 1024, overhead_fraction=0.0,
                                overhead_bytes=0)

    def tiny(kind: str) -> Capacity:
        return small if kind == "cd" else capacity(kind)

    monkeypatch.setattr(writer_module, "capacity", tiny)
    iso = tmp_path / "out" / "export.iso"
    result = export(sources, iso, settings, iso=True, media="cd")
    assert len(result.media) > 1
    assert sorted(p.name for p in iso.parent.iterdir()) == sorted(
        Path(m.path).name for m in result.media)
    want = _sources_by_digest(sources)
    seen: set[str] = set()
    for i, m in enumerate(result.media):
        assert Path(m.path).stat().st_size <= 320 * 1024
        out = tmp_path / f"plain{i}"
        open_export(Path(m.path), out, OpenOptions(password=PASSWORD), settings)
        for p in (out / "DICOM").rglob("*"):
            if p.is_file():
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
                assert digest in want and digest not in seen
                seen.add(digest)
    assert seen == set(want)


def test_a_dropped_duplicate_leaves_no_bytes_on_the_disc(tmp_path: Path, sources: Sources,
                                                         settings: Settings) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, p in enumerate(sources.files()):
        (folder / f"{i}.dcm").write_bytes(p.read_bytes())
    (folder / "zz-copy.dcm").write_bytes(sources.files()[0].read_bytes())  # same SOP Instance
    iso = tmp_path / "export.iso"
    result = export(dataclasses.replace(sources, folder=folder), iso, settings, iso=True)
    assert any("duplicate" in s.reason for s in result.skipped)
    pyc = pycdlib.PyCdlib()
    pyc.open(str(iso))
    try:
        covered: set[int] = set()
        for d, _s, fs in pyc.walk(iso_path="/"):
            for f in fs:
                rec = pyc.get_record(iso_path=d.rstrip("/") + "/" + f)
                first = rec.extent_location()
                covered.update(range(first, first + max(1, -(-rec.get_data_length() // SECTOR))))
        tables = pyc.pvd.path_table_location_le
    finally:
        pyc.close()
    data = iso.read_bytes()
    stray = [s for s in range(HEAD_SECTORS, tables) if s not in covered
             and data[s * SECTOR:(s + 1) * SECTOR].strip(b"\x00")]
    assert stray == []


def test_a_file_over_4_gib_is_refused_before_any_work(tmp_path: Path, settings: Settings) -> None:
    from radguard.export import ExportError

    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "huge.dcm", "wb") as fh:  # sparse: takes no disk space
        fh.truncate((1 << 32) + 1)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match="4 GiB"):
        export(Sources(folder, (), ()), out / "e.iso", settings, iso=True, media="usb")
    assert list(out.iterdir()) == []


def test_early_write_out_thread_runs_and_stops(tmp_path: Path) -> None:
    """The write-out thread (``sync_file_range`` every ``step`` bytes) starts on the first report
    past the step, leaves the bytes as written and is joined by close()."""
    from radguard.export.writeback import Writeback

    path = tmp_path / "w.bin"
    data = random.Random(5).randbytes(3 * 1024 * 1024)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with Writeback(fd, step=1024 * 1024) as wb:
            for i in range(3):
                os.pwrite(fd, data[i << 20:(i + 1) << 20], i << 20)
                wb.done(1 << 20)
            started = wb._thread is not None
        assert wb._thread is None  # joined
        assert started or wb._call is None  # no sync_file_range here: nothing to start
        os.fsync(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
