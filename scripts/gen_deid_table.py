#!/usr/bin/env python3
"""Generate RadGuard's de-identification tables from the standard's own tables (no list typed by hand).

Inputs (CSV extracts of DICOM PS3.15 2023b, kept in the project's shared domain folder):

- ``ps3.15-2023b-table-E.1-1.csv``: Table E.1-1, Application Level Confidentiality Profile
  Attributes (one row per attribute: name, tag, retired, in standard IOD, Basic Profile action and
  one column per option of E.3);
- ``ps3.15-2023b-table-E.3.10-1-safe-private.csv``: Table E.3.10-1, Safe Private Attributes.

Outputs (versioned data files of the package ``radguard.data.deid``):

- ``table-e1-1-2023b.json``: every row, with the option columns renamed to RadGuard's option ids and
  the VR and keyword of each (non-range) tag taken from pydicom's data dictionary;
- ``safe-private-2023b.json``: every safe private attribute (creator, group, element byte, VR, VM).

Usage::

    uv run python scripts/gen_deid_table.py [--shared DIR] [--out DIR] [--check]

``--check`` exits 1 when the committed files differ from what the CSVs produce (CI drift check).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_keyword, dictionary_VR

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = ROOT.parent / "shared" / "domain"
DEFAULT_OUT = ROOT / "src" / "radguard" / "data" / "deid"
TABLE_CSV = "ps3.15-2023b-table-E.1-1.csv"
SAFE_CSV = "ps3.15-2023b-table-E.3.10-1-safe-private.csv"

OPTION_COLUMNS = {
    "Rtn. Safe Priv. Opt.": "retain-safe-private",
    "Rtn. UIDs Opt.": "retain-uids",
    "Rtn. Dev. Id. Opt.": "retain-device-identity",
    "Rtn. Inst. Id. Opt.": "retain-institution-identity",
    "Rtn. Pat. Chars. Opt.": "retain-patient-characteristics",
    "Rtn. Long. Full Dates Opt.": "retain-long-full-dates",
    "Rtn. Long. Modif. Dates Opt.": "retain-long-modified-dates",
    "Clean Desc. Opt.": "clean-descriptors",
    "Clean Struct. Cont. Opt.": "clean-structured-content",
    "Clean Graph. Opt.": "clean-graphics",
}
BASIC_ACTIONS = {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
OPTION_ACTIONS = {"K", "C"}
TAG_RE = re.compile(r"^\(([0-9A-Fa-fx]{4}),([0-9A-Fa-fx]{4})\)$")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tag_fields(text: str) -> dict[str, Any]:
    """A fixed tag gets its VR and keyword; a pattern (``x`` digits or odd groups) gets a mask."""
    if text.startswith("(gggg,eeee)") and "odd" in text:
        return {"pattern": "private"}
    m = TAG_RE.match(text)
    if m is None:
        raise SystemExit(f"{TABLE_CSV}: cannot parse tag {text!r}")
    digits = (m.group(1) + m.group(2)).upper()
    if "X" in digits:
        mask = int("".join("0" if c == "X" else "F" for c in digits), 16)
        value = int(digits.replace("X", "0"), 16)
        return {"pattern": "mask", "mask": f"{mask:08X}", "value": f"{value:08X}"}
    tag = int(digits, 16)
    try:
        vr = dictionary_VR(tag)
        keyword = dictionary_keyword(tag)
    except KeyError:
        vr, keyword = "UN", ""
    return {"pattern": "tag", "vr": vr, "keyword": keyword}


def build_table(csv_path: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for line in csv.DictReader(fh):
            basic = line["Basic Prof."].strip()
            if basic not in BASIC_ACTIONS:
                raise SystemExit(f"{csv_path.name}: unknown Basic Profile action {basic!r}")
            options = {}
            for column, option in OPTION_COLUMNS.items():
                value = line[column].strip()
                if value:
                    if value not in OPTION_ACTIONS:
                        raise SystemExit(f"{csv_path.name}: unknown option action {value!r}")
                    options[option] = value
            tag = line["Tag"].strip()
            rows.append({
                "name": line["Attribute Name"].strip(),
                "tag": tag,
                "retired": line["Retd. (from )"].strip() == "Y",
                "in_std_iod": line["In Std. Comp. IOD (from )"].strip() == "Y",
                "basic": basic,
                "options": options,
                **_tag_fields(tag),
            })
    return {
        "table": "DICOM PS3.15 2023b Table E.1-1",
        "version": "2023b",
        "source": TABLE_CSV,
        "source_sha256": _sha256(csv_path),
        "generated_by": "scripts/gen_deid_table.py",
        "option_columns": OPTION_COLUMNS,
        "rows": rows,
    }


def build_safe_private(csv_path: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for line in csv.DictReader(fh):
            m = TAG_RE.match(line["Data Element"].strip())
            if m is None or not m.group(2).lower().startswith("xx"):
                raise SystemExit(f"{csv_path.name}: cannot parse {line['Data Element']!r}")
            rows.append({
                "group": m.group(1).upper(),
                "element": m.group(2)[2:].upper(),
                "creator": line["Private Creator"].strip(),
                "vr": line["VR"].strip(),
                "vm": line["VM"].strip(),
                "meaning": line["Meaning"].strip(),
            })
    return {
        "table": "DICOM PS3.15 2023b Table E.3.10-1",
        "version": "2023b",
        "source": SAFE_CSV,
        "source_sha256": _sha256(csv_path),
        "generated_by": "scripts/gen_deid_table.py",
        "rows": rows,
    }


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    outputs = {
        "table-e1-1-2023b.json": _dump(build_table(args.shared / TABLE_CSV)),
        "safe-private-2023b.json": _dump(build_safe_private(args.shared / SAFE_CSV)),
    }
    stale = []
    for name, text in outputs.items():
        target = args.out / name
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        print(f"wrote {target}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run scripts/gen_deid_table.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
