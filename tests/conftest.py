"""Shared fixtures: an isolated RadGuard home per test, real sample data locations."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

PYDICOM_DATA = Path(pydicom.__file__).parent / "data"
PYDICOM_TEST_FILES = PYDICOM_DATA / "test_files"


@pytest.fixture(autouse=True)
def radguard_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own RADGUARD_HOME so no test touches a real data directory."""
    home = tmp_path_factory.mktemp("radguard-home")
    monkeypatch.setenv("RADGUARD_HOME", str(home))
    monkeypatch.setenv("RADGUARD_STATION", "test-station")
    monkeypatch.setenv("RADGUARD_OPERATOR", "test-operator")
    for var in ("RADGUARD_CONFIG", "RADGUARD_DATABASE_URL", "RADGUARD_AUDIT_SYSLOG"):
        monkeypatch.delenv(var, raising=False)
    return home


def pydicom_data_dirs() -> list[Path]:
    dirs = [PYDICOM_DATA]
    try:
        import data_store

        dirs.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return dirs
