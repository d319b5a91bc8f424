"""Immutable results of a bounded walk: problems, value references, pixel data facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["PixelInfo", "Problem", "ValueRef", "WalkResult"]


@dataclass(frozen=True, slots=True)
class Problem:
    """A structural problem found while walking, at a byte offset of the file.

    ``code`` is stable (it names a media check, see :mod:`radguard.media.checks`); ``offset`` is in file
    coordinates, or in inflated-stream coordinates when ``inflated`` is true (Deflated transfer syntax).
    """

    code: str
    message: str
    offset: int | None = None
    inflated: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


class ValueRef(NamedTuple):
    """Where a value worth a closer look lies (private, UN, OB, encapsulated document...).

    ``head`` holds at most the first 64 bytes of the value; the rest is read on demand.
    An immutable named tuple rather than a frozen dataclass: a walk makes one per private or
    binary element (a dozen per file, thousands in some), and a frozen dataclass costs about
    four times as much to build (measured: 11% of the walk of the scan corpus).
    """

    tag: int
    vr: str
    offset: int
    length: int
    head: bytes
    depth: int
    inflated: bool = False

    @property
    def tag_text(self) -> str:
        return f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"


@dataclass(frozen=True, slots=True)
class PixelInfo:
    """Facts about (7FE0,0010) Pixel Data, gathered without loading it."""

    offset: int
    length: int | None
    """Value length, or ``None`` for encapsulated (undefined length) pixel data."""
    fragments: int = 0
    compressed_bytes: int = 0
    first_fragment_head: bytes = b""


@dataclass(frozen=True, slots=True)
class WalkResult:
    """What the bounded reader learned about one file.

    Attributes
    ----------
    size: file size in bytes.
    has_meta: ``DICM`` at offset 128 and a File Meta Information group (PS3.10 7.1).
    preamble: the 128-byte preamble, or ``None`` when there is no ``DICM`` prefix.
    transfer_syntax: the Transfer Syntax UID used to walk the data set.
    meta: values of group 0002 elements, decoded as text where the VR is textual.
    values: selected top-level attributes (identity, image geometry), decoded as text.
    refs: values worth a closer look (private, UN, OB outside pixel data, encapsulated documents).
    pixel: pixel data facts, or ``None``.
    dataset_end: offset just past the last element that could be walked.
    trailing_offset / trailing_length / trailing_head: bytes after the data set that do not parse.
    elements / max_depth: counts reached.
    problems: everything structural that is not as PS3.5/PS3.10 says.
    completed: the walk reached the end of the data set without being stopped by a limit or an error.
    """

    size: int
    has_meta: bool
    preamble: bytes | None
    transfer_syntax: str | None
    meta: Mapping[int, str]
    values: Mapping[int, str]
    refs: tuple[ValueRef, ...]
    pixel: PixelInfo | None
    dataset_end: int
    trailing_offset: int | None
    trailing_length: int
    trailing_head: bytes
    elements: int
    max_depth: int
    problems: tuple[Problem, ...]
    completed: bool
    is_dicom: bool
    inflated_size: int | None = None

    def value(self, tag: int) -> str | None:
        return self.values.get(tag)

    @property
    def problem_codes(self) -> frozenset[str]:
        return frozenset(p.code for p in self.problems)
