"""The versioned tables de-identification runs on, loaded once per process from ``radguard.data.deid``.

- :func:`profile_table`: PS3.15 2023b Table E.1-1 (generated from the standard's table by
  ``scripts/gen_deid_table.py``; nothing typed by hand);
- :func:`safe_private`: Table E.3.10-1, the safe private attributes (Retain Safe Private option, E.3.10);
- :func:`method_codes`: CID 7050 De-identification Method codes (PS3.16);
- :func:`presets`: named combinations of options (e.g. ``tcia``);
- :func:`iod_types`: the Type of compound-action attributes in common IODs (see :mod:`.actions`);
- :func:`pixel_rules`: regions of burned-in text per device (Clean Pixel Data, E.3.1).

Every table carries a ``version`` that reports print (DESIGN.md: reports name their tables).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from radguard.deid.errors import DeidTableError

__all__ = [
    "ProfileRow",
    "ProfileTable",
    "SafePrivateTable",
    "iod_types",
    "load_json",
    "method_codes",
    "pixel_rules",
    "presets",
    "profile_table",
    "safe_private",
    "table_versions",
]

TABLE_FILE = "table-e1-1-2023b.json"
SAFE_FILE = "safe-private-2023b.json"


def load_json(name: str) -> dict[str, Any]:
    """A JSON data file of ``radguard.data.deid`` (or a path given by a user, for rule files)."""
    try:
        if "/" in name or name.startswith("."):
            text = Path(name).read_text(encoding="utf-8")
        else:
            text = resources.files("radguard.data.deid").joinpath(name).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise DeidTableError(f"cannot read de-identification table: {exc}", subject=name,
                             remedy="reinstall RadGuard or fix the JSON file") from exc
    if not isinstance(data, dict):
        raise DeidTableError("table is not a JSON object", subject=name)
    return data


def parse_tag(text: str) -> int:
    """``"(0008,0050)"`` -> ``0x00080050``."""
    digits = text.strip().strip("()").replace(",", "")
    return int(digits, 16)


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """One row of Table E.1-1: the Basic Profile action and the action of each option that names it."""

    name: str
    tag_text: str
    basic: str
    options: tuple[tuple[str, str], ...]
    retired: bool
    in_std_iod: bool
    vr: str = ""
    keyword: str = ""

    def option(self, name: str) -> str | None:
        for opt, action in self.options:
            if opt == name:
                return action
        return None


@dataclass(frozen=True, slots=True)
class ProfileTable:
    """Table E.1-1 indexed for lookup: fixed tags, masked ranges (50xx, 60xx) and the private row."""

    version: str
    fixed: dict[int, ProfileRow]
    masked: tuple[tuple[int, int, ProfileRow], ...]
    private: ProfileRow
    rows: tuple[ProfileRow, ...]

    def lookup(self, tag: int) -> ProfileRow | None:
        """The row governing ``tag`` (private tags excluded: see :attr:`private`)."""
        row = self.fixed.get(tag)
        if row is not None:
            return row
        for mask, value, masked_row in self.masked:
            if tag & mask == value:
                return masked_row
        return None


@cache
def profile_table() -> ProfileTable:
    data = load_json(TABLE_FILE)
    fixed: dict[int, ProfileRow] = {}
    masked: list[tuple[int, int, ProfileRow]] = []
    private: ProfileRow | None = None
    rows: list[ProfileRow] = []
    for raw in data["rows"]:
        row = ProfileRow(
            name=raw["name"], tag_text=raw["tag"], basic=raw["basic"],
            options=tuple(sorted(raw["options"].items())), retired=raw["retired"],
            in_std_iod=raw["in_std_iod"], vr=raw.get("vr", ""), keyword=raw.get("keyword", ""),
        )
        rows.append(row)
        if raw["pattern"] == "tag":
            tag = parse_tag(raw["tag"])
            fixed[tag] = _merge(fixed[tag], row) if tag in fixed else row
        elif raw["pattern"] == "mask":
            masked.append((int(raw["mask"], 16), int(raw["value"], 16), row))
        else:
            private = row
    if private is None:
        raise DeidTableError("Table E.1-1 has no private-attributes row", subject=TABLE_FILE)
    return ProfileTable(f"{data['table']} ({data['source_sha256'][:12]})", fixed, tuple(masked),
                        private, tuple(rows))


PROTECTION = ("K", "C", "U", "D", "Z/D", "Z", "X/D", "X/Z/U*", "X/Z/D", "X/Z", "X")
"""Actions from least to most protective, to merge rows the table lists twice."""


def _merge(a: ProfileRow, b: ProfileRow) -> ProfileRow:
    """One row for a tag that Table E.1-1 lists twice (2023b: the Station AE Title attributes, with
    Retain Device Identity C in one row and K in the other): for the Basic Profile and each option,
    the more protective of the two actions applies (an option a row does not name means its Basic
    action there)."""

    def stronger(x: str, y: str) -> str:
        rank = {code: i for i, code in enumerate(PROTECTION)}
        return x if rank.get(x, len(PROTECTION)) >= rank.get(y, len(PROTECTION)) else y

    names = sorted({n for n, _ in a.options} | {n for n, _ in b.options})
    options = tuple((n, stronger(a.option(n) or a.basic, b.option(n) or b.basic)) for n in names)
    return ProfileRow(a.name, a.tag_text, stronger(a.basic, b.basic), options, a.retired and b.retired,
                      a.in_std_iod or b.in_std_iod, a.vr or b.vr, a.keyword or b.keyword)


@dataclass(frozen=True, slots=True)
class SafePrivateTable:
    """Table E.3.10-1: ``(creator upper-case, group, element byte)`` of each safe private attribute."""

    version: str
    entries: frozenset[tuple[str, int, int]]

    def is_safe(self, creator: str, tag: int) -> bool:
        return (creator.strip().upper(), tag >> 16, tag & 0xFF) in self.entries


@cache
def safe_private() -> SafePrivateTable:
    data = load_json(SAFE_FILE)
    entries = frozenset((r["creator"].upper(), int(r["group"], 16), int(r["element"], 16))
                        for r in data["rows"])
    return SafePrivateTable(f"{data['table']} ({data['source_sha256'][:12]})", entries)


@cache
def method_codes() -> dict[str, tuple[str, str]]:
    """Option id -> (code value, code meaning) of CID 7050, scheme DCM."""
    data = load_json("cid7050.json")
    return {k: (v[0], v[1]) for k, v in data["codes"].items()}


@cache
def presets() -> dict[str, dict[str, Any]]:
    return dict(load_json("presets.json")["presets"])


@cache
def iod_types() -> dict[str, Any]:
    return load_json("iod-types.json")


@cache
def pixel_rules() -> dict[str, Any]:
    return load_json("pixel-rules.json")


def table_versions() -> dict[str, str]:
    """Name -> version of every table, for reports."""
    return {
        "profile": profile_table().version,
        "safe-private": safe_private().version,
        "cid7050": load_json("cid7050.json")["version"],
        "presets": load_json("presets.json")["version"],
        "iod-types": str(iod_types()["version"]),
        "pixel-rules": str(pixel_rules()["version"]),
    }
