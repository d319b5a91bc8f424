"""The shipped tables are generated from the standard's CSVs and nothing else; the public surface."""

from __future__ import annotations

import subprocess
import sys

import radguard.deid
from radguard.deid.tables import method_codes, profile_table, safe_private, table_versions
from tests.deid.table_source import ROOT, note_fallback, shared_dir, shipped_table


def test_generated_tables_match_the_standard_csvs() -> None:
    """With the standard's CSVs beside the clone, the generator's drift check passes; without
    them (bare clone, CI checkout) the shipped tables are checked for shape and a warning says the
    drift check did not run."""
    shared = shared_dir()
    if shared is None:
        note_fallback("generated-table drift check")
        data = shipped_table()
        rows = data["rows"]
        assert isinstance(rows, list) and len(rows) == 611
        assert len(str(data["source_sha256"])) == 64
        assert all(r["basic"] for r in rows)
        assert len(safe_private().entries) > 100
        return
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_deid_table.py"), "--check",
                           "--shared", str(shared)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_tables_load_with_versions() -> None:
    table = profile_table()
    assert table.lookup(0x00100010) is not None and table.lookup(0x00100010).basic == "Z"
    assert table.lookup(0x60023000) is not None  # (60xx,3000) range
    assert table.lookup(0x50100020) is not None  # (50xx,xxxx) range
    assert safe_private().is_safe("Philips PET Private Group", 0x70531000)
    assert not safe_private().is_safe("Philips PET Private Group", 0x70531077)
    assert method_codes()["retain-safe-private"][0] == "113111"
    assert set(table_versions()) == {"profile", "safe-private", "cid7050", "presets", "iod-types",
                                     "pixel-rules"}


def test_public_api_is_explicit() -> None:
    for name in radguard.deid.__all__:
        assert hasattr(radguard.deid, name), name
    assert {"DeidOptions", "deidentify_dataset", "deidentify_file", "verify_file"} <= set(
        radguard.deid.__all__)
