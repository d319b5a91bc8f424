"""'What changed since the last run' only calls a finding fixed when this run looked again: a run
limited with --only, or a run while the node is down, leaves earlier findings 'not rechecked'."""

from __future__ import annotations

import json
from pathlib import Path

from tests.assess.dcmtk import storescp
from tests.assess.test_assess_cli import _run


def _changes(home: Path, target: str, *extra: str, codes: tuple[int, ...] = (0, 1)
             ) -> dict[str, list[str]]:
    result = _run(home, "assess", target, "--format", "json", "--timeout", "2", *extra)
    assert result.returncode in codes, result.stderr
    [node] = json.loads(result.stdout)["nodes"]
    return dict(node["changes"])


def test_partial_and_unreachable_runs_fix_nothing(tmp_path: Path) -> None:
    peer = storescp(tmp_path / "scp")
    target = f"127.0.0.1:{peer.port}/STORESCP"
    try:
        first = _run(tmp_path, "assess", target, "--format", "json", "--timeout", "2")
        [node] = json.loads(first.stdout)["nodes"]
        found = {f["id"] for f in node["findings"]}
        assert "dicom.called-aet-not-enforced" in found and len(found) >= 2, found
        only = _changes(tmp_path, target, "--only", "dicom.called-aet-not-enforced")
        assert only["fixed"] == []
        assert "dicom.called-aet-not-enforced" in only["unchanged"]
        assert set(only["not_rechecked"]) == found - {"dicom.called-aet-not-enforced"}
    finally:
        peer.stop()
    down = _changes(tmp_path, target, codes=(2,))  # 2: nothing could be assessed
    assert down["fixed"] == []
    assert "dicom.called-aet-not-enforced" in down["not_rechecked"]
