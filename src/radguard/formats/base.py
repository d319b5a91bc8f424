"""The output-format interface and its registry."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["FORMATS", "Format", "Renderable", "get_format"]


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
