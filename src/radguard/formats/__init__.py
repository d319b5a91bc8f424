"""formats: one class per output format, each with one method, ``render(report) -> str``.

Reports are frozen values with ``to_dict()``; formats never compute anything about the report.
"""

from __future__ import annotations

from radguard.formats.base import FORMATS, Format, get_format
from radguard.formats.html import HtmlFormat
from radguard.formats.json_ import JsonFormat
from radguard.formats.sarif import SarifFormat, findings_to_sarif
from radguard.formats.text import TextFormat

__all__ = [
    "FORMATS",
    "Format",
    "HtmlFormat",
    "JsonFormat",
    "SarifFormat",
    "TextFormat",
    "findings_to_sarif",
    "get_format",
]
