"""A scan on two workers gives the same report as one, YARA included (rules compiled once by the
parent and shared by the forked workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radguard.media import ScanOptions, scan_medium
from radguard.samples import hostile

SALT = bytes(16)


def _medium(folder: Path) -> Path:
    for n in range(60):  # more than a batch per worker, so both workers get files
        (folder / f"clean{n:03d}.dcm").write_bytes(
            hostile.base_file(hostile.explicit_le(uid_suffix=str(n + 1))))
    (folder / "pe_polyglot.dcm").write_bytes(hostile.pe_polyglot())
    (folder / "elf_polyglot.dcm").write_bytes(hostile.elf_polyglot())
    (folder / "trailing_elf.dcm").write_bytes(hostile.trailing_elf())
    return folder


def _json(report) -> dict:  # type: ignore[no-untyped-def, type-arg]
    data = json.loads("".join(report.iter_json()))
    del data["medium"]["started"], data["medium"]["finished"]
    return data  # type: ignore[no-any-return]


def test_two_workers_same_report_as_one(tmp_path: Path) -> None:
    medium = _medium(tmp_path)
    one = scan_medium(medium, ScanOptions(workers=1, salt=SALT))
    two = scan_medium(medium, ScanOptions(workers=2, salt=SALT))
    assert two.files == one.files
    assert _json(two) == _json(one)
    rules = {f.path: {x.evidence.details.get("rule") for x in f.findings
                      if x.check_id == "media.yara-match"} for f in two.files}
    assert "RadGuard_DICOM_PE_Polyglot" in rules["pe_polyglot.dcm"]
    assert "RadGuard_DICOM_ELF_Polyglot" in rules["elf_polyglot.dcm"]
    assert two.counts["files"] == 63 and two.counts["dangerous"] >= 3


def test_scanned_while_listed_same_report_and_progress(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder larger than STREAM_FROM is scanned while it is listed: same report, and the
    progress calls still count 1..total with the final total."""
    from radguard.media import scan

    medium = _medium(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "link").symlink_to("../clean000.dcm")
    one = scan_medium(medium, ScanOptions(workers=1, salt=SALT))
    monkeypatch.setattr(scan, "STREAM_FROM", 4)
    calls: list[tuple[int, int, str]] = []
    two = scan_medium(medium, ScanOptions(workers=2, salt=SALT),
                      progress=lambda done, total, rel: calls.append((done, total, rel)))
    assert _json(two) == _json(one)
    assert any(f.check_id == "media.symlink" for f in two.findings)
    assert [c[:2] for c in calls] == [(i, 63) for i in range(1, 64)]
    assert sorted(c[2] for c in calls) == sorted(f.path for f in two.files)


def test_signature_table_is_cached() -> None:
    from radguard.media.signatures import load_table

    assert load_table() is load_table()  # rebuilding it costs about 2 ms: more than a file's scan
