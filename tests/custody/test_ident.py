"""The direct read of one identifier value (radguard.dimse.ident) agrees with pydicom, and says so
when it cannot walk an identifier (the caller then decodes it with pydicom)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from radguard.dimse.ident import top_level_value, uid_text

SOP = 0x00080018
UID = "1.2.826.0.1.3680043.8.498.98240160064271891362177902980032965939"  # odd length: padded


def _encode(ds: Dataset, implicit: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def _identifier() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "IMAGE"
    ds.RetrieveAETitle = "ORTHANC"
    ds.InstanceCreationDate = "20260101"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.SOPInstanceUID = UID
    ds.add_new(0x00091010, "OB", b"\x01\x02")  # a long-form VR before it is skipped correctly
    return ds


@pytest.mark.parametrize("implicit", [True, False])
def test_the_sop_instance_uid_read_directly_equals_pydicoms(implicit):
    data = _encode(_identifier(), implicit)
    raw = top_level_value(data, implicit, SOP)
    assert raw is not None and len(raw) % 2 == 0
    assert uid_text(raw) == UID
    assert top_level_value(data, implicit, 0x0020000D) == b"1.2.3\x00"


@pytest.mark.parametrize("implicit", [True, False])
def test_an_absent_tag_is_none(implicit):
    ds = _identifier()
    del ds.SOPInstanceUID
    assert top_level_value(_encode(ds, implicit), implicit, SOP) is None


def test_an_undefined_length_or_a_truncated_element_is_left_to_pydicom():
    undefined = b"\x08\x00\x06\x00\xff\xff\xff\xff"  # (0008,0006) SQ of undefined length
    sop = b"\x08\x00\x18\x00\x06\x00\x00\x001.2.3\x00"
    with pytest.raises(ValueError, match="undefined length"):
        top_level_value(undefined + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00" + sop, True, SOP)
    data = _encode(_identifier(), True)
    with pytest.raises(ValueError, match="past the end"):
        top_level_value(data[:-3], True, 0x00100020)  # absent: the whole set is walked
    with pytest.raises(ValueError, match="trailing"):
        top_level_value(data + b"\x08\x00", True, 0x00100020)


def test_a_uid_that_is_not_ascii_is_refused():
    with pytest.raises(ValueError):
        uid_text(b"1.2.\xff\x00")
