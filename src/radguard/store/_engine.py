"""Engines for the store, and the one place where database errors become :class:`StoreError`.

SQLite discipline (after Datasette): every connection runs with ``journal_mode=WAL``,
``busy_timeout`` and ``foreign_keys=ON``; the writer opens its transactions with ``BEGIN IMMEDIATE``
so that concurrent writers queue on the busy timeout instead of failing half-way through a
transaction; readers get their own engine whose connections are ``query_only``. pysqlite's own
transaction handling is switched off (``isolation_level = None``) so that DDL is transactional too,
which lets a migration run as one all-or-nothing transaction.

Any other SQLAlchemy URL (``postgresql+psycopg://...``) is used as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from radguard.errors import StoreError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "is_memory_sqlite",
    "make_engine",
    "mask_url",
    "parse_url",
    "prepare_sqlite_dir",
    "translate",
]

BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite connection waits for another writer's lock before giving up."""


def mask_url(url: str | URL) -> str:
    """Return ``url`` fit for a message or a log: the password, if any, replaced by ``***``."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "<unparsable database URL>"
    return parsed.render_as_string(hide_password=True)


def parse_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL.

    Raises
    ------
    StoreError
        ``url`` is not a SQLAlchemy URL.
    """
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            "not a database URL",
            subject=mask_url(url),
            remedy="give a SQLAlchemy URL such as sqlite:////var/lib/radguard/radguard.db or "
            "postgresql+psycopg://user:password@host/radguard (setting database_url)",
        ) from exc


def is_memory_sqlite(url: URL) -> bool:
    """True for an in-memory SQLite database (``sqlite://`` or ``sqlite:///:memory:``)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    if str(url.query.get("uri", "")).lower() in {"1", "true"} or str(url.database).startswith(
        "file:"
    ):
        return None  # a sqlite URI: its path syntax is SQLite's business
    return Path(str(url.database))


def prepare_sqlite_dir(url: URL) -> None:
    """Create the parent directory of a SQLite file (mode 0700 for a new leaf directory).

    Raises
    ------
    StoreError
        The directory cannot be created (a file is in the way, no permission, read-only medium).
    """
    path = _sqlite_file(url)
    if path is None:
        return
    parent = path.expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory {str(parent)!r} for the SQLite store: "
            f"{exc.strerror or exc}",
            subject=mask_url(url),
            remedy="choose a writable data directory (RADGUARD_HOME) or set database_url "
            "(RADGUARD_DATABASE_URL) to a writable location",
        ) from exc
    if path.exists() and path.is_dir():
        raise StoreError(
            f"the SQLite store path {str(path)!r} is a directory",
            subject=mask_url(url),
            remedy="point database_url at a file name, e.g. sqlite:///<dir>/radguard.db",
        )


def _install_sqlite_hooks(engine: Engine, *, reader: bool) -> None:
    begin = "BEGIN" if reader else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not reader:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
            else:
                cursor.execute("PRAGMA query_only = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def make_engine(url: str | URL, *, reader: bool = False) -> Engine:
    """Create an engine for ``url`` with RadGuard's connection settings.

    Parameters
    ----------
    url:
        Any SQLAlchemy URL.
    reader:
        For SQLite files, a read-only (``query_only``) engine with deferred transactions.
        Ignored for other databases, where read-only-ness is set per transaction.

    Raises
    ------
    StoreError
        The URL cannot be parsed or its database driver is not installed.
    """
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {}
    if is_memory_sqlite(parsed):
        # One shared connection, or every checkout would see a new empty database.
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    try:
        engine = create_engine(parsed, **kwargs)
    except ImportError as exc:
        raise StoreError(
            f"the database driver for {parsed.drivername!r} is not installed ({exc.name})",
            subject=mask_url(parsed),
            remedy="install the driver the URL names, e.g. 'pip install psycopg[binary]' for "
            "postgresql+psycopg://",
        ) from exc
    except ArgumentError as exc:
        raise StoreError(
            f"unsupported database URL: {exc}",
            subject=mask_url(parsed),
            remedy="use sqlite:///<path> or postgresql+psycopg://user:password@host/db",
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine, reader=reader)
    return engine


_SQLITE_REMEDIES: tuple[tuple[str, str], ...] = (
    ("unable to open database file",
     "check that the directory exists and this user may write to it, or set database_url "
     "(RADGUARD_DATABASE_URL) to a writable location"),
    ("readonly database",
     "check that this user may write the database file and its directory (WAL needs both)"),
    ("database is locked",
     "another RadGuard process is writing; wait for it to finish and retry"),
    ("file is not a database",
     "the file is not a RadGuard store; move it aside or point database_url elsewhere"),
    ("malformed",
     "the database file is damaged; restore it from a backup or move it aside"),
    ("disk i/o error", "check the disk and the free space of the data directory"),
    ("database or disk is full", "free space in the data directory"),
)

_SERVER_REMEDIES: tuple[tuple[str, str], ...] = (
    ("password authentication failed", "check the user name and password in database_url"),
    ("does not exist", "create the database and role first (createdb / createuser), or fix the "
     "database name in database_url"),
    ("connection refused", "check that the database server is running and that the host and port "
     "in database_url are right"),
    ("could not connect", "check that the database server is running and reachable"),
    ("no such file or directory", "check that the database server is running and that the socket "
     "directory in database_url is right"),
    ("timeout", "the server did not answer in time; check the network and the server's load"),
)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def translate(exc: BaseException, url: str | URL, doing: str) -> StoreError:
    """Translate a SQLAlchemy, Alembic or OS error into a :class:`StoreError`.

    Parameters
    ----------
    exc:
        The error caught at the store's boundary.
    url:
        The database URL (masked before it is put in the message).
    doing:
        What the store was doing, as a verb phrase: ``"open"``, ``"migrate"``, ``"write to"``.

    Returns
    -------
    StoreError
        With ``subject`` the masked URL and a remedy where one is known; raise it ``from exc``.
    """
    if isinstance(exc, StoreError):
        return exc
    masked = mask_url(url)
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        detail = _first_line(str(exc.orig))
    elif isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
    else:
        detail = _first_line(str(exc))
    lowered = detail.lower()
    is_sqlite = masked.startswith("sqlite")
    remedy = None
    for needle, advice in _SQLITE_REMEDIES if is_sqlite else _SERVER_REMEDIES:
        if needle in lowered:
            remedy = advice
            break
    if remedy is None:
        if isinstance(exc, SQLAlchemyError) and not isinstance(exc, DBAPIError):
            remedy = "this looks like a RadGuard bug; please report it with the command you ran"
        else:
            remedy = "check database_url (RADGUARD_DATABASE_URL) and that the database is reachable"
    return StoreError(f"cannot {doing} the store: {detail}", subject=masked, remedy=remedy)
