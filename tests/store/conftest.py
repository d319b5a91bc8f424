"""Fixtures of the store tests: real SQLite files in ``tmp_path`` and, when the server binaries and
a driver are installed, a throwaway PostgreSQL cluster on a private unix socket.

The PostgreSQL cluster needs the server binaries (``pg_ctl``, ``initdb``; Debian package
``postgresql``) and the ``psycopg`` driver (``psycopg[binary]`` as a test dependency). Without
either, the PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from radguard.findings import ControlRef, Evidence, Finding, Severity
from radguard.store import Store


def _pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


class PgCluster:
    """A PostgreSQL cluster in a private directory, reachable only on its unix socket."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # Short path: unix socket names are limited to ~107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="rgpg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; run the server as the postgres user.
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.root, ignore_errors=True)
                pytest.skip("running as root and there is no 'postgres' user to run the server")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        subprocess.run([*self._prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses='' -k {self.root} -p 5432 -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port=5432"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        name = f"radguard_test_{next(self._names)}"
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (pg_ctl, initdb) not installed; "
                    "apt-get install postgresql")
    pytest.importorskip(
        "psycopg", reason="the psycopg driver is not installed; add psycopg[binary] to the "
        "test dependencies to run the store on PostgreSQL"
    )
    cluster = PgCluster(bindir)
    try:
        cluster.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = cluster.log.read_text(errors="replace") if cluster.log.exists() else ""
        cluster.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL cluster: {exc}\n{log}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file in ``tmp_path``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'radguard.db'}"
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An open, migrated store on each backend."""
    with Store.open(db_url) as opened:
        yield opened


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'radguard.db'}"


def _make_finding(
    check_id: str = "media.preamble-executable",
    *,
    path: str = "DICOM/IMG0001",
    details: dict[str, object] | None = None,
    asset: str | None = "CD-0001",
    severity: Severity = Severity.HIGH,
    offset: int | None = 0,
) -> Finding:
    return Finding(
        check_id=check_id,
        severity=severity,
        message="The 128-byte preamble holds a Windows PE header.",
        evidence=Evidence(path=path, offset=offset, details=details or {"magic": "MZ"}),
        controls=(ControlRef("NIST-CSF-2.0", "DE.CM-09"), ControlRef("MITA-CSP1", "MLPS")),
        remedy="Sanitise the file (media sanitize) before import.",
        asset=asset,
    )


@pytest.fixture
def make_finding() -> Callable[..., Finding]:
    """A factory of realistic findings; keyword arguments override the defaults."""
    return _make_finding
