"""Opening, migrating, and the errors an operator sees (Store, migrate)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text

import radguard.store
from radguard.errors import StoreError
from radguard.store import Store, current_revision, head_revision, upgrade
from radguard.store.models import Scan


def test_public_surface_is_explicit() -> None:
    for name in radguard.store.__all__:
        assert hasattr(radguard.store, name), name


def test_open_creates_parent_dir_and_migrates_to_head(tmp_path: Path) -> None:
    # Given a URL whose directory does not exist yet
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'radguard.db'}"
    # When the store is opened
    with Store.open(url) as store:
        # Then the file exists and the schema is at the newest revision
        assert (tmp_path / "a" / "b" / "radguard.db").is_file()
        assert store.revision() == head_revision()
        assert head_revision() is not None
        assert store.dialect == "sqlite"


def test_open_twice_is_idempotent_and_keeps_data(db_url: str) -> None:
    with Store.open(db_url) as first, first.session() as session:
        session.add(Scan(kind="assess", subject="PACS1", status="done", operator="op",
                         station="st", summary={}, radguard_version="0",
                         started_at=datetime.now().astimezone()))
    with Store.open(db_url) as second, Store.open(db_url) as third:
        assert second.revision() == third.revision() == head_revision()
        with second.read_session() as session:
            assert session.execute(text("SELECT count(*) FROM scans")).scalar_one() == 1


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        for ctx in (store.session, store.read_session):
            with ctx() as session:
                assert session.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
                assert session.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
                assert session.execute(text("PRAGMA busy_timeout")).scalar_one() >= 1000


def test_read_session_refuses_writes(store: Store) -> None:
    with pytest.raises(StoreError) as info, store.read_session() as session:
        session.execute(text("DELETE FROM scans"))
    assert info.value.remedy


def test_session_rolls_back_when_the_block_raises(store: Store) -> None:
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(Scan(kind="assess", subject="x", status="done", operator="", station="",
                         summary={}, radguard_version="0",
                         started_at=datetime.now().astimezone()))
        session.flush()
        raise RuntimeError("boom")
    with store.read_session() as session:
        assert session.execute(text("SELECT count(*) FROM scans")).scalar_one() == 0


def test_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"), store.session() as session:
        session.add(Scan(kind="assess", subject="x", status="done", operator="", station="",
                         summary={}, radguard_version="0", started_at=datetime(2025, 1, 1)))


def test_open_without_migrate_leaves_schema_alone(sqlite_url: str) -> None:
    with Store.open(sqlite_url, migrate=False) as store:
        assert store.revision() is None
    assert current_revision(sqlite_url) is None
    upgrade(sqlite_url)
    assert current_revision(sqlite_url) == head_revision()


def test_closed_store_refuses_work(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"), store.session():
        pass


def test_parent_is_a_file_gives_store_error_with_remedy(tmp_path: Path) -> None:
    # Given a path whose "directory" is a regular file (fails even for root)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'radguard.db'}"
    # When / Then
    with pytest.raises(StoreError) as info:
        Store.open(url)
    err = info.value
    assert err.subject == url
    assert err.remedy and "writable" in err.remedy
    assert "Remedy:" in str(err)


def test_path_is_a_directory_gives_store_error(tmp_path: Path) -> None:
    (tmp_path / "radguard.db").mkdir()
    with pytest.raises(StoreError, match="is a directory") as info:
        Store.open(f"sqlite:///{tmp_path / 'radguard.db'}")
    assert info.value.remedy


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_gives_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError) as info:
            Store.open(f"sqlite:///{locked / 'radguard.db'}")
        assert info.value.remedy
    finally:
        locked.chmod(0o700)


def test_not_a_database_gives_store_error(tmp_path: Path) -> None:
    garbage = tmp_path / "radguard.db"
    garbage.write_bytes(b"MZ" + os.urandom(8192))
    with pytest.raises(StoreError, match="not a database") as info:
        Store.open(f"sqlite:///{garbage}")
    assert info.value.remedy and "not a RadGuard store" in info.value.remedy


def test_password_is_masked_in_errors() -> None:
    # Driver missing or server absent: either way the password must not appear.
    url = "postgresql+psycopg://radguard:s3cret-pw@127.0.0.1:1/radguard?connect_timeout=2"
    with pytest.raises(StoreError) as info:
        Store.open(url)
    assert "s3cret-pw" not in str(info.value)
    assert "***" in (info.value.subject or "")
    assert info.value.remedy


def test_bad_url_gives_store_error() -> None:
    with pytest.raises(StoreError, match="not a database URL") as info:
        Store.open("no such thing")
    assert info.value.remedy and "sqlite:///" in info.value.remedy


def test_concurrent_first_open_from_several_processes(tmp_path: Path) -> None:
    # Given a fresh location opened by four processes at once
    url = f"sqlite:///{tmp_path / 'radguard.db'}"
    code = (
        "import sys\n"
        "from radguard.store import Store\n"
        "Store.open(sys.argv[1]).close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(4)]
    # Then every one succeeds silently (the library never prints) and the schema is migrated once
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert (out, err) == (b"", b"")
    assert current_revision(url) == head_revision()
