"""Untrusted text (file names, peer banners, audit fields) can neither crash the CLI nor drive the
terminal, and a scan never writes into the medium it judges."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from pydicom.data import get_testdata_file

from radguard.cli.common import SafeConsole, fail, safe
from radguard.errors import MediaError
from radguard.formats.base import printable

HOSTILE = "x[/]y[bold red]z\x1b]0;owned\x07\x1b[2J\rDANGER\x9b"


def _console() -> tuple[SafeConsole, io.StringIO]:
    buf = io.StringIO()
    return SafeConsole(file=buf, width=200), buf


def test_printable_escapes_every_control_character() -> None:
    out = printable("".join(chr(c) for c in range(0x00, 0xA0)) + "é")
    assert not any((ord(ch) < 0x20 and ch != "\t") or 0x7F <= ord(ch) < 0xA0 for ch in out)
    assert "\\x1b" in out and "\\x0a" in out and "\\x9b" in out and out.endswith("é")
    assert printable("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"


def test_console_prints_broken_markup_literally_instead_of_raising() -> None:
    console, buf = _console()
    console.print(f"file {HOSTILE}")
    text = buf.getvalue()
    assert "x[/]y" in text
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\\x1b]0;owned\\x07" in text


def test_safe_keeps_values_literal_inside_markup() -> None:
    console, buf = _console()
    console.print(f"[bold]path[/] {safe(HOSTILE)}", highlight=False)
    assert "[bold red]z" in buf.getvalue()


def test_fail_with_hostile_subject_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as exc:
        fail(MediaError(f"bad member {HOSTILE}", subject=HOSTILE, remedy="[/]"))
    assert exc.value.exit_code == 2


def _radguard(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RADGUARD_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "radguard.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_text_report_escapes_hostile_file_names(tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    medium.mkdir()
    (medium / "IMG1.dcm").write_bytes(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    (medium / "evil\x1b]0;t\x07.exe").write_bytes(b"MZ" + b"\0" * 200)
    result = _radguard("media", "scan", str(medium), "--format", "text", "--no-record",
                       home=tmp_path / "home")
    assert result.returncode == 1, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "evil\\x1b]0;t\\x07.exe" in result.stdout


def test_scan_refuses_to_write_its_report_into_the_medium(tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    medium.mkdir()
    (medium / "IMG1.dcm").write_bytes(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    before = sorted(p.name for p in medium.iterdir())
    result = _radguard("media", "scan", str(medium), "--format", "json", "--no-record",
                       "-o", str(medium / "report.json"), home=tmp_path / "home")
    assert result.returncode == 2
    assert "inside the medium" in result.stderr and "what to do" in result.stderr
    assert sorted(p.name for p in medium.iterdir()) == before


def test_sanitize_refuses_to_write_its_package_into_the_medium(tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    medium.mkdir()
    (medium / "IMG1.dcm").write_bytes(Path(str(get_testdata_file("CT_small.dcm"))).read_bytes())
    before = sorted(p.name for p in medium.iterdir())
    result = _radguard("media", "sanitize", str(medium), "--out", str(medium / "pkg"),
                       home=tmp_path / "home")
    assert result.returncode == 2
    assert "package would be written inside the medium" in result.stderr
    assert sorted(p.name for p in medium.iterdir()) == before
