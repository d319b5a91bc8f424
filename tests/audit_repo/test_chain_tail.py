"""Removing the NEWEST records leaves a valid chain; ``audit verify`` still finds it: the ``stored``
counters (same transaction as the records) count more records than remain, and an anchor
(ID:HASH noted earlier outside the database) is no longer in the chain."""

from __future__ import annotations

import json

from tests.audit_repo.test_chain_cli import _db, _fill, _url, home  # noqa: F401  (fixture)
from typer.testing import CliRunner

from radguard.cli import app


def _verify(*extra: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, ["audit", "verify", "--format", "json", *extra])
    return result.exit_code, json.loads(result.stdout)


def test_removed_tail_is_found_by_the_counters(home) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ids = _fill(_url(home))
    code, report = _verify()
    assert code == 0 and report["head_id"] == ids[-1]
    with _db(home) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM audit_terms WHERE record_id >= ?", (ids[-2],))
        db.execute("DELETE FROM audit_records WHERE id >= ?", (ids[-2],))
    code, report = _verify()
    assert code == 1 and report["ok"] is False
    assert "2 record(s) counted as stored are missing" in str(report["problem"])


def test_removed_tail_is_found_by_the_anchor_even_with_counters_rewritten(home) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    ids = _fill(_url(home))
    code, report = _verify()
    anchor = f"{report['head_id']}:{report['head']}"
    assert _verify("--anchor", anchor)[0] == 0
    with _db(home) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DELETE FROM audit_terms WHERE record_id = ?", (ids[-1],))
        db.execute("DELETE FROM audit_records WHERE id = ?", (ids[-1],))
        db.execute("UPDATE audit_counters SET value = value - 1 WHERE name = 'stored'")
    assert _verify()[0] == 0  # a careful attacker fixed the counters too
    code, report = _verify("--anchor", anchor)
    assert code == 1 and f"anchored record {ids[-1]} is missing" in str(report["problem"])


def test_bad_anchor_syntax_is_a_clear_error(home) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _fill(_url(home))
    result = CliRunner().invoke(app, ["audit", "verify", "--anchor", "nonsense"])
    assert result.exit_code == 2
