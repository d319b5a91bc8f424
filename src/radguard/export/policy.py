"""The export policy tables (data/export/*.json) and the passphrase word list, loaded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Capacity", "capacity", "policy", "record_types", "text", "words"]

_PKG = "radguard.data.export"


def _json(name: str) -> dict[str, Any]:
    data = json.loads(resources.files(_PKG).joinpath(name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@cache
def policy() -> dict[str, Any]:
    """``policy.json``: content cipher, key transport, PBKDF2 and password rules."""
    return _json("policy.json")


@cache
def record_types() -> tuple[dict[str, str], str]:
    """``record_types.json``: SOP Class UID -> DICOMDIR leaf record type, and the default."""
    data = _json("record_types.json")
    return dict(data["record_types"]), str(data["default"])


@cache
def words() -> tuple[str, ...]:
    """The passphrase word list (``words.txt``), comments stripped."""
    lines = resources.files(_PKG).joinpath("words.txt").read_text(encoding="ascii").splitlines()
    return tuple(w for w in (x.strip() for x in lines) if w and not w.startswith("#"))


@cache
def text(name: str) -> str:
    """A text template of the data folder (``readme.txt``...)."""
    return resources.files(_PKG).joinpath(name).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Capacity:
    """What one medium of a kind holds, and its CID 405 media type code for the audit message."""

    kind: str
    bytes: int | None
    media_type: str
    overhead_fraction: float
    overhead_bytes: int

    def usable(self) -> int | None:
        """Bytes of files that fit once the ISO 9660 overhead is reserved."""
        if self.bytes is None:
            return None
        return int(self.bytes * (1 - self.overhead_fraction)) - self.overhead_bytes


def capacity(kind: str) -> Capacity:
    """The capacity of ``cd``, ``dvd`` or ``usb`` (``capacities.json``)."""
    data = _json("capacities.json")
    try:
        entry = data["media"][kind]
    except KeyError:
        from radguard.export.errors import ExportError

        raise ExportError(f"unknown medium kind {kind!r}", remedy="use cd, dvd or usb") from None
    over = data["iso_overhead"]
    return Capacity(kind, entry["bytes"], entry["audit_media_type"], float(over["fraction"]),
                    int(over["bytes"]))
