"""dicomio: the bounded reader, byte sources and limits; the one door for untrusted DICOM bytes."""

from __future__ import annotations

from radguard.dicomio.limits import ReadLimits
from radguard.dicomio.reader import COLLECTED_TAGS, walk
from radguard.dicomio.result import PixelInfo, Problem, ValueRef, WalkResult
from radguard.dicomio.source import ByteSource, FileSource, MemorySource, StreamSource, open_path

__all__ = [
    "COLLECTED_TAGS",
    "ByteSource",
    "FileSource",
    "MemorySource",
    "PixelInfo",
    "Problem",
    "ReadLimits",
    "StreamSource",
    "ValueRef",
    "WalkResult",
    "open_path",
    "walk",
]
