"""Cleaning free text (action C on text, PS3.15 E.3.5 Clean Descriptors, E.3.4 Structured Content).

"Clean" means keeping the meaning of a value while removing what identifies the patient (E.1.1).
RadGuard's cleaner masks, with ``X`` characters of the same length (so VR length limits still hold):

- every identifier of this patient and study found at the top level of the original data set
  (attributes named in ``rules.json`` "identifier_attributes": names and their components, IDs,
  accession and study numbers, institution, birth and study dates in common spellings);
- anything that looks like a date (``2023-04-01``, ``01/04/2023``, ``20230401``) or a long number
  (six digits or more: record, phone and accession numbers).

The same token list serves :mod:`radguard.deid.verify`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydicom.dataset import Dataset

from radguard.deid.actions import unlisted_rules

__all__ = ["Scrubber", "identifier_tokens"]

_GENERIC = (
    r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",
    r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b",
    r"\b(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b",
    r"\b\d{6,}\b",
)


def _date_spellings(value: str) -> list[str]:
    if len(value) < 8 or not value[:8].isdigit():
        return []
    y, m, d = value[:4], value[4:6], value[6:8]
    return [value[:8], f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}",
            f"{d}.{m}.{y}", f"{y}.{m}.{d}"]


def _values(elem_value: object) -> list[str]:
    if elem_value is None:
        return []
    if isinstance(elem_value, list | tuple) or type(elem_value).__name__ == "MultiValue":
        return [str(v) for v in elem_value]  # type: ignore[attr-defined]
    return [str(elem_value)]


def identifier_tokens(ds: Dataset) -> list[str]:
    """The identifying strings of a data set's top level (see the module docstring)."""
    rules = unlisted_rules()
    tokens: set[str] = set()
    for keyword in rules.identifier_keywords:
        try:
            elem = ds.data_element(keyword)
        except (KeyError, ValueError):
            continue
        if elem is None or elem.VR == "SQ":
            continue
        try:
            values = _values(elem.value)
        except Exception:  # a value pydicom cannot decode has nothing to offer
            values = []
        for value in values:
            value = value.strip()
            if elem.VR == "PN":
                tokens.update(p for p in re.split(r"[\^=\s,]+", value))
                continue
            if elem.VR in ("DA", "DT"):
                tokens.update(_date_spellings(value))
                continue
            tokens.add(value)
    return sorted((t for t in tokens if len(t) >= rules.min_token_length), key=len, reverse=True)


class Scrubber:
    """Masks identifiers and identifier-like patterns in text; built once per data set."""

    def __init__(self, tokens: Iterable[str]):
        parts = [r"(?<![A-Za-z0-9])" + re.escape(t) + r"(?![A-Za-z0-9])" for t in tokens]
        parts += list(_GENERIC)
        self._source = "|".join(parts)
        self._compiled: re.Pattern[str] | None = None

    @property
    def _pattern(self) -> re.Pattern[str]:
        """Compiled on first use: most data sets have no text to clean."""
        if self._compiled is None:
            self._compiled = re.compile(self._source, re.IGNORECASE)
        return self._compiled

    def clean(self, text: str) -> str:
        """``text`` with every match replaced by as many ``X`` as it had characters."""
        return self._pattern.sub(lambda m: "X" * len(m.group(0)), text)

    def find(self, text: str) -> list[str]:
        """The matches in ``text`` (for verification)."""
        return [m.group(0) for m in self._pattern.finditer(text)]
