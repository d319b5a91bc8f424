"""From Table E.1-1 and the chosen options to one action per attribute (PS3.15 E.1.1, E.3).

:class:`Plan` is compiled once per set of options. For each attribute the Basic Profile action
applies unless a chosen option names the attribute; when several chosen options name it and disagree,
the more protective action wins (C, clean, over K, keep) — a documented RadGuard choice, so that for
instance a calibration date is still shifted under Modified Dates when Retain Device Identity is also
chosen.

Compound actions (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) are resolved by :func:`resolve_compound` from the
attribute's Type in the IOD (table ``iod-types.json``): Type 3 -> X, Type 2 -> Z, Type 1 -> D or U*.
Where the Type is unknown (an attribute inside a sequence item, an IOD the table does not cover) the
safest conformant choice is taken: D, else U*, else Z — a dummy or empty value keeps any Type valid
and carries no identifying content.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydicom.dataset import Dataset

from radguard.deid.tables import ProfileRow, iod_types, load_json, parse_tag, profile_table

__all__ = [
    "DUMMY",
    "Plan",
    "Rule",
    "UnlistedRules",
    "condition_tags",
    "dummy_value",
    "resolve_compound",
    "unlisted_rules",
]

DUMMY: dict[str, Any] = {
    "AE": "ANONYMIZED", "AS": "000Y", "CS": "ANONYMIZED", "DA": "19000101", "DT": "19000101000000",
    "TM": "000000", "DS": "0", "IS": "0", "LO": "ANONYMIZED", "LT": "ANONYMIZED", "SH": "ANONYMIZED",
    "ST": "ANONYMIZED", "UT": "ANONYMIZED", "UC": "ANONYMIZED", "PN": "ANONYMIZED", "UR": "urn:x",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0,
    "OB": b"\x00\x00", "OW": b"\x00\x00", "UN": b"\x00\x00", "OD": b"\x00" * 8, "OF": b"\x00" * 4,
    "OL": b"\x00" * 4, "OV": b"\x00" * 8, "AT": 0,
}
"""Dummy values per VR for action D (PS3.15 E.1.1: "non-zero length ... consistent with the VR")."""


def dummy_value(vr: str) -> Any:
    return DUMMY.get(vr, b"\x00\x00")


@dataclass(frozen=True, slots=True)
class Rule:
    """The action chosen for one attribute of the table under the run's options, and why."""

    action: str
    reason: str
    name: str
    vr: str


def _rule_for(row: ProfileRow, options: frozenset[str]) -> Rule:
    chosen = [(opt, act) for opt, act in row.options if opt in options]
    for wanted in ("C", "K"):
        names = [opt for opt, act in chosen if act == wanted]
        if names:
            return Rule(wanted, f"E.1-1 {'+'.join(names)} {wanted}", row.name, row.vr)
    return Rule(row.basic, f"E.1-1 Basic Profile {row.basic}", row.name, row.vr)


class Plan:
    """Table E.1-1 compiled for one set of options: ``rule(tag)`` is a dict lookup."""

    def __init__(self, options: Iterable[str]):
        opts = frozenset(options)
        table = profile_table()
        self.options = opts
        self.version = table.version
        self.fixed: dict[int, Rule] = {tag: _rule_for(row, opts) for tag, row in table.fixed.items()}
        self.masked = tuple((mask, value, _rule_for(row, opts)) for mask, value, row in table.masked)
        self.private = _rule_for(table.private, opts)

    def rule(self, tag: int) -> Rule | None:
        rule = self.fixed.get(tag)
        if rule is not None:
            return rule
        for mask, value, masked_rule in self.masked:
            if tag & mask == value:
                return masked_rule
        return None

    def changed_tags(self) -> frozenset[int]:
        """Fixed tags whose action is not K: their original values must not survive (verify)."""
        return frozenset(tag for tag, rule in self.fixed.items() if rule.action != "K")


@cache
def _families() -> tuple[tuple[str, frozenset[str], str | None], ...]:
    out = []
    for name, spec in iod_types()["families"].items():
        out.append((name, frozenset(spec.get("uids", ())), spec.get("prefix")))
    return tuple(out)


@cache
def _attribute_types() -> dict[int, dict[str, Any]]:
    return {parse_tag(k): v for k, v in iod_types()["attributes"].items()}


@cache
def families_of(sop_class: str) -> frozenset[str]:
    """Names of the ``iod-types.json`` families a SOP Class UID belongs to."""
    return frozenset(name for name, uids, prefix in _families()
                     if sop_class in uids or (prefix is not None and sop_class.startswith(prefix)))


@cache
def condition_tags(tag: int) -> frozenset[int]:
    """The tags whose presence changes the Type of ``tag`` (``when_present`` in iod-types.json)."""
    spec = _attribute_types().get(tag)
    return frozenset(parse_tag(c) for c in (spec or {}).get("when_present", {}))


def attribute_type(tag: int, *, sop_class: str, nested: bool,
                   ds: Dataset | frozenset[int] | None) -> int | None:
    """The Type (1, 2, 3) of ``tag`` in this context, or ``None`` when the table does not know it."""
    spec = _attribute_types().get(tag)
    if spec is None:
        return None
    if nested:
        nested_type = spec.get("nested")
        return int(nested_type) if nested_type is not None else None
    result = int(spec["default"])
    families: Mapping[str, int] = spec.get("families", {})
    for family in families_of(sop_class):
        if family in families:
            result = min(result, int(families[family]))
    if ds is not None:
        for cond, cond_type in spec.get("when_present", {}).items():
            if parse_tag(cond) in ds:
                result = min(result, int(cond_type))
    return result


_BY_TYPE = {3: ("X", "Z", "D", "U*"), 2: ("Z", "D", "U*"), 1: ("D", "U*", "Z")}
_UNKNOWN = ("D", "U*", "Z", "X")


def resolve_compound(action: str, tag: int, *, sop_class: str, nested: bool,
                     ds: Dataset | frozenset[int] | None) -> tuple[str, str]:
    """One of the parts of a compound ``action``, and a short reason naming the Type used.

    ``ds`` is the data set (or the set of its tags) for conditions on other attributes' presence."""
    parts = action.split("/")
    kind = attribute_type(tag, sop_class=sop_class, nested=nested, ds=ds)
    order = _BY_TYPE.get(kind, _UNKNOWN) if kind is not None else _UNKNOWN
    for choice in order:
        if choice in parts:
            why = f"Type {kind}" if kind is not None else "Type unknown: safest conformant choice"
            return choice, f"{action} -> {choice} ({why})"
    return parts[-1], f"{action} -> {parts[-1]}"


@dataclass(frozen=True, slots=True)
class UnlistedRules:
    """The rules for attributes Table E.1-1 does not list (``rules.json``)."""

    version: str
    free_text_vrs: frozenset[str]
    text_vrs: frozenset[str]
    date_vrs: frozenset[str]
    code_tags: frozenset[int]
    class_uid_tags: frozenset[int]
    registry_prefix: str
    identifier_keywords: tuple[str, ...]
    min_token_length: int


@cache
def unlisted_rules() -> UnlistedRules:
    data = load_json("rules.json")
    return UnlistedRules(
        version=str(data["version"]),
        free_text_vrs=frozenset(data["free_text_vrs"]),
        text_vrs=frozenset(data["text_vrs"]),
        date_vrs=frozenset(data["date_vrs"]),
        code_tags=frozenset(parse_tag(t) for t in data["code_attributes"]["tags"]),
        class_uid_tags=frozenset(parse_tag(t) for t in data["class_uid_attributes"]["tags"]),
        registry_prefix=str(data["registry_uid_prefix"]),
        identifier_keywords=tuple(data["identifier_attributes"]["keywords"]),
        min_token_length=int(data["min_token_length"]),
    )
