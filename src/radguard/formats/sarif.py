"""SARIF 2.1.0 output (OASIS), for security dashboards and code-scanning tools."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from radguard import __version__
from radguard.formats.base import Renderable, register

__all__ = ["SarifFormat", "findings_to_sarif"]

_LEVEL = {"info": "note", "low": "note", "medium": "warning", "high": "error", "critical": "error"}


def findings_to_sarif(findings: Iterable[Mapping[str, Any]],
                      rules: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Build a SARIF log from finding dicts (``Finding.to_dict()`` shape)."""
    rules = rules or {}
    results = []
    seen: dict[str, dict[str, Any]] = {}
    for f in findings:
        rid = f["id"]
        meta = rules.get(rid, {})
        seen.setdefault(rid, {
            "id": rid,
            "shortDescription": {"text": meta.get("description", rid)},
            "help": {"text": meta.get("remedy", f.get("remedy", ""))},
            "properties": {"controls": meta.get("controls", f.get("controls", []))},
        })
        loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {
            "uri": f.get("path") or f.get("asset") or "."}}}
        if f.get("offset") is not None:
            loc["physicalLocation"]["region"] = {"byteOffset": f["offset"]}
        results.append({"ruleId": rid, "level": _LEVEL.get(f["severity"], "warning"),
                        "message": {"text": f["message"]}, "locations": [loc],
                        "properties": {"severity": f["severity"]}})
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "RadGuard", "version": __version__,
                                      "informationUri": "https://example.invalid/radguard",
                                      "rules": list(seen.values())}},
                  "results": results}],
    }


@register
class SarifFormat:
    name = "sarif"

    def __init__(self, rules: Mapping[str, Mapping[str, Any]] | None = None):
        self.rules = rules or {}

    def render(self, report: Renderable) -> str:
        data = report.to_dict()
        findings: list[Mapping[str, Any]] = []
        if "medium" in data:
            findings.extend(data["medium"]["findings"])
            for file in data["files"]:
                findings.extend(file["findings"])
        elif "nodes" in data:
            for node in data["nodes"]:
                findings.extend(node.get("findings", []))
        else:
            findings.extend(data.get("findings", []))
        return json.dumps(findings_to_sarif(findings, self.rules), indent=2) + "\n"
