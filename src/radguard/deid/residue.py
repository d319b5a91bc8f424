"""Residual identifiers a de-identified file shows on its own, without the original (``deid verify``).

Two checks over a data set that passed the bounded reader (:func:`radguard.deid.verify.read_guarded`):

- ``deid.identifying-value``: an attribute whose Table E.1-1 action (PS3.15 E.1.1), under the options
  the file's De-identification Method Code Sequence claims, is X, Z, D, U or a compound of them
  (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) holds a non-empty value that is not one of the forms RadGuard's
  de-identifier writes: the dummy value of the VR (:data:`radguard.deid.actions.DUMMY`), a keyed
  pseudonym of :mod:`radguard.deid.pseudonym` (``RG`` + 14 base32 characters, ``PSEUDO^RG...``,
  ``PERSON^`` + 10, ``AE`` + 14) or a ``2.25.`` UID (PS3.5 B.2). Applied at any depth, as the
  de-identifier applies the table. X or Z sequences must have no items. Dates (DA, DT) are left to
  ``deid.residual-date`` of :mod:`.verify`, which knows the date options; K and C actions are not
  judged here (a cleaned value keeps its meaning, E.1.1 "C").
- ``deid.identifier-in-text``: free text (ST, LT, UT, UC, descriptions and comments, SR text values)
  contains a name part or an ID of this file's identifying attributes (person names anywhere, the
  values flagged above and those of ``rules.json`` "identifier_attributes"), or something shaped
  like a record number (letters then five or more digits, e.g. ``MRN123456``).

Bounded: at most :data:`MAX_TOKENS` search tokens and :data:`MAX_TEXT` characters of each text
value. Findings never quote a value; they name the attribute (keyword and tag).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from radguard.deid.actions import DUMMY, unlisted_rules
from radguard.deid.dataset import plan_for

__all__ = ["MAX_TEXT", "MAX_TOKENS", "Residue", "is_own_form", "residues"]

MAX_TOKENS = 512
MAX_TEXT = 65_536
_JUDGED = frozenset("XZDU")
"""Actions after which no original content may remain (parts of compound actions included)."""
_EMPTY_ONLY = frozenset({"X", "Z", "X/Z"})
"""Sequence actions after which a sequence has no items."""
_B32 = "[A-Z2-7]"
_OWN = re.compile(rf"(?:RG{_B32}{{14}}|PSEUDO\^RG{_B32}{{14}}|PERSON\^{_B32}{{10}}|AE{_B32}{{14}}"
                  r"|2\.25\.\d{1,39})")
_DUMMIES = frozenset(str(v) for v in DUMMY.values() if isinstance(v, str))
_NUMERIC = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "DS", "IS", "AT"})
_ID_SHAPE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,5}[-#:]?\d{5,}(?![A-Za-z0-9])")
_TEXT_VRS = frozenset({"ST", "LT", "UT", "UC"})
_TEXT_SUFFIXES = ("Description", "Comments", "Comment", "Remarks")
_SPLIT = re.compile(r"[\^=\s,]+")


@dataclass(frozen=True, slots=True)
class Residue:
    """One attribute holding something identifying: ``check`` is the finding's check id."""

    check: str
    keyword: str
    tag: str


def is_own_form(vr: str, value: object) -> bool:
    """True if ``value`` is empty or a form RadGuard's de-identifier writes (see module doc)."""
    if value is None:
        return True
    if isinstance(value, bytes | bytearray):
        return not any(value)
    if vr in _NUMERIC:
        try:
            return float(str(value).strip() or 0) == 0.0
        except ValueError:
            return False
    text = str(value).strip(" \x00")
    return not text or text in _DUMMIES or _OWN.fullmatch(text) is not None


def _values(value: object) -> list[object]:
    if value is None or value == "" or isinstance(value, bytes | bytearray):
        return [value] if isinstance(value, bytes | bytearray) and value else []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return [*value]  # type: ignore[misc]
    return [value]


def _tag(elem: DataElement) -> str:
    return f"({int(elem.tag) >> 16:04X},{int(elem.tag) & 0xFFFF:04X})"


def _name(elem: DataElement) -> str:
    return str(elem.keyword or _tag(elem))


def _is_text(elem: DataElement) -> bool:
    return elem.VR in _TEXT_VRS or (elem.VR == "LO" and str(elem.keyword).endswith(_TEXT_SUFFIXES))


def _tokens(elem: DataElement, values: Iterable[object]) -> set[str]:
    min_len = unlisted_rules().min_token_length
    out: set[str] = set()
    for value in values:
        if is_own_form(elem.VR, value):
            continue
        text = str(value).strip()
        parts = _SPLIT.split(text) if elem.VR == "PN" else [text]
        out.update(p for p in parts if len(p) >= min_len and p.upper() not in _DUMMIES)
    return out


def residues(ds: Dataset, options: frozenset[str], *,
             accepted: frozenset[str] = frozenset()) -> list[Residue]:
    """Residual identifiers of ``ds`` judged from ``ds`` alone, one per attribute keyword.

    ``options`` are the option ids the file claims (:func:`radguard.deid.verify.options_in`);
    ``accepted`` are keywords whose replaced value is known to be a pseudonym of a mapping file
    (verify with ``--original`` passes those whose value differs from the original's): they are
    neither judged nor searched for in text.
    """
    plan = plan_for(options)
    rules = unlisted_rules()
    identifiers = set(rules.identifier_keywords)
    found: dict[str, Residue] = {}
    tokens: set[str] = set()
    texts: list[DataElement] = []
    for elem in ds.iterall():
        if elem.tag.is_private or elem.VR in rules.date_vrs:
            continue
        rule = plan.rule(int(elem.tag))
        action = rule.action if rule is not None else ""
        if elem.VR == "SQ":
            if action in _EMPTY_ONLY and elem.value:
                found.setdefault(_name(elem), Residue("deid.identifying-value", _name(elem),
                                                      _tag(elem)))
            continue
        try:
            values = _values(elem.value)
        except Exception:  # an undecodable value cannot be judged as a form: it is a residue
            values = [b"\x01"]
        if _is_text(elem) and elem.keyword not in identifiers:
            texts.append(elem)
        judged = bool(_JUDGED & set(action.replace("*", "").split("/")))
        if judged and elem.keyword not in accepted and \
                not all(is_own_form(elem.VR, v) for v in values):
            found.setdefault(_name(elem), Residue("deid.identifying-value", _name(elem),
                                                  _tag(elem)))
            if elem.VR not in _TEXT_VRS:
                tokens |= _tokens(elem, values)
        elif (elem.VR == "PN" or elem.keyword in identifiers) and elem.keyword not in accepted:
            tokens |= _tokens(elem, values)
    found.update(_text_residues(texts, sorted(tokens, key=len, reverse=True)[:MAX_TOKENS]))
    return list(found.values())


def _text_residues(texts: list[DataElement], tokens: list[str]) -> dict[str, Residue]:
    parts = [r"(?<![A-Za-z0-9])" + re.escape(t) + r"(?![A-Za-z0-9])" for t in tokens]
    pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None
    out: dict[str, Residue] = {}
    for elem in texts:
        try:
            values = [str(v)[:MAX_TEXT] for v in _values(elem.value)]
        except Exception:  # undecodable text is judged by the byte-level checks of verify
            values = []
        for text in values:
            if (pattern is not None and pattern.search(text)) or _ID_SHAPE.search(text):
                out.setdefault("text:" + _name(elem), Residue("deid.identifier-in-text",
                                                              _name(elem), _tag(elem)))
    return out
