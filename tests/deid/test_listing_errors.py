"""An input folder that cannot be listed is a clear error naming it, not a traceback and not a
silently skipped folder. Tests run as root in CI, which reads any folder, so the refusal is made by
replacing ``os.scandir`` for one folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from radguard.deid import batch
from radguard.deid.errors import DeidError


def test_unlistable_folder_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    (src / "SUB").mkdir(parents=True)
    (src / "a.dcm").write_bytes(b"x")
    real = os.scandir

    def failing(path: str):  # type: ignore[no-untyped-def]
        if str(path).endswith("SUB"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(batch.os, "scandir", failing)
    with pytest.raises(DeidError) as info:
        batch._listing(src, tmp_path / "out")
    assert info.value.subject.endswith("SUB")
    assert "Permission denied" in info.value.message and info.value.remedy
