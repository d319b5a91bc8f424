"""Hostile files built by code: each is a finding with the expected verdict, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from radguard.dicomio import MemorySource, ReadLimits, walk
from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium
from radguard.samples import hostile
from radguard.samples.hostile import HOSTILE


@pytest.fixture(scope="module")
def hostile_medium(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, (builder, _, _) in HOSTILE.items():
        (folder / name).write_bytes(builder())
    return folder


@pytest.fixture(scope="module")
def report(hostile_medium: Path):  # type: ignore[no-untyped-def]
    return scan_medium(hostile_medium, ScanOptions(workers=2, limits=ReadLimits(max_elements=50_000)))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_file_gets_its_verdict_and_check(report, name: str) -> None:  # type: ignore[no-untyped-def]
    _, verdict, check_id = HOSTILE[name]
    files = {f.path: f for f in report.files}
    got = files[name]
    assert got.verdict.label == verdict, [f.to_dict() for f in got.findings]
    assert check_id in {f.check_id for f in got.findings}


def test_medium_verdict_is_the_worst(report) -> None:  # type: ignore[no-untyped-def]
    assert report.verdict == Verdict.DANGEROUS
    assert report.counts["dangerous"] == sum(1 for v in HOSTILE.values() if v[1] == "dangerous")


def test_findings_carry_byte_offsets(report) -> None:  # type: ignore[no-untyped-def]
    files = {f.path: f for f in report.files}
    trailing = next(f for f in files["trailing_elf.dcm"].findings
                    if f.check_id == "media.trailing-executable")
    data = hostile.trailing_elf()
    assert trailing.offset is not None
    assert data[trailing.offset:trailing.offset + 4] == b"\x7fELF"
    pe = next(f for f in files["pe_polyglot.dcm"].findings if f.check_id == "media.preamble-executable")
    assert pe.offset == 0


def test_deep_nesting_stops_at_depth_limit() -> None:
    result = walk(MemorySource(hostile.nesting_bomb(2000)), ReadLimits(max_depth=64))
    assert not result.completed
    assert result.max_depth <= 65
    assert any(p.details.get("limit") == "max_depth" for p in result.problems)


def test_deflate_bomb_is_bounded_by_size_not_memory() -> None:
    data = hostile.deflate_bomb(64 * 1024 * 1024)
    result = walk(MemorySource(data), ReadLimits(max_inflated_size=8 * 1024 * 1024))
    assert not result.completed
    limits = {p.details.get("limit") for p in result.problems}
    assert limits & {"max_inflated_size", "max_inflate_ratio"}


def test_time_limit_is_enforced_as_a_problem() -> None:
    data = hostile.element_bomb(60_000)
    result = walk(MemorySource(data), ReadLimits(max_seconds=0.0))
    assert any(p.details.get("limit") == "max_seconds" for p in result.problems)


def test_file_size_limit() -> None:
    data = hostile.base_file()
    result = walk(MemorySource(data), ReadLimits(max_file_size=100))
    assert [p.details.get("limit") for p in result.problems] == ["max_file_size"]


def test_deflated_file_that_is_honest_walks_clean() -> None:
    import struct
    import zlib

    ds = hostile.explicit_le(uid_suffix="77")
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = comp.compress(ds) + comp.flush()
    if len(body) % 2:
        body += b"\x00"
    data = hostile.base_file(body, ts=hostile.DEFLATED, uid_suffix="77")
    result = walk(MemorySource(data))
    assert result.completed, result.problems
    assert result.problems == ()
    assert result.inflated_size == len(ds)
    assert result.value(0x00100020) == "RG-DEMO-1"
    assert struct.unpack("<H", b"\x01\x00")[0] == 1
