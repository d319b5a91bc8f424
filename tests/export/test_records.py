"""The export's one-read pipeline: what the bounded reader walked is what is enveloped, the DICOMDIR
records carry the instances' values byte for byte (character sets included), files above the
in-memory threshold are streamed, and the per-file work runs on the process pool."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.data import get_testdata_file
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from radguard.config import Settings
from radguard.dicomio.source import MEMORY_THRESHOLD
from radguard.export import ExportOptions, OpenOptions, export_media, open_export
from tests.export.conftest import PASSWORD

CHARSET_FILES = ("chrX1.dcm", "chrH31.dcm", "chrFren.dcm", "rtplan.dcm", "CT_small.dcm")


def _inputs(folder: Path) -> dict[str, Path]:
    """Real files with non-ASCII names, an RT PLAN, a copy (same SOP Instance UID) and a file
    larger than the bounded reader's in-memory threshold."""
    folder.mkdir()
    out = {}
    charsets = Path(pydicom.data.__file__).parent / "charset_files"
    for name in CHARSET_FILES:
        out[name] = folder / name
        shutil.copy(get_testdata_file(name) or charsets / name, out[name])
    shutil.copy(out["chrX1.dcm"], folder / "zz_copy.dcm")
    big = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    big.SOPInstanceUID = generate_uid()
    big.SeriesInstanceUID = generate_uid()
    big.Rows, big.Columns = 2100, 2048
    big.PixelData = np.arange(2100 * 2048, dtype=np.uint16).tobytes()
    out["big"] = folder / "big.dcm"
    big.save_as(out["big"], enforce_file_format=True)
    assert out["big"].stat().st_size > MEMORY_THRESHOLD
    return out


def _raw(ds: pydicom.Dataset, keyword: str) -> bytes:
    value = ds.get_item(keyword).value
    return value if isinstance(value, bytes) else str(value).encode()


def test_one_read_pipeline_round_trip_and_records(tmp_path: Path, settings: Settings) -> None:
    files = _inputs(tmp_path / "in")
    options = ExportOptions(password=PASSWORD, pbkdf2_iterations=2048, iso=True, media="dvd")
    result = export_media([tmp_path / "in"], tmp_path / "m.iso", options, settings)
    assert result.instances == len(files)
    assert [s.reason for s in result.skipped] == ["duplicate SOP Instance UID (exported once)"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
    open_export(tmp_path / "m.iso", tmp_path / "o", OpenOptions(PASSWORD), settings)
    fs = FileSet(pydicom.dcmread(tmp_path / "o" / "DICOMDIR"))
    sources = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in files.values()}
    seen = set()
    for instance in fs:
        digest = hashlib.sha256(Path(instance.path).read_bytes()).hexdigest()
        assert digest in sources  # exact bytes of a source, the large one included
        seen.add(digest)
        source = pydicom.dcmread(sources[digest], stop_before_pixels=True)
        patient = instance.node.parent.parent.parent._record
        for keyword in ("PatientName", "PatientID"):
            assert _raw(patient, keyword).rstrip(b" \0") == _raw(source, keyword).rstrip(b" \0")
        assert instance.node._record.ReferencedSOPInstanceUIDInFile == source.SOPInstanceUID
        if "SpecificCharacterSet" in source:
            assert patient.SpecificCharacterSet == source.SpecificCharacterSet
            assert str(patient.PatientName) == str(source.PatientName)  # decodes the same
    assert len(seen) == len(files)
    types = {str(i.node._record.DirectoryRecordType) for i in fs}
    assert types == {"IMAGE", "RT PLAN"}


def test_deidentified_export_records_name_nobody(tmp_path: Path, settings: Settings) -> None:
    spec = importlib.util.find_spec("radguard.deid")
    deid = importlib.import_module("radguard.deid") if spec else None
    if not (deid and hasattr(deid, "deidentify_dataset") and hasattr(deid, "DeidOptions")):
        pytest.skip("radguard.deid engine not installed")
    files = _inputs(tmp_path / "in")
    names = {str(pydicom.dcmread(p, stop_before_pixels=True).PatientName) for p in files.values()}
    options = ExportOptions(password=PASSWORD, pbkdf2_iterations=2048, deid=("basic",))
    export_media([tmp_path / "in"], tmp_path / "m", options, settings)
    open_export(tmp_path / "m", tmp_path / "o", OpenOptions(PASSWORD), settings)
    ds = pydicom.dcmread(tmp_path / "o" / "DICOMDIR")
    for record in ds.DirectoryRecordSequence:
        if record.DirectoryRecordType == "PATIENT":
            assert str(record.PatientName) not in names - {""}


@pytest.mark.parametrize(("name", "rtype"), [("rtplan.dcm", "RT PLAN"), ("rtdose.dcm", "RT DOSE")])
def test_invented_instance_number_in_worker_made_halves(name: str, rtype: str) -> None:
    """A leaf record that needs an invented Instance Number is made in the worker as two halves;
    the writer's record with the number put between them is byte for byte the one pydicom's
    recorder makes from the header with that number (the former path, still the fallback)."""
    from radguard.export.dicomdir import Leaf, _leaf, record_tail_halves

    header = pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True)
    if "InstanceNumber" in header:
        del header.InstanceNumber
    halves = record_tail_halves(header, rtype)
    assert halves is not None and halves[1] is not None
    values = {0x00080016: header.SOPClassUID, 0x00080018: header.SOPInstanceUID}
    for index in (1, 12, 345):
        made = _leaf(Leaf(("DICOM", "IM1"), values, "1.2.840.10008.1.2.1", None, None, halves),
                     rtype, index)
        former = _leaf(Leaf(("DICOM", "IM1"), values, "1.2.840.10008.1.2.1", None, header),
                       rtype, index)
        assert made == former
        number = str(index).encode() + (b" " if len(str(index)) % 2 else b"")
        assert b"\x20\x00\x13\x00IS" + len(number).to_bytes(2, "little") + number in made
