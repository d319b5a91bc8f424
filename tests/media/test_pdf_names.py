"""PDF names written with ``#xx`` hex escapes (ISO 32000-1 7.3.5) are the same names to a PDF reader:
a script hidden as ``/J#61vaScript`` is found like ``/JavaScript``."""

from __future__ import annotations

from pathlib import Path

import pytest

from radguard.findings import Verdict
from radguard.media import ScanOptions, scan_medium


def _pdf(action: bytes) -> bytes:
    return (b"%PDF-1.7\n1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj\n2 0 obj << "
            + action + b" >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


@pytest.mark.parametrize("action", [
    b"/S /J#61vaScript /J#53 (app.alert(1))",
    b"/S/#4A#61#76#61#53#63#72#69#70#74/JS(x)",
    b"/S /L#61unch /F (cmd.exe)",
    b"/Type /Filespec /EF << /F 3 0 R >> /Emb#65ddedFile",
])
def test_escaped_script_names_are_found(tmp_path: Path, action: bytes) -> None:
    (tmp_path / "REPORT.PDF").write_bytes(_pdf(action))
    report = scan_medium(tmp_path, ScanOptions(workers=1))
    (file,) = report.files
    assert "media.pdf-script" in {x.check_id for x in file.findings}
    assert file.verdict == Verdict.DANGEROUS


def test_plain_pdf_without_actions_is_not_a_script(tmp_path: Path) -> None:
    (tmp_path / "REPORT.PDF").write_bytes(_pdf(b"/S /GoTo /D [3 0 R /Fit] /JSX 1 /AAB 2"))
    report = scan_medium(tmp_path, ScanOptions(workers=1))
    (file,) = report.files
    assert "media.pdf-script" not in {x.check_id for x in file.findings}
