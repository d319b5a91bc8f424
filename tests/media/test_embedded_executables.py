"""Executables hidden anywhere in a file, not only at its start: inside a private element after some
junk bytes, in trailing data, in an unknown (UN) element. The shipped YARA rules look for a real PE
(MZ whose e_lfanew points at a PE signature with a known machine type) or a real ELF header (class,
byte order, version, executable or shared-object type) at any offset."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium
from radguard.samples.hostile import base_file, element, explicit_le


def _pe(machine: int = 0x8664, lfanew: int = 0x80) -> bytes:
    image = bytearray(lfanew + 0x40)
    image[0:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, lfanew)
    image[lfanew:lfanew + 4] = b"PE\x00\x00"
    struct.pack_into("<H", image, lfanew + 4, machine)
    return bytes(image)


def _elf(big_endian: bool = False) -> bytes:
    head = b"\x7fELF\x02" + (b"\x02" if big_endian else b"\x01") + b"\x01" + bytes(9)
    return head + struct.pack(">H" if big_endian else "<H", 3) + bytes(46)


def _private(payload: bytes, suffix: str) -> bytes:
    extra = element(0x0011, 0x0010, b"LO", b"VENDOR X") + element(0x0011, 0x1001, b"OB", payload)
    return base_file(explicit_le(uid_suffix=suffix, extra=extra), uid_suffix=suffix)


CASES = {
    "pe-after-junk-in-private.dcm": _private(b"\x01" * 8 + _pe(), "71"),
    "pe32-deep-in-private.dcm": _private(bytes(3000) + _pe(0x014C, 0x100), "72"),
    "elf-after-junk-in-trailing.dcm": base_file(uid_suffix="73") + b"\xaa" * 12 + _elf(),
    "elf-big-endian-in-un.dcm": base_file(explicit_le(
        uid_suffix="74", extra=element(0x0013, 0x1010, b"UN", b"xx" + _elf(big_endian=True))),
        uid_suffix="74"),
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    medium = tmp_path_factory.mktemp("cd")
    for name, data in CASES.items():
        (medium / name).write_bytes(data)
    (medium / "CT_small.dcm").write_bytes(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    return scan_medium(medium, ScanOptions(workers=1))


@pytest.mark.parametrize("name", sorted(CASES))
def test_hidden_executable_is_dangerous(report, name: str) -> None:  # type: ignore[no-untyped-def]
    file = next(f for f in report.files if f.path.endswith(name))
    rules = {x.evidence.details.get("rule") for x in file.findings if x.check_id == "media.yara-match"}
    assert file.verdict == Verdict.DANGEROUS, [x.check_id for x in file.findings]
    assert rules & {"RadGuard_Embedded_PE", "RadGuard_Embedded_ELF"}


def test_real_file_does_not_match(report) -> None:  # type: ignore[no-untyped-def]
    file = next(f for f in report.files if f.path.endswith("CT_small.dcm"))
    assert not [x for x in file.findings if x.check_id == "media.yara-match"]


def test_a_lone_pe_signature_without_mz_is_not_an_executable(tmp_path: Path) -> None:
    (tmp_path / "a.dcm").write_bytes(_private(b"PE\x00\x00\x64\x86" + bytes(64), "75"))
    report = scan_medium(tmp_path, ScanOptions(workers=1))
    assert not [x for f in report.files for x in f.findings if x.check_id == "media.yara-match"]
