"""The output-format interface and its registry."""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

__all__ = ["FORMATS", "Format", "Renderable", "get_format", "printable"]

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as text that cannot drive a terminal: control characters (ESC, OSC, CR, BS, DEL,
    C1...) become visible ``\\xNN`` escapes; tab is kept, and newline only with ``keep_newlines``.

    File names, AE titles, HTTP headers and audit fields come from media and networks nobody
    vouches for; printed raw, an escape sequence could repaint a verdict line or forge one.
    """
    text = str(value)
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


@runtime_checkable
class Renderable(Protocol):
    """A report: anything with a JSON-safe ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]: ...


class Format(Protocol):
    """One output format."""

    name: str

    def render(self, report: Renderable) -> str: ...


FORMATS: dict[str, type[Any]] = {}


def register(cls: type[Any]) -> type[Any]:
    FORMATS[cls.name] = cls
    return cls


def get_format(name: str, **options: Any) -> Format:
    """Return a format instance by name (``text``, ``json``, ``html``, ``sarif``).

    Raises
    ------
    ValueError
        Unknown format name.
    """
    try:
        cls = FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; use one of {sorted(FORMATS)}") from None
    fmt: Format = cls(**options)
    return fmt
