"""The custody manifest: what a package holds and where it came from, as canonical JSON.

Schema ``radguard.custody/1``. Per file: package name, size and SHA-256 of the rebuilt file, the
original's path, size and SHA-256, the instance's UIDs, the scan verdict and finding ids, and what the
sanitiser changed. Per package: id, time, station, operator, medium (path, kind, scan id, verdict), the
policy (private elements, suspicious override with operator and reason), the signing key id, table
versions, and the files left out with their reasons. No patient names or IDs (DESIGN invariant 4).

Canonical form (what is signed): UTF-8 JSON with sorted keys, no insignificant white space, no
floats; for these value types it coincides with RFC 8785 (JSON Canonicalization Scheme).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from radguard.media.custody.errors import ManifestInvalid

__all__ = ["SCHEMA", "Excluded", "Manifest", "ManifestFile", "canonical_json", "parse_manifest"]

SCHEMA = "radguard.custody/1"
MAX_MANIFEST = 256 * 1024 * 1024
NAME = re.compile(r"^files/[0-9]{6}\.dcm$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def canonical_json(value: Any) -> bytes:
    """Canonical UTF-8 JSON of ``value`` (sorted keys, compact); floats are refused."""

    def check(v: Any) -> None:
        if isinstance(v, float):
            raise ValueError("floats are not allowed in canonical custody JSON")
        if isinstance(v, Mapping):
            for x in v.values():
                check(x)
        elif isinstance(v, list | tuple):
            for x in v:
                check(x)

    check(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One rebuilt file of the package."""

    name: str
    size: int
    sha256: str
    original_path: str
    original_size: int
    original_sha256: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    verdict: str
    findings: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    override: bool = False


@dataclass(frozen=True, slots=True)
class Excluded:
    """A file of the medium left out of the package, and why."""

    path: str
    sha256: str | None
    verdict: str
    reason: str
    quarantined: bool


@dataclass(frozen=True, slots=True)
class Manifest:
    """The whole manifest; :meth:`to_dict` is what :func:`canonical_json` signs."""

    package_id: str
    created: str
    radguard_version: str
    station: str
    operator: str
    key_id: str
    medium: Mapping[str, Any]
    policy: Mapping[str, Any]
    tables: Mapping[str, str]
    files: tuple[ManifestFile, ...]
    excluded: tuple[Excluded, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = SCHEMA
        for f in d["files"]:
            f["findings"] = list(f["findings"])
            f["changes"] = list(f["changes"])
        return d

    def canonical(self) -> bytes:
        return canonical_json(self.to_dict())

    def by_name(self) -> dict[str, ManifestFile]:
        return {f.name: f for f in self.files}


_FILE_FIELDS = {"name": str, "size": int, "sha256": str, "original_path": str,
                "original_size": int, "original_sha256": str, "study_uid": str, "series_uid": str,
                "sop_instance_uid": str, "sop_class_uid": str, "transfer_syntax": str,
                "verdict": str, "findings": list, "changes": list, "override": bool}
_TOP_FIELDS = {"schema": str, "package_id": str, "created": str, "radguard_version": str,
               "station": str, "operator": str, "key_id": str, "medium": dict, "policy": dict,
               "tables": dict, "files": list, "excluded": list}


def _typed(d: Any, spec: Mapping[str, type], where: str) -> None:
    if not isinstance(d, dict):
        raise ManifestInvalid(f"{where} is not an object")
    for key, typ in spec.items():
        if key not in d:
            raise ManifestInvalid(f"{where} lacks '{key}'")
        value = d[key]
        if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ManifestInvalid(f"{where}.{key} is not an integer")
        if not isinstance(value, typ):
            raise ManifestInvalid(f"{where}.{key} is not of type {typ.__name__}")


def parse_manifest(data: bytes) -> Manifest:
    """Parse and check manifest bytes; they must already be in canonical form.

    Raises
    ------
    ManifestInvalid
        Too large, not JSON, not canonical, wrong schema, a field missing or of the wrong type, a
        bad file name or hash, or a name listed twice.
    """
    if len(data) > MAX_MANIFEST:
        raise ManifestInvalid(f"manifest larger than {MAX_MANIFEST} bytes")
    try:
        d = json.loads(data.decode("utf-8"), parse_float=_no_float)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    _typed(d, _TOP_FIELDS, "manifest")
    if d["schema"] != SCHEMA:
        raise ManifestInvalid(f"unknown manifest schema {d['schema']!r} (expected {SCHEMA})")
    # floats were refused by the parser already, so the compact sorted dump is the canonical form
    if json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                  allow_nan=False).encode("utf-8") != data:
        raise ManifestInvalid("manifest is not in canonical form (edited after signing?)")
    files = []
    seen: set[str] = set()
    for i, f in enumerate(d["files"]):
        _typed(f, _FILE_FIELDS, f"files[{i}]")
        if not NAME.match(f["name"]) or f["name"] in seen:
            raise ManifestInvalid(f"files[{i}].name {f['name']!r} is invalid or repeated")
        if not HEX64.match(f["sha256"]) or not HEX64.match(f["original_sha256"]):
            raise ManifestInvalid(f"files[{i}] has a malformed SHA-256")
        seen.add(f["name"])
        f = dict(f, findings=tuple(str(x) for x in f["findings"]),
                 changes=tuple(str(x) for x in f["changes"]))
        files.append(ManifestFile(**f))
    excluded = []
    for i, e in enumerate(d["excluded"]):
        _typed(e, {"path": str, "verdict": str, "reason": str, "quarantined": bool},
               f"excluded[{i}]")
        excluded.append(Excluded(e["path"], e.get("sha256"), e["verdict"], e["reason"],
                                 e["quarantined"]))
    return Manifest(d["package_id"], d["created"], d["radguard_version"], d["station"],
                    d["operator"], d["key_id"], d["medium"], d["policy"], d["tables"],
                    tuple(files), tuple(excluded))


def _no_float(text: str) -> Any:
    raise ValueError(f"float {text} in manifest")
