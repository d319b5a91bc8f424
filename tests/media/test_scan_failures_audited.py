"""A scan that cannot finish is still audited, and audit messages are never lost to a failed helper
process: a worker killed mid-scan gives a clean RadGuard error and a failed Data Import in the
journal; when the forked process that emits half of a large medium's Data Import messages dies,
this process emits that half itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from radguard.audit import builders
from radguard.audit.emitter import AuditEmitter
from radguard.config import load_settings
from radguard.errors import RadGuardError
from radguard.media import ScanOptions, jobs, scan


def _medium(tmp_path: Path, n: int = 40) -> Path:
    root = tmp_path / "cd"
    root.mkdir()
    ct = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    for i in range(n):
        (root / f"IM{i:04d}").write_bytes(ct)
    return root


def _journal(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (home / "audit" / "journal").glob("*.log"))


def test_a_dead_worker_is_a_clean_error_and_an_audited_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = scan._inspect_packed

    def dying(state, entry):  # type: ignore[no-untyped-def]
        if entry.rel == "IM0017":
            os._exit(9)
        return real(state, entry)

    monkeypatch.setattr(scan, "_inspect_packed", dying)
    settings = load_settings(home=str(tmp_path / "home"))
    with pytest.raises(RadGuardError) as info:
        jobs.run_scan(settings, str(_medium(tmp_path)), ScanOptions(workers=2), record=False)
    assert "worker" in info.value.message
    journal = _journal(tmp_path / "home")
    assert b"110107" in journal and b"scan aborted" in journal


def test_messages_of_a_dead_emitter_child_are_emitted_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(home=str(tmp_path / "home"))
    emitter = AuditEmitter.from_settings(settings)
    if emitter.sender is not None or emitter.repository is not None:
        pytest.skip("the fork path is only taken for a journal-only emitter")

    def build(first: int, last: int):  # type: ignore[no-untyped-def]
        return [builders.data_import(user="t", station="s", media_id=f"medium-part-{n}",
                                     patient_ids=[], study_uids=[], description=f"part {n}")
                for n in range(first, last)]

    def dead_child(*args: object) -> None:
        os._exit(3)

    monkeypatch.setattr(jobs, "_emit_child", dead_child)
    count = jobs.PARALLEL_MESSAGES + 6
    jobs._emit_parts(emitter, build, count)
    journal = _journal(tmp_path / "home")
    for n in range(count):
        assert f"medium-part-{n}<".encode() in journal or f"medium-part-{n}\"".encode() in journal
