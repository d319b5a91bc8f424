"""Selecting the files of an export: every input goes through the bounded reader first.

Inputs are files or folders (walked recursively, sorted, never following a symbolic link). A file
is exported only if :func:`radguard.dicomio.walk` finds a complete PS3.10 file (preamble, ``DICM``,
File Meta Information) with Study, Series and SOP Instance UIDs and no structural problem; anything
else is *skipped* with its reason (an export is not the place to carry a suspicious file on; run
``radguard media scan``/``sanitize`` first). A SOP Instance UID seen twice is exported once.
Input DICOMDIRs are skipped: the export writes its own.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from radguard.dicomio import WalkResult

__all__ = ["SelectedFile", "Selection", "Skipped", "candidates", "judge"]

MEDIA_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"
_BENIGN = frozenset({"meta-no-group-length"})
"""Problem codes that do not stop an export (the file is still a sound PS3.10 file)."""


@dataclass(frozen=True, slots=True)
class SelectedFile:
    """A file that passed the bounded reader, with the identity the layout needs."""

    path: str
    size: int
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class: str

    def __reduce__(self) -> tuple[type[SelectedFile], tuple[object, ...]]:
        """Unpickled by the constructor (a frozen slots dataclass otherwise restores its
        fields through ``dataclasses.fields``, ~20 us per object, in the parent of the
        workers)."""
        return SelectedFile, (self.path, self.size, self.patient_id, self.study_uid,
                              self.series_uid, self.sop_uid, self.sop_class)


@dataclass(frozen=True, slots=True)
class Skipped:
    """An input that is not exported, and why (no patient data in ``reason``)."""

    path: str
    reason: str

    def __reduce__(self) -> tuple[type[Skipped], tuple[object, ...]]:
        return Skipped, (self.path, self.reason)


@dataclass(frozen=True)
class Selection:
    """Files to export (in input order) and the inputs left out."""

    files: tuple[SelectedFile, ...]
    skipped: tuple[Skipped, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def candidates(inputs: Sequence[Path], skipped: list[Skipped]) -> Iterator[tuple[str, int]]:
    """Regular files under ``inputs`` with their sizes (sorted; links and devices are appended
    to ``skipped``). One ``lstat`` per file."""
    for top in inputs:
        try:
            st = os.lstat(top)
        except OSError as exc:
            skipped.append(Skipped(str(top), f"cannot be read: {exc.strerror}"))
            continue
        if stat.S_ISLNK(st.st_mode):
            skipped.append(Skipped(str(top), "symbolic link (not followed)"))
        elif stat.S_ISDIR(st.st_mode):
            for root, dirs, names in os.walk(top, followlinks=False):
                dirs.sort()
                for name in sorted(names):
                    path = os.path.join(root, name)
                    st = os.lstat(path)
                    if stat.S_ISREG(st.st_mode):
                        yield path, st.st_size
                    else:
                        skipped.append(Skipped(path, "not a regular file (link or device)"))
        elif stat.S_ISREG(st.st_mode):
            yield str(top), st.st_size
        else:
            skipped.append(Skipped(str(top), "not a regular file"))


def judge(path: Path, result: WalkResult) -> SelectedFile | Skipped:
    """Whether the walked file ``path`` may be exported (see the module docstring)."""
    if not (result.is_dicom and result.has_meta):
        return Skipped(str(path), "not a DICOM PS3.10 file")
    codes = result.problem_codes - _BENIGN
    if not result.completed or codes:
        return Skipped(str(path), "refused by the bounded reader: "
                       + (", ".join(sorted(codes)) or "walk did not complete"))
    sop_class = result.values.get(0x00080016) or result.meta.get(0x00020002, "")
    if sop_class == MEDIA_DIRECTORY_STORAGE:
        return Skipped(str(path), "a DICOMDIR (the export writes its own)")
    uids = [result.values.get(t, "") for t in (0x0020000D, 0x0020000E, 0x00080018)]
    if not all(uids) or not sop_class:
        return Skipped(str(path), "lacks Study, Series or SOP Instance/Class UID")
    return SelectedFile(str(path), result.size, result.values.get(0x00100020, ""), uids[0],
                        uids[1], uids[2], sop_class)
