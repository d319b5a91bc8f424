"""The byte-level path (radguard.deid.fastpath) gives the same data sets as the pydicom path.

Every real file of pydicom's test data (and pydicom-data's, with the Basic Profile) goes through
both paths for several option sets; both outputs are read back with pydicom and compared element by
element, File Meta Information included, and so are the per-file change reports.

What may differ, and is not compared:
- the encoding of sequences: the byte path copies an unchanged sequence as it was (defined or
  undefined lengths) and writes a changed one with undefined lengths, pydicom keeps each
  sequence's own length style; both read back to the same items (PS3.5 7.5);
- the File Meta group length (0002,0000) value follows from the elements, which are compared;
- element byte offsets (the compare is on decoded values, never on offsets).
Nothing else is ignored: VRs, values, item counts and the order of changes must all agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from radguard.deid import DeidOptions, deidentify_file
from radguard.deid.files import quiet_pydicom

KEY = b"fast-path-equivalence-key-0123456789"
TEST_FILES = sorted(p for p in (Path(pydicom.__file__).parent / "data" / "test_files").rglob("*")
                    if p.is_file())
OPTION_SETS = {
    "basic": [],
    "retain-uids": ["retain-uids"],
    "descriptors+modified-dates": ["clean-descriptors", "retain-long-modified-dates"],
    "safe-private+device+patient": ["retain-safe-private", "retain-device-identity",
                                    "retain-patient-characteristics"],
    "tcia": ["tcia"],
    "structured+graphics+full-dates+institution": [
        "clean-structured-content", "clean-graphics", "retain-long-full-dates",
        "retain-institution-identity"],
}


def _pydicom_data() -> list[Path]:
    try:
        import data_store
    except ImportError:
        return []
    root = Path(data_store.__file__).parent
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".dcm", ""))


def _canon(ds: Dataset) -> dict[int, tuple[str, Any]]:
    out: dict[int, tuple[str, Any]] = {}
    for elem in ds:
        if elem.tag == 0x00020000:
            continue
        if elem.VR == "SQ":
            value: Any = [_canon(item) for item in elem.value]
        elif isinstance(elem.value, bytes | bytearray):
            value = bytes(elem.value)
        else:
            value = str(elem.value)
        out[int(elem.tag)] = (str(elem.VR), value)
    return out


def _diff(a: dict[int, tuple[str, Any]], b: dict[int, tuple[str, Any]], path: str = "") -> list[str]:
    found = []
    for tag in sorted(set(a) | set(b)):
        where = f"{path}({tag >> 16:04X},{tag & 0xFFFF:04X})"
        if tag not in a or tag not in b:
            found.append(f"{where} only in the {'pydicom' if tag not in a else 'byte'} output")
            continue
        (vr_a, va), (vr_b, vb) = a[tag], b[tag]
        if vr_a != vr_b:
            found.append(f"{where} VR {vr_a} != {vr_b}")
        if isinstance(va, list) and isinstance(vb, list):
            if len(va) != len(vb):
                found.append(f"{where} {len(va)} items != {len(vb)}")
            for i, (ia, ib) in enumerate(zip(va, vb, strict=False)):
                found += _diff(ia, ib, f"{where}[{i}].")
        elif va != vb:
            found.append(f"{where} values differ")
    return found


def _compare(src: Path, options: DeidOptions, tmp: Path) -> str | None:
    """``None`` when the pydicom path is used for ``src``; else asserts both paths agree."""
    fast = deidentify_file(src, tmp / "bytes" / src.name, options)
    slow = deidentify_file(src, tmp / "pydicom" / src.name, options, engine="pydicom")
    assert fast.status == slow.status, (src.name, fast.message, slow.message)
    if fast.engine != "bytes":
        assert fast.fallback or not fast.ok, src.name  # a fallback always says why
        return None
    assert slow.engine == "pydicom" and not fast.fallback
    assert fast.changes is not None and slow.changes is not None
    assert [c.to_dict() for c in fast.changes.changes] == \
        [c.to_dict() for c in slow.changes.changes], src.name
    for field in ("applied", "uncleaned", "new_patient_id", "new_study_uid", "sop_class_uid",
                  "original_patient_id", "original_study_uid"):
        assert getattr(fast.changes, field) == getattr(slow.changes, field), (src.name, field)
    with quiet_pydicom():
        a = pydicom.dcmread(fast.output or "")
        b = pydicom.dcmread(slow.output or "")
        problems = _diff(_canon(a.file_meta), _canon(b.file_meta), "meta ") + \
            _diff(_canon(a), _canon(b))
    assert not problems, f"{src.name}: " + "; ".join(problems[:10])
    return src.name


@pytest.mark.parametrize("name", list(OPTION_SETS))
def test_both_paths_give_the_same_data_sets(name: str, tmp_path: Path) -> None:
    """Given every pydicom test file, when de-identified by the byte path and the pydicom path
    with the same options, then the outputs read back element for element the same, with the
    same change report; and the byte path serves most files."""
    options = DeidOptions.from_names(OPTION_SETS[name], key=KEY)
    served = [n for f in TEST_FILES if (n := _compare(f, options, tmp_path)) is not None]
    assert len(served) >= 100, f"byte path served only {len(served)} of {len(TEST_FILES)} files"


def test_pydicom_data_files_agree_too(tmp_path: Path) -> None:
    """Given pydicom-data's larger real files, the two paths agree under the Basic Profile."""
    files = _pydicom_data()
    if not files:
        pytest.skip("pydicom-data (data_store) not installed")
    options = DeidOptions.from_names([], key=KEY)
    served = [n for f in files if (n := _compare(f, options, tmp_path)) is not None]
    assert len(served) >= len(files) // 2


def test_fallback_is_decided_per_file_and_reported(tmp_path: Path) -> None:
    """Given a Deflated file and a Little Endian one in the same run, the first goes through
    pydicom with the reason in its report, the second through the byte path."""
    options = DeidOptions.from_names([], key=KEY)
    deflated = deidentify_file(pydicom.data.get_testdata_file("image_dfl.dcm"),
                               tmp_path / "dfl.dcm", options)
    little = deidentify_file(pydicom.data.get_testdata_file("MR_small.dcm"),
                             tmp_path / "little.dcm", options)
    assert (deflated.engine, little.engine) == ("pydicom", "bytes")
    assert "transfer syntax 1.2.840.10008.1.2.1.99" in deflated.fallback and little.fallback == ""
    assert deflated.to_dict()["fallback"] == deflated.fallback
    pixel = DeidOptions.from_names(["clean-pixel-data"], key=KEY, ocr=False)
    report = deidentify_file(pydicom.data.get_testdata_file("MR_small.dcm"), tmp_path / "p.dcm",
                             pixel)
    assert report.engine == "pydicom" and "clean-pixel-data" in report.fallback


def test_the_byte_path_copies_pixel_data_exactly(tmp_path: Path) -> None:
    """Pixel data (native and encapsulated) is copied byte for byte, never re-encoded."""
    options = DeidOptions.from_names([], key=KEY)
    for name in ("CT_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm"):
        src = Path(pydicom.data.get_testdata_file(name))
        report = deidentify_file(src, tmp_path / name, options)
        assert report.engine == "bytes", (name, report.fallback)
        with quiet_pydicom():
            assert pydicom.dcmread(tmp_path / name).PixelData == pydicom.dcmread(src).PixelData


BIG_ENDIAN = ("ExplVR_BigEnd.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
              "SC_rgb_small_odd_big_endian.dcm", "liver_expb_1frame.dcm", "rtdose_expb.dcm")


@pytest.mark.parametrize("names", [[], ["retain-uids", "clean-descriptors"],
                                   ["retain-modified-dates", "retain-patient-characteristics"]])
def test_big_endian_files_take_the_byte_path_and_agree(names: list[str], tmp_path: Path) -> None:
    """Given Explicit VR Big Endian files (PS3.5 A.3), the byte path serves them, keeps Big Endian
    in and out (only the encoded values are written in that byte order), and its output reads
    back element for element as the pydicom path's, with the same change report."""
    options = DeidOptions.from_names(names, key=KEY)
    for name in BIG_ENDIAN:
        src = Path(pydicom.data.get_testdata_file(name))
        assert _compare(src, options, tmp_path) == name
        with quiet_pydicom():
            out = pydicom.dcmread(tmp_path / "bytes" / name)
        assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2"
        assert out.PatientIdentityRemoved == "YES"


def _un_file(path: Path) -> Path:
    """An Explicit VR Little Endian CT whose identifying public attributes are stored as UN
    (PS3.5 6.2.2: the value is kept in its dictionary VR's encoding), as some archives send them."""
    from pydicom.dataelem import DataElement

    with quiet_pydicom():
        ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    for keyword, raw in (("PatientName", b"Doe^Jane"), ("StudyDate", b"20200102"),
                         ("SeriesInstanceUID", b"1.2.826.0.1.3680043.2.1125.777"),
                         ("ReferringPhysicianName", b"Who^Dr "), ("InstitutionName", b"St Elsewhere"),
                         ("AccessionNumber", b"A123"), ("Manufacturer", b"ACME")):
        tag = pydicom.datadict.tag_for_keyword(keyword)
        assert tag is not None
        ds[tag] = DataElement(tag, "UN", raw)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("names", [[], ["retain-device-identity", "retain-long-modified-dates"],
                                   ["retain-uids", "clean-descriptors",
                                    "retain-institution-identity"]])
def test_explicit_un_public_attributes_take_the_byte_path_and_agree(names: list[str],
                                                                    tmp_path: Path) -> None:
    """Given public attributes stored as Explicit VR UN (changed, kept and kept by an option),
    the byte path reads each value in its dictionary VR, serves the file, and its output and
    change report equal the pydicom path's; no original value survives in the output bytes."""
    src = _un_file(tmp_path / "un.dcm")
    with quiet_pydicom():
        assert pydicom.dcmread(src, defer_size=0)["PatientName"].VR in ("UN", "PN")
    options = DeidOptions.from_names(names, key=KEY)
    assert _compare(src, options, tmp_path) == "un.dcm"
    out = (tmp_path / "bytes" / "un.dcm").read_bytes()
    assert b"Doe^Jane" not in out and b"Who^Dr" not in out and b"A123" not in out
    assert (b"1.2.826.0.1.3680043.2.1125.777" in out) == ("retain-uids" in names)
    assert (b"St Elsewhere" in out) == ("retain-institution-identity" in names)
