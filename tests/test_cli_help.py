"""Every command's --help renders (help texts quote DICOM syntax such as ``host:port[/AET]``)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from radguard.cli import app


def _paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            out.extend(_paths(sub, (*prefix, name)))
    return out


COMMANDS = _paths(typer.main.get_command(app))


def test_all_subsystems_are_registered() -> None:
    top = {p[0] for p in COMMANDS if p}
    assert {"media", "deid", "assess", "audit", "keys", "quarantine"} <= top
    media = {p[1] for p in COMMANDS if len(p) == 2 and p[0] == "media"}
    assert {"scan", "checks", "sanitize", "import", "export", "open"} <= media


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "radguard")
def test_help_renders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
