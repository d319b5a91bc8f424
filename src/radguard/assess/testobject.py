"""The harmless, clearly labelled test object of ``dicom.store-open`` (PS3.3 A.8 Secondary Capture).

An 8x8 black Secondary Capture image whose patient, study and series say, in words, that it is a
RadGuard assessment test object that is safe to delete. It carries no patient data; its UIDs are
fresh (pydicom's UID root) and are reported so that the object can be found and removed.
"""

from __future__ import annotations

import datetime as dt

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = ["LABEL", "PATIENT_ID", "build"]

LABEL = "RADGUARD SECURITY ASSESSMENT TEST OBJECT - SAFE TO DELETE"
PATIENT_ID = "RADGUARD-TEST-DELETE-ME"
_SC = UID("1.2.840.10008.5.1.4.1.1.7")


def build() -> tuple[Dataset, dict[str, str]]:
    """The test object and its UIDs ``{"study", "series", "instance"}``."""
    now = dt.datetime.now(dt.UTC)
    uids = {"study": str(generate_uid()), "series": str(generate_uid()),
            "instance": str(generate_uid())}
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = _SC
    ds.file_meta.MediaStorageSOPInstanceUID = UID(uids["instance"])
    ds.SOPClassUID = _SC
    ds.SOPInstanceUID = uids["instance"]
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.PatientName = "RADGUARD^TEST OBJECT"
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.StudyID = "RADGUARD"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = LABEL[:64]
    ds.SeriesDescription = LABEL[:64]
    ds.ImageComments = LABEL
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.Manufacturer = "RadGuard"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(64)
    return ds, uids
