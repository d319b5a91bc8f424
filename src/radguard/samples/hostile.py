"""Builders of hostile DICOM files for tests and the demo: polyglots, bombs, traversal, truncation.

Every builder returns bytes made here from scratch (a minimal valid data set plus the attack), so no
hostile sample is ever downloaded. The base data set is a tiny Secondary Capture image with made-up
identity ("RADGUARD^DEMO"), never real patient data.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

__all__ = ["HOSTILE", "base_file", "element", "explicit_le"]

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
_LONG = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def element(group: int, elem: int, vr: bytes, value: bytes, *, length: int | None = None) -> bytes:
    """One Explicit VR Little Endian element; ``length`` overrides the encoded length (to lie)."""
    if len(value) % 2 and vr not in (b"SQ",):
        value += b"\x00" if vr in (b"UI", b"OB", b"UN") else b" "
    n = len(value) if length is None else length
    if vr in _LONG:
        return struct.pack("<HH2sHI", group, elem, vr, 0, n) + value
    return struct.pack("<HH2sH", group, elem, vr, n) + value


def _meta(ts: str, sop_instance: str, *, group_length: int | None = None) -> bytes:
    body = (
        element(0x0002, 0x0001, b"OB", b"\x00\x01")
        + element(0x0002, 0x0002, b"UI", SC_STORAGE.encode())
        + element(0x0002, 0x0003, b"UI", sop_instance.encode())
        + element(0x0002, 0x0010, b"UI", ts.encode())
        + element(0x0002, 0x0012, b"UI", b"2.25.1234567")
    )
    gl = len(body) if group_length is None else group_length
    return element(0x0002, 0x0000, b"UL", struct.pack("<I", gl)) + body


def explicit_le(*, uid_suffix: str = "1", patient_id: str = "RG-DEMO-1",
                patient_name: str = "RADGUARD^DEMO", study: str = "2.25.99001",
                extra: bytes = b"", pixel: bytes | None = None, with_pixel: bool = True) -> bytes:
    """A minimal Secondary Capture data set (Explicit VR LE), elements in ascending order.

    ``extra`` is inserted before (0020,000D) and must hold elements of groups 0010-0019.
    """
    sop = f"2.25.99001{uid_suffix}"
    pixel = pixel if pixel is not None else bytes(16)
    return (
        element(0x0008, 0x0016, b"UI", SC_STORAGE.encode())
        + element(0x0008, 0x0018, b"UI", sop.encode())
        + element(0x0008, 0x0060, b"CS", b"OT")
        + element(0x0010, 0x0010, b"PN", patient_name.encode())
        + element(0x0010, 0x0020, b"LO", patient_id.encode())
        + extra
        + element(0x0020, 0x000D, b"UI", study.encode())
        + element(0x0020, 0x000E, b"UI", (study + ".1").encode())
        + element(0x0028, 0x0002, b"US", struct.pack("<H", 1))
        + element(0x0028, 0x0010, b"US", struct.pack("<H", 4))
        + element(0x0028, 0x0011, b"US", struct.pack("<H", 4))
        + element(0x0028, 0x0100, b"US", struct.pack("<H", 8))
        + (element(0x7FE0, 0x0010, b"OB", pixel) if with_pixel else b"")
    )


def base_file(dataset: bytes | None = None, *, preamble: bytes = bytes(128), ts: str = EXPLICIT_LE,
              uid_suffix: str = "1", group_length: int | None = None) -> bytes:
    """A PS3.10 file: preamble, DICM, File Meta Information, data set."""
    ds = dataset if dataset is not None else explicit_le(uid_suffix=uid_suffix)
    pre = (preamble + bytes(128))[:128]
    return pre + b"DICM" + _meta(ts, f"2.25.99001{uid_suffix}", group_length=group_length) + ds


def _pe_stub() -> bytes:
    stub = bytearray(128)
    stub[0:2] = b"MZ"
    struct.pack_into("<I", stub, 0x3C, 0x40)
    stub[0x40:0x44] = b"PE\x00\x00"
    return bytes(stub)


def pe_polyglot() -> bytes:
    """CVE-2019-11687: the preamble is a PE header."""
    return base_file(preamble=_pe_stub(), uid_suffix="2")


def elf_polyglot() -> bytes:
    return base_file(preamble=b"\x7fELF\x02\x01\x01" + bytes(121), uid_suffix="3")


def nonzero_preamble() -> bytes:
    return base_file(preamble=b"hello, not a TIFF header" + bytes(104), uid_suffix="4")


def tiff_preamble() -> bytes:
    """A legitimate dual-format preamble: clean."""
    return base_file(preamble=b"II*\x00\x08\x00\x00\x00" + bytes(120), uid_suffix="5")


def trailing_elf() -> bytes:
    return base_file(uid_suffix="6") + b"\x7fELF\x02\x01\x01\x00" + bytes(64)


def trailing_junk() -> bytes:
    return base_file(uid_suffix="7") + b"\xff\xee" * 40


def truncated() -> bytes:
    data = base_file(explicit_le(uid_suffix="8", pixel=bytes(4096)), uid_suffix="8")
    return data[:-1000]


def length_past_eof() -> bytes:
    ds = explicit_le(uid_suffix="9") + element(0x7FE1, 0x0010, b"LO", b"X", length=0xFFF0)
    return base_file(ds, uid_suffix="9")


def huge_length() -> bytes:
    """A single element claiming 0xFFFFFFF0 bytes."""
    ds = explicit_le(uid_suffix="10", with_pixel=False)
    ds += element(0x7FE0, 0x0010, b"OB", b"", length=0xFFFFFFF0)
    return base_file(ds, uid_suffix="10")


def _nested(depth: int) -> bytes:
    inner = element(0x0008, 0x0100, b"SH", b"X")
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + \
            struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        inner = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + item + \
            struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return inner


def nesting_bomb(depth: int = 500) -> bytes:
    ds = explicit_le(uid_suffix="11")
    # Content Sequence (0040,A730) goes after group 0028 and before pixel data.
    split = ds.index(struct.pack("<HH", 0x7FE0, 0x0010))
    return base_file(ds[:split] + _nested(depth) + ds[split:], uid_suffix="11")


def element_bomb(count: int = 200_000) -> bytes:
    """Many tiny private elements in one group."""
    elems = b"".join(element(0x0011, 0x1000 + (i % 0xEFFF), b"SH", b"A")
                     for i in range(min(count, 0xEFFF)))
    creator = element(0x0011, 0x0010, b"LO", b"RADGUARD BOMB")
    extra = creator + elems
    ds = explicit_le(uid_suffix="12", extra=extra)
    return base_file(ds, uid_suffix="12")


def deflate_bomb(inflated: int = 300 * 1024 * 1024) -> bytes:
    """Deflated Explicit VR LE whose data set inflates to ``inflated`` bytes of one huge value."""
    header = explicit_le(uid_suffix="13", with_pixel=False)
    big = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, inflated)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = [comp.compress(header + big)]
    chunk = bytes(1024 * 1024)
    for _ in range(inflated // len(chunk)):
        out.append(comp.compress(chunk))
    out.append(comp.flush())
    return base_file(b"".join(out), ts=DEFLATED, uid_suffix="13")


def lying_meta_group_length() -> bytes:
    return base_file(uid_suffix="14", group_length=4)


def private_executable() -> bytes:
    extra = element(0x0011, 0x0010, b"LO", b"RADGUARD") + element(0x0011, 0x1001, b"OB", _pe_stub())
    return base_file(explicit_le(uid_suffix="15", extra=extra), uid_suffix="15")


def pdf_with_javascript() -> bytes:
    """Encapsulated PDF (0042,0011) with an OpenAction JavaScript."""
    pdf = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction << /S /JavaScript "
           b"/JS (app.alert(1)) >> >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    ds = explicit_le(uid_suffix="16", with_pixel=False)
    ds += element(0x0042, 0x0011, b"OB", pdf) + element(0x0042, 0x0012, b"LO", b"application/pdf")
    return base_file(ds, uid_suffix="16")


def tag_disorder() -> bytes:
    ds = explicit_le(uid_suffix="17")
    first = element(0x0008, 0x0016, b"UI", SC_STORAGE.encode())
    return base_file(ds + first, uid_suffix="17")


HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # name: (builder, expected verdict, a check id expected among the findings)
    "pe_polyglot.dcm": (pe_polyglot, "dangerous", "media.preamble-executable"),
    "elf_polyglot.dcm": (elf_polyglot, "dangerous", "media.preamble-executable"),
    "nonzero_preamble.dcm": (nonzero_preamble, "suspicious", "media.preamble-nonzero"),
    "tiff_preamble.dcm": (tiff_preamble, "clean", "media.preamble-tiff"),
    "trailing_elf.dcm": (trailing_elf, "dangerous", "media.trailing-executable"),
    "trailing_junk.dcm": (trailing_junk, "suspicious", "media.trailing-data"),
    "truncated.dcm": (truncated, "suspicious", "dicom.value-past-end"),
    "length_past_eof.dcm": (length_past_eof, "suspicious", "dicom.value-past-end"),
    "huge_length.dcm": (huge_length, "suspicious", "dicom.value-past-end"),
    "nesting_bomb.dcm": (nesting_bomb, "suspicious", "dicom.nesting-bomb"),
    "element_bomb.dcm": (lambda: element_bomb(60_000), "suspicious", "dicom.element-bomb"),
    "deflate_bomb.dcm": (deflate_bomb, "suspicious", "dicom.decompression-bomb"),
    "lying_meta_length.dcm": (lying_meta_group_length, "suspicious", "dicom.meta-group-length"),
    "private_executable.dcm": (private_executable, "dangerous", "media.element-executable"),
    "pdf_javascript.dcm": (pdf_with_javascript, "dangerous", "media.encapsulated-script"),
    "tag_disorder.dcm": (tag_disorder, "suspicious", "dicom.tag-order"),
}
"""The hostile file catalogue used by the demo and the tests."""
