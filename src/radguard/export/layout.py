"""IHE PDI layout of an export: which files go on which medium, and under which 8.3 file ID.

File IDs are ``DICOM/PAnnnnnn/STnnnnnn/SEnnnnnn/IMnnnnnn`` (PS3.10 8.5: components of at most 8
characters from ``A-Z 0-9 _``; PS3.12 and IHE PDI: no extension); numbers restart on each medium and
carry no patient information. Files keep their input order within a series.

Splitting (when the export exceeds the medium, ``capacities.json``) is next-fit on whole studies; a
study larger than a medium is split on series, a series on files. A single file larger than a
medium is an error. Each medium is a complete PDI file-set with its own DICOMDIR and manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from radguard.export.errors import DoesNotFit
from radguard.export.selection import SelectedFile

__all__ = ["MediumPlan", "PlannedFile", "estimate", "estimate_size", "plan_media"]

SECTOR = 2048
ENVELOPE_OVERHEAD = 4096  # recipient infos (4 x RSA-4096 + PWRI), headers, padding
DICOMDIR_PER_FILE = 1024  # PATIENT/STUDY/SERIES/IMAGE records, amortised
FIXED = 256 * 1024  # README.TXT, INDEX.HTM, MANIFEST.*, directory sectors


@dataclass(frozen=True, slots=True)
class PlannedFile:
    source: SelectedFile
    file_id: tuple[str, ...]

    @property
    def rel(self) -> str:
        return "/".join(self.file_id)


@dataclass(frozen=True)
class MediumPlan:
    index: int  # 1-based
    count: int
    files: tuple[PlannedFile, ...]
    estimated_bytes: int

    @property
    def study_uids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.source.study_uid for f in self.files))


def estimate_size(size: int) -> int:
    """Bytes a file of ``size`` bytes takes on a medium once enveloped, in whole ISO sectors."""
    return -(-(size + ENVELOPE_OVERHEAD) // SECTOR) * SECTOR + DICOMDIR_PER_FILE


def estimate(f: SelectedFile) -> int:
    """Bytes ``f`` takes on a medium once enveloped, rounded up to whole ISO sectors."""
    return estimate_size(f.size)


def _groups(files: Sequence[SelectedFile], key: str) -> list[list[SelectedFile]]:
    out: dict[str, list[SelectedFile]] = {}
    for f in files:
        out.setdefault(getattr(f, key), []).append(f)
    return list(out.values())


def _units(files: list[SelectedFile], usable: int) -> list[list[SelectedFile]]:
    """Study-sized units, broken down to series or single files where a study does not fit."""
    units: list[list[SelectedFile]] = []
    for study in _groups(files, "study_uid"):
        if sum(map(estimate, study)) <= usable:
            units.append(study)
            continue
        for series in _groups(study, "series_uid"):
            if sum(map(estimate, series)) <= usable:
                units.append(series)
                continue
            for f in series:
                if estimate(f) > usable:
                    raise DoesNotFit(f"a file of {f.size} bytes is larger than the medium "
                                     f"({usable} usable bytes)", subject=f.path,
                                     remedy="choose a larger medium (--media dvd or usb)")
                units.append([f])
    return units


def _ids(files: Sequence[SelectedFile]) -> list[PlannedFile]:
    patients: dict[str, int] = {}
    studies: dict[str, int] = {}
    series: dict[str, int] = {}
    images: dict[str, int] = {}
    out = []
    for f in files:
        p = patients.setdefault(f.patient_id, len(patients) + 1)
        s = studies.setdefault(f.study_uid, len(studies) + 1)
        e = series.setdefault(f.series_uid, len(series) + 1)
        images[f.series_uid] = images.get(f.series_uid, 0) + 1
        out.append(PlannedFile(f, ("DICOM", f"PA{p:06d}", f"ST{s:06d}", f"SE{e:06d}",
                                   f"IM{images[f.series_uid]:06d}")))
    return out


def plan_media(files: Sequence[SelectedFile], usable: int | None) -> tuple[MediumPlan, ...]:
    """Distribute ``files`` over media of ``usable`` bytes each (``None``: one medium).

    Files are grouped by patient, study and series (first-seen order) before file IDs are given.

    Raises
    ------
    DoesNotFit
        One file alone is larger than a medium.
    """
    ordered = sorted(files, key=_order_key(files))
    budget = usable if usable is not None else 1 << 62
    budget -= FIXED
    bins: list[list[SelectedFile]] = [[]]
    used = 0
    for unit in _units(ordered, budget):
        size = sum(map(estimate, unit))
        if bins[-1] and used + size > budget:
            bins.append([])
            used = 0
        bins[-1].extend(unit)
        used += size
    return tuple(MediumPlan(i, len(bins), tuple(_ids(b)), sum(map(estimate, b)) + FIXED)
                 for i, b in enumerate(bins, 1))


def _order_key(files: Sequence[SelectedFile]) -> Callable[[SelectedFile], tuple[int, ...]]:
    first: dict[tuple[str, str], int] = {}
    for i, f in enumerate(files):
        first.setdefault(("p", f.patient_id), i)
        first.setdefault(("s", f.study_uid), i)
        first.setdefault(("e", f.series_uid), i)
    index = {id(f): i for i, f in enumerate(files)}

    def key(f: SelectedFile) -> tuple[int, ...]:
        return (first[("p", f.patient_id)], first[("s", f.study_uid)],
                first[("e", f.series_uid)], index[id(f)])

    return key
