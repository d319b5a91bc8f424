"""What a de-identification run is asked to do: the options of PS3.15 E.3 plus RadGuard's settings.

Option ids follow the names of E.3.1-E.3.11 (and the CID 7050 code meanings):

=================================  =========  ==========================================
option id                          section    CID 7050
=================================  =========  ==========================================
(always) basic                     E.2        113100 Basic Application Confidentiality
clean-pixel-data                   E.3.1      113101
clean-recognizable-visual-features E.3.2      113102
clean-graphics                     E.3.3      113103
clean-structured-content           E.3.4      113104
clean-descriptors                  E.3.5      113105
retain-long-full-dates             E.3.6      113106
retain-long-modified-dates         E.3.6      113107
retain-patient-characteristics     E.3.7      113108
retain-device-identity             E.3.8      113109
retain-uids                        E.3.9      113110
retain-safe-private                E.3.10     113111
retain-institution-identity        E.3.11     113112
=================================  =========  ==========================================

The two Retain Longitudinal Temporal Information options exclude each other.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radguard.deid.errors import DeidKeyError, DeidOptionError, MappingFileError
from radguard.deid.tables import presets

__all__ = ["ALIASES", "DeidOptions", "Option", "load_mapping"]


class Option(enum.StrEnum):
    """The options of PS3.15 E.3, by RadGuard id."""

    CLEAN_PIXEL_DATA = "clean-pixel-data"
    CLEAN_VISUAL_FEATURES = "clean-recognizable-visual-features"
    CLEAN_GRAPHICS = "clean-graphics"
    CLEAN_STRUCTURED_CONTENT = "clean-structured-content"
    CLEAN_DESCRIPTORS = "clean-descriptors"
    RETAIN_FULL_DATES = "retain-long-full-dates"
    RETAIN_MODIFIED_DATES = "retain-long-modified-dates"
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    RETAIN_DEVICE_IDENTITY = "retain-device-identity"
    RETAIN_UIDS = "retain-uids"
    RETAIN_SAFE_PRIVATE = "retain-safe-private"
    RETAIN_INSTITUTION_IDENTITY = "retain-institution-identity"


ALIASES = {
    "retain-full-dates": Option.RETAIN_FULL_DATES,
    "retain-modified-dates": Option.RETAIN_MODIFIED_DATES,
    "full-dates": Option.RETAIN_FULL_DATES,
    "modified-dates": Option.RETAIN_MODIFIED_DATES,
    "clean-visual-features": Option.CLEAN_VISUAL_FEATURES,
}
"""Short names accepted by :meth:`DeidOptions.from_names` and the CLI."""

MIN_KEY_BYTES = 16


def load_mapping(path: Path) -> dict[str, tuple[str, str]]:
    """Read a pseudonym mapping file: CSV with a header ``PatientID,PseudonymID,PseudonymName``.

    Returns original Patient ID -> (pseudonymous ID, pseudonymous name). Patients not in the file get
    keyed pseudonyms. Raises :class:`MappingFileError` naming the row that is wrong.
    """
    result: dict[str, tuple[str, str]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"PatientID", "PseudonymID"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise MappingFileError("header must name PatientID,PseudonymID[,PseudonymName]",
                                       subject=str(path), remedy="fix the first line of the file")
            for number, row in enumerate(reader, start=2):
                pid, pseudo = (row.get("PatientID") or "").strip(), (row.get("PseudonymID") or "")
                if not pid or not pseudo.strip() or len(pseudo.strip()) > 64:
                    raise MappingFileError(f"row {number}: empty PatientID or PseudonymID, or a "
                                           "pseudonym longer than 64 characters", subject=str(path),
                                           remedy="fix or remove that row")
                name = (row.get("PseudonymName") or "").strip() or pseudo.strip()
                result[pid] = (pseudo.strip(), name)
    except OSError as exc:
        raise MappingFileError(f"cannot read mapping file: {exc.strerror}", subject=str(path),
                               remedy="check the path and its permissions") from exc
    return result


@dataclass(frozen=True, slots=True)
class DeidOptions:
    """Everything a run needs, immutable; build with :meth:`from_names`.

    Attributes
    ----------
    options: the E.3 options chosen (ids of :class:`Option`); the Basic Profile always applies.
    key: the project key (>= 16 bytes) for keyed UIDs, pseudonyms and date offsets (HMAC-SHA256).
        The same key gives the same pseudonyms across batches and machines.
    mapping: original Patient ID -> (pseudonymous ID, pseudonymous name); others get keyed ones.
    max_shift_days: date offsets (Modified Dates) lie in [-max_shift_days, -1].
    recipient_cert: PEM or DER X.509 certificate; when set, the replaced values are kept in an
        Encrypted Attributes Sequence (0400,0500) enveloped to it (PS3.15 E.1.2).
    pixel_rules_file: an extra rule file for Clean Pixel Data, tried before the shipped rules.
    ocr: detect burned-in text with Tesseract in US and SC images (Clean Pixel Data).
    ocr_timeout: seconds allowed per frame for OCR.
    rename: name output files by their new SOP Instance UID instead of keeping input names.
    preset: the preset name the options came from, for reports.
    """

    options: frozenset[str] = frozenset()
    key: bytes = field(default=b"", repr=False)
    mapping: Mapping[str, tuple[str, str]] = field(default_factory=dict, compare=False, repr=False)
    max_shift_days: int = 365
    recipient_cert: bytes | None = field(default=None, repr=False)
    pixel_rules_file: str | None = None
    ocr: bool = True
    ocr_timeout: float = 20.0
    rename: bool = False
    preset: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.options) - {o.value for o in Option}
        if unknown:
            raise DeidOptionError(f"unknown option(s) {sorted(unknown)}",
                                  remedy=f"use {sorted(o.value for o in Option)}")
        if {Option.RETAIN_FULL_DATES, Option.RETAIN_MODIFIED_DATES} <= set(self.options):
            raise DeidOptionError("Retain Longitudinal Temporal Information: choose either Full "
                                  "Dates or Modified Dates, not both (PS3.15 E.3.6)")
        if len(self.key) < MIN_KEY_BYTES:
            raise DeidKeyError(f"the project key must be at least {MIN_KEY_BYTES} bytes",
                               remedy="give --key-file, or let RadGuard create the project key")
        if not 1 <= self.max_shift_days <= 36500:
            raise DeidOptionError("max_shift_days must be between 1 and 36500")

    def has(self, option: Option | str) -> bool:
        return str(option) in self.options

    @property
    def option_list(self) -> list[str]:
        """Chosen options in the order of E.3 (stable for reports and method codes)."""
        return [o.value for o in Option if o.value in self.options]

    @classmethod
    def from_names(cls, names: Iterable[str], *, key: bytes, **settings: Any) -> DeidOptions:
        """Options from names: option ids, aliases, ``basic`` and preset names (combinable).

        ``DeidOptions.from_names(["tcia", "retain-uids"], key=k)`` is the TCIA preset plus Retain UIDs.
        Other keyword arguments set the remaining fields. Raises :class:`DeidOptionError` for an
        unknown name and :class:`DeidKeyError` for a short key.
        """
        chosen: set[str] = set()
        known_presets = presets()
        preset_names: list[str] = []
        valid = {o.value for o in Option}
        for raw in names:
            name = raw.strip().lower().replace("_", "-")
            if not name or name == "basic":
                continue
            if name in known_presets:
                preset_names.append(name)
                chosen.update(known_presets[name]["options"])
            elif name in ALIASES:
                chosen.add(ALIASES[name].value)
            elif name in valid:
                chosen.add(name)
            else:
                raise DeidOptionError(
                    f"unknown de-identification option or preset {raw!r}",
                    remedy=f"options: {', '.join(sorted(valid))}; presets: "
                           f"{', '.join(sorted(known_presets))}")
        settings.setdefault("preset", "+".join(preset_names) or None)
        return cls(options=frozenset(chosen), key=key, **settings)

    @classmethod
    def preset_named(cls, name: str, *, key: bytes, **settings: Any) -> DeidOptions:
        """The options of one preset (``basic``, ``tcia``, ``research``, ``teaching``...)."""
        return cls.from_names([name], key=key, **settings)

    def with_options(self, *names: str) -> DeidOptions:
        """A copy with more options."""
        return replace(self, options=self.options | DeidOptions.from_names(
            names, key=self.key).options)
