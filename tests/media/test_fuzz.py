"""Property-based fuzzing of the bounded reader (hypothesis): random and mutated files.

Whatever the bytes, :func:`walk` returns a result (no exception escapes) and never goes past its
limits; the scanner turns every file into a verdict.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radguard.dicomio import MemorySource, ReadLimits, walk
from radguard.media.inspect import InspectOptions, inspect_entry
from radguard.media.medium import Entry
from radguard.samples import hostile
from tests.conftest import PYDICOM_TEST_FILES

LIMITS = ReadLimits(max_depth=16, max_elements=5_000, max_inflated_size=1 << 20, max_seconds=2.0)
SEEDS = [
    hostile.base_file(),
    hostile.nesting_bomb(20),
    hostile.pdf_with_javascript(),
    (PYDICOM_TEST_FILES / "CT_small.dcm").read_bytes()[:6000],
    (PYDICOM_TEST_FILES / "MR_small_bigendian.dcm").read_bytes()[:4000],
    (PYDICOM_TEST_FILES / "image_dfl.dcm").read_bytes()[:3000],
    (PYDICOM_TEST_FILES / "JPEG2000.dcm").read_bytes()[:5000],
]


def _check(data: bytes) -> None:
    result = walk(MemorySource(data), LIMITS)
    assert result.size == len(data)
    assert result.max_depth <= LIMITS.max_depth + 1
    assert result.elements <= LIMITS.max_elements + 1
    assert 0 <= result.dataset_end <= max(len(data), result.inflated_size or 0)
    for p in result.problems:
        assert p.offset is None or p.offset >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash(data: bytes) -> None:
    _check(data)
    _check(bytes(128) + b"DICM" + data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), edits=st.lists(
    st.tuples(st.integers(min_value=0, max_value=1 << 16), st.binary(min_size=1, max_size=8)),
    max_size=12), cut=st.integers(min_value=0, max_value=1 << 16))
def test_mutated_real_and_crafted_files_never_crash(seed: bytes, edits: list[tuple[int, bytes]],
                                                    cut: int) -> None:
    data = bytearray(seed)
    for pos, patch in edits:
        pos %= max(1, len(data))
        data[pos:pos + len(patch)] = patch
    blob = bytes(data[: max(0, len(data) - (cut % 64))])
    _check(blob)


@settings(max_examples=150, deadline=None)
@given(lengths=st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), min_size=1, max_size=6))
def test_lying_lengths_never_crash(lengths: list[int]) -> None:
    body = b"".join(struct.pack("<HH2sHI", 0x0009, 0x1000 + i, b"UN", 0, n) + b"\x00" * 8
                    for i, n in enumerate(lengths))
    _check(hostile.base_file(hostile.explicit_le(extra=body)))


class _OneFile:
    def __init__(self, data: bytes):
        self.data = data

    def open(self, rel: str) -> MemorySource:
        return MemorySource(self.data)

    def local_path(self, rel: str) -> None:
        return None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_inspection_always_gives_a_verdict(data: bytes) -> None:
    medium = _OneFile(bytes(128) + b"DICM" + data)
    report = inspect_entry(medium, Entry("f.dcm", "file", len(medium.data)),  # type: ignore[arg-type]
                           InspectOptions(LIMITS, b"salt"))
    assert report.kind in ("dicom", "dicomdir", "other")
    assert report.sha256 is not None
    assert all(f.check_id != "media.unreadable" for f in report.findings), report.findings
