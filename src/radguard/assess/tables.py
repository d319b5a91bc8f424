"""Loaders of the versioned data tables in ``radguard/data/assess`` (read once, immutable views).

Each table carries a ``version``; reports list the versions they used (:func:`versions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from radguard.findings import ControlRef

__all__ = ["CipherSuite", "cipher_suites", "controls_for", "load", "versions"]

TABLES = ("tls-profiles.json", "orthanc-cves.json", "sop-tiers.json", "controls.json")


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed table ``name`` (one of :data:`TABLES`)."""
    text = resources.files("radguard.data.assess").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def versions() -> dict[str, str]:
    """``{table file: version}`` for every table."""
    return {name: str(load(name).get("version", "")) for name in TABLES}


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One TLS cipher suite from the table (IANA id and name, OpenSSL name, components)."""

    id: int
    name: str
    openssl: str
    kx: str
    auth: str
    enc: str
    mode: str
    mac: str


@cache
def cipher_suites() -> dict[int, CipherSuite]:
    """Cipher suites by IANA id."""
    table = load("tls-profiles.json")
    cols = table["suite_columns"]
    out: dict[int, CipherSuite] = {}
    for row in table["suites"]:
        values = dict(zip(cols, row, strict=True))
        values["id"] = int(values["id"], 16)
        out[values["id"]] = CipherSuite(**values)
    return out


@cache
def _controls() -> dict[str, tuple[ControlRef, ...]]:
    table = load("controls.json")["checks"]
    return {cid: tuple(ControlRef.parse(c) for c in refs) for cid, refs in table.items()}


def controls_for(check_id: str) -> tuple[ControlRef, ...]:
    """Controls a check maps to (``controls.json``); empty when the table has none."""
    return _controls().get(check_id, ())
