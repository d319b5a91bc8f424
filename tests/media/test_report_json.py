"""MediumReport.iter_json: the streamed JSON document is the one to_dict describes, in pieces."""

from __future__ import annotations

import json

import radguard.media.interface as interface
from radguard.findings import Verdict
from radguard.media.interface import FileReport, MediumReport


def _report(n: int) -> MediumReport:
    files = tuple(FileReport(f"d/f{i:04d}.dcm", "dicom", 100 + i, f"{i:064x}", Verdict.CLEAN, (),
                             {"study_uid": f"1.2.3.{i}", "h_patient_id": "secret"})
                  for i in range(n))
    return MediumReport("/media/cd", "folder", Verdict.CLEAN, files, (), "2026-01-01T00:00:00+00:00",
                        "2026-01-01T00:00:01+00:00", {"yara": "on"}, {"t": "1"}, "0.1.0")


def test_streamed_json_is_the_documented_document_across_piece_boundaries() -> None:
    for n in (0, 1, interface._JSON_CHUNK, interface._JSON_CHUNK + 1, 3 * interface._JSON_CHUNK):
        report = _report(n)
        pieces = list(report.iter_json())
        assert json.loads("".join(pieces)) == report.to_dict()
        assert len(pieces) <= 2 + -(-n // interface._JSON_CHUNK)  # bounded pieces, not one/file
        assert "secret" not in "".join(pieces)  # identity hashes never leave the process
