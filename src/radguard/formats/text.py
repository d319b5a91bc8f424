"""Plain-text output for logs and pipes (the CLI renders a Rich summary on a terminal instead)."""

from __future__ import annotations

from typing import Any

from radguard.formats.base import Renderable, printable, register

__all__ = ["TextFormat"]


def _finding_line(f: dict[str, Any]) -> str:
    where = printable(f.get("path") or "")
    if f.get("offset") is not None:
        where += f"@{f['offset']}"
    return (f"  [{f['severity'].upper():8}] {printable(f['id'])}: {printable(f['message'])}"
            + (f" ({where})" if where else ""))


@register
class TextFormat:
    name = "text"

    def render(self, report: Renderable) -> str:
        data = report.to_dict()
        lines: list[str] = []
        medium = data.get("medium")
        if medium is not None:
            c = medium["counts"]
            lines.append(f"Medium {printable(medium['path'])}: {medium['verdict'].upper()}")
            lines.append(f"  {c['files']} files ({c['dicom']} DICOM, {c['dicomdir']} DICOMDIR, "
                         f"{c['other']} other): {c['clean']} clean, {c['suspicious']} suspicious, "
                         f"{c['dangerous']} dangerous")
            for name, status in data.get("engines", {}).items():
                lines.append(f"  engine {printable(name)}: {printable(status)}")
            for f in medium["findings"]:
                lines.append(_finding_line(f))
            for file in data["files"]:
                if file["verdict"] != "clean":
                    lines.append(f"{file['verdict'].upper():10} {printable(file['path'])}")
                    lines.extend(_finding_line(f) for f in file["findings"])
            return "\n".join(lines) + "\n"
        for key, value in data.items():
            lines.append(f"{printable(key)}: {printable(value, keep_newlines=True)}")
        return "\n".join(lines) + "\n"
