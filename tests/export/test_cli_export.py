"""``radguard media export`` / ``media open`` as an operator runs them (subprocess, exit codes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.export.conftest import PASSWORD, Recipient, Sources


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, RADGUARD_HOME=str(home), RADGUARD_OPERATOR="tech1")
    radguard = str(Path(sys.executable).parent / "radguard")
    return subprocess.run([radguard, *args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)


def test_cli_export_then_open(tmp_path: Path, sources: Sources, recipient: Recipient) -> None:
    home = tmp_path / "home"
    pw = tmp_path / "pw.txt"
    pw.write_text(PASSWORD + "\n")
    r = _run(home, "media", "export", str(sources.folder), "--out", str(tmp_path / "m.iso"),
             "--iso", "--media", "cd", "--password-file", str(pw), "--recipient",
             str(recipient.cert), "--format", "json")
    assert r.returncode == 1, r.stderr  # notes.txt was skipped
    result = json.loads(r.stdout)
    assert result["instances"] == 5 and result["encrypted"] is True
    assert result["recipients"]["password"] is True and len(result["recipients"]["certificates"]) == 1
    assert PASSWORD not in r.stdout + r.stderr
    o = _run(home, "media", "open", str(tmp_path / "m.iso"), "--out", str(tmp_path / "plain"),
             "--key", str(recipient.key), "--cert", str(recipient.cert))
    assert o.returncode == 0, o.stderr
    assert "every digest verified" in o.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text("Not-The-Password-42\n")
    wrong = _run(home, "media", "open", str(tmp_path / "m.iso"), "--out", str(tmp_path / "p2"),
                 "--password-file", str(bad))
    assert wrong.returncode == 2 and "password does not open" in wrong.stderr
    assert not (tmp_path / "p2").exists()


def test_cli_refuses_without_secret_source_and_weak_password(tmp_path: Path,
                                                             sources: Sources) -> None:
    home = tmp_path / "home"
    r = _run(home, "media", "export", str(sources.folder), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "--password-file" in r.stderr
    weak = tmp_path / "weak.txt"
    weak.write_text("Password1234\n")
    r = _run(home, "media", "export", str(sources.folder), "--out", str(tmp_path / "m"),
             "--password-file", str(weak))
    assert r.returncode == 2 and "guessable" in r.stderr
    assert not (tmp_path / "m").exists()
