"""JSON output: the report's ``to_dict()``, stable key order, UTF-8."""

from __future__ import annotations

import json

from radguard.formats.base import Renderable, register

__all__ = ["JsonFormat"]


@register
class JsonFormat:
    name = "json"

    def __init__(self, indent: int | None = 2):
        self.indent = indent

    def render(self, report: Renderable) -> str:
        return json.dumps(report.to_dict(), indent=self.indent, ensure_ascii=False, default=str) + "\n"
