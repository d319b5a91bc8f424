"""Where the Table E.1-1 tests get the table from.

The independent oracle is the standard's own CSV (``shared/domain`` beside the clone, or the folder
named by ``RADGUARD_SHARED_DOMAIN``). A bare clone or a CI checkout has no such folder: the tests
then run against the table RadGuard ships (``radguard.data.deid``), so they never skip, and
:func:`note_fallback` says so in the test report (a warning, not silence).
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE_NAME = "ps3.15-2023b-table-E.1-1.csv"
SAFE_NAME = "ps3.15-2023b-table-E.3.10-1-safe-private.csv"
SHIPPED = "table-e1-1-2023b.json"


def shared_dir() -> Path | None:
    """The folder holding the standard's CSVs, or None when it is not there."""
    env = os.environ.get("RADGUARD_SHARED_DOMAIN")
    for folder in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "domain"]:
        if (folder / TABLE_NAME).is_file():
            return folder
    return None


def shipped_table() -> dict[str, object]:
    text = resources.files("radguard.data.deid").joinpath(SHIPPED).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def _rows_from_shipped() -> list[dict[str, str]]:
    data = shipped_table()
    columns: dict[str, str] = data["option_columns"]  # type: ignore[assignment]
    rows = []
    for raw in data["rows"]:  # type: ignore[attr-defined]
        row = {"Attribute Name": raw["name"], "Tag": raw["tag"], "Basic Prof.": raw["basic"]}
        row.update({col: raw["options"].get(opt, "") for col, opt in columns.items()})
        rows.append(row)
    return rows


def table_rows() -> tuple[list[dict[str, str]], str]:
    """Rows in the CSV's shape (``Tag``, ``Basic Prof.``, one key per option column) and the
    source they came from: ``"csv"`` (the standard) or ``"shipped"`` (RadGuard's data file)."""
    folder = shared_dir()
    if folder is not None:
        with (folder / TABLE_NAME).open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh)), "csv"
    return _rows_from_shipped(), "shipped"


def note_fallback(what: str) -> None:
    warnings.warn(f"{what}: the standard's CSV ({TABLE_NAME}) is not beside the repository (set "
                  "RADGUARD_SHARED_DOMAIN); checked against RadGuard's shipped table instead, "
                  "without the independent comparison", UserWarning, stacklevel=2)
