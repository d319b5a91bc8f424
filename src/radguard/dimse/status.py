"""Meanings of DIMSE status codes, from a versioned table (PS3.7 Annex C; PS3.4 B.2.3, C.4.1.1.4).

A status is a result, not an exception (STYLE.md): :func:`meaning` turns any code into a
:class:`StatusMeaning` with its category (success, warning, failure, pending, cancel) and text.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["StatusMeaning", "meaning", "table_version"]

TABLE = "dimse-status.json"


@dataclass(frozen=True, slots=True)
class StatusMeaning:
    """A DIMSE status code, its category and its meaning."""

    code: int
    category: str
    text: str

    @property
    def ok(self) -> bool:
        """Success or warning: the peer stored the instance (PS3.4 B.2.3)."""
        return self.category in ("success", "warning")

    def __str__(self) -> str:
        return f"0x{self.code:04X} {self.category}: {self.text}"


@functools.cache
def _table() -> dict[str, Any]:
    text = resources.files("radguard.data.custody").joinpath(TABLE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def table_version() -> str:
    return str(_table()["version"])


def meaning(code: int) -> StatusMeaning:
    """The meaning of ``code``; unknown codes are failures "unknown status" (PS3.7 C.1)."""
    t = _table()
    hit = t["exact"].get(f"{code:04X}")
    if hit:
        return StatusMeaning(code, hit[0], hit[1])
    for low, high, category, text in t["ranges"]:
        if int(low, 16) <= code <= int(high, 16):
            return StatusMeaning(code, category, text)
    if 0xB000 <= code <= 0xBFFF:
        return StatusMeaning(code, "warning", "Warning (unknown code)")
    return StatusMeaning(code, "failure", "Unknown status code")
