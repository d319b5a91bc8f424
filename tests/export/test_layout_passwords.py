"""Splitting across media (capacities.json), passwords (PS3.15 D.1 ASCII, strength, passphrases),
and the de-identification hook."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from radguard.config import Settings
from radguard.export import DoesNotFit, ExportError, WeakPassword, check_password
from radguard.export.layout import estimate, plan_media
from radguard.export.passwords import estimate_bits, generate_passphrase, passphrase_bits
from radguard.export.policy import capacity, words
from radguard.export.selection import SelectedFile
from radguard.export.writer import targets
from tests.export.conftest import Sources
from tests.export.helpers import export

MB = 1_000_000


def _file(i: int, study: str, series: str, size: int) -> SelectedFile:
    return SelectedFile(f"/in/{i}", size, f"P{study}", study, series, f"1.2.{i}", "1.2.840.1")


def test_capacities_are_cd_700mb_and_dvd_4_7gb() -> None:
    assert capacity("cd").bytes == 360_000 * 2048
    assert capacity("dvd").bytes == 4_700_372_992
    assert capacity("usb").bytes is None
    with pytest.raises(ExportError, match="unknown medium"):
        capacity("floppy")


def test_split_keeps_studies_whole_then_breaks_series_then_files() -> None:
    files = ([_file(i, "A", "A1", 30 * MB) for i in range(3)]          # 90 MB study
             + [_file(10 + i, "B", "B1", 30 * MB) for i in range(2)]  # 60 MB study
             + [_file(20 + i, "C", f"C{i % 3}", 40 * MB) for i in range(6)])  # 240 MB study
    plans = plan_media(files, 130 * MB)
    assert all(p.count == len(plans) for p in plans)
    assert sum(len(p.files) for p in plans) == len(files)
    first = {f.source.study_uid for f in plans[0].files}
    assert first == {"A"}  # B would not fit beside A: studies are not split needlessly
    for plan in plans:
        assert plan.estimated_bytes <= 130 * MB
        ids = [f.rel for f in plan.files]
        assert len(set(ids)) == len(ids)
        assert all(i.startswith("DICOM/PA") for i in ids)
    series_c = [{f.source.series_uid for f in p.files if f.source.study_uid == "C"} for p in plans]
    assert all(len(s) <= 2 for s in series_c)  # the big study was broken on series boundaries
    with pytest.raises(DoesNotFit):
        plan_media([_file(99, "Z", "Z1", 200 * MB)], 130 * MB)
    assert estimate(files[0]) % 2048 == 1024  # sector-rounded + the DICOMDIR share


def test_split_names_never_collide() -> None:
    assert targets(Path("/x/out.iso"), 1) == [Path("/x/out.iso")]
    assert targets(Path("/x/out.iso"), 3)[2] == Path("/x/out-3of3.iso")


def test_password_policy() -> None:
    for weak in ("short", "aaaaaaaaaaaaaaaa", "Password1234", "abcdefghijklmnop",
                 "Welcome2Radiology"):
        with pytest.raises(WeakPassword):
            check_password(weak)
    with pytest.raises(WeakPassword, match="ASCII"):
        check_password("Grüße-aus-Köln-2024!")
    check_password("Tr0ub4dor&3x-Lantern")
    assert estimate_bits("") == 0


def test_generated_passphrase_is_strong_and_random() -> None:
    assert len(words()) == 4096 and len(set(words())) == 4096
    phrases = {generate_passphrase() for _ in range(20)}
    assert len(phrases) == 20
    for p in phrases:
        assert len(p.split("-")) == 6
        check_password(p)
    assert passphrase_bits() == 72


def test_deid_hook(tmp_path: Path, sources: Sources, settings: Settings) -> None:
    present = importlib.util.find_spec("radguard.deid") is not None
    try:
        import radguard.deid as deid

        usable = hasattr(deid, "deidentify_dataset") and hasattr(deid, "DeidOptions")
    except ImportError:
        usable = False
    if not (present and usable):
        with pytest.raises(ExportError, match="not available"):
            export(sources, tmp_path / "m", settings, deid=("basic",))
        assert not (tmp_path / "m").exists()
        return
    import pydicom

    from radguard.export import OpenOptions, open_export

    result = export(sources, tmp_path / "m", settings, deid=("basic",))
    assert result.deidentified
    open_export(tmp_path / "m", tmp_path / "o", OpenOptions(password="Quartz-Lantern-47-Orbit"),
                settings)
    for p in (tmp_path / "o" / "DICOM").rglob("IM*"):
        ds = pydicom.dcmread(p)
        assert str(ds.PatientName) not in sources.names
        assert ds.get("PatientIdentityRemoved") == "YES"
