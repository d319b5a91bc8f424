"""HTML reports a person can print: Jinja2 templates shipped in the package, autoescaped, no scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from radguard.formats.base import Renderable, register

if TYPE_CHECKING:
    import jinja2

__all__ = ["HtmlFormat"]


def _env() -> jinja2.Environment:
    import jinja2  # imported when a report is rendered: 20-30 ms of every command's start otherwise

    return jinja2.Environment(
        loader=jinja2.PackageLoader("radguard.formats", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )


@register
class HtmlFormat:
    name = "html"

    def __init__(self, template: str = "media_scan.html.j2"):
        self.template = template

    def render(self, report: Renderable) -> str:
        data = report.to_dict()
        return _env().get_template(self.template).render(
            report=data, generated=datetime.now(UTC).isoformat(timespec="seconds"))
