"""The :class:`Store`: an open database, its writer and reader sessions.

SQLite is the default (one file in the data directory); any SQLAlchemy URL is accepted and
PostgreSQL runs through the same models and migrations. Transactions are short: open a session, do
the work, leave the block. Errors from SQLAlchemy, the driver or the file system become
:class:`~radguard.errors.StoreError` naming the URL (password masked) and a remedy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from radguard.errors import StoreError
from radguard.store._engine import (
    is_memory_sqlite,
    make_engine,
    mask_url,
    parse_url,
    prepare_sqlite_dir,
    translate,
)
from radguard.store.migrate import current_revision, upgrade_engine

__all__ = ["Store"]


class Store:
    """An open RadGuard store. Create it with :meth:`Store.open`; close it with :meth:`close`
    (or use it as a context manager).

    A store may be shared by the threads of one process; each session belongs to one thread.
    """

    def __init__(self, url: URL, writer: Engine, reader: Engine) -> None:
        self._url = url
        self._writer = writer
        self._reader = reader
        self._writer_sessions = sessionmaker(bind=writer, expire_on_commit=False)
        self._reader_sessions = sessionmaker(bind=reader, expire_on_commit=False)
        self._closed = False

    @classmethod
    def open(cls, url: str | URL, *, migrate: bool = True) -> Store:
        """Open the store at ``url``.

        Parameters
        ----------
        url:
            A SQLAlchemy URL, e.g. ``Settings.db_url`` (``sqlite:////home/x/.local/share/radguard/
            radguard.db``) or ``postgresql+psycopg://user:password@host/radguard``.
        migrate:
            Bring the schema to the newest revision (``alembic upgrade head``) before returning.
            Without it the schema is used as found (see :meth:`revision`).

        Returns
        -------
        Store
            Connected (the database was reached once) and, with ``migrate``, at the newest schema.

        Raises
        ------
        StoreError
            Bad URL, missing driver, directory not creatable, database unreachable or not a
            database, migration failed. The message names the URL with the password masked.

        Notes
        -----
        For a SQLite file the parent directory is created, and connections run with WAL,
        ``busy_timeout`` and ``foreign_keys`` (see :mod:`radguard.store._engine`). Opening twice,
        or from two processes at once, is safe: migrations are idempotent and serialised.
        """
        parsed = parse_url(url)
        prepare_sqlite_dir(parsed)
        writer = make_engine(parsed)
        shared_reader = is_memory_sqlite(parsed) or parsed.get_backend_name() != "sqlite"
        reader = writer if shared_reader else make_engine(parsed, reader=True)
        try:
            if migrate:
                upgrade_engine(writer)
            else:
                with writer.connect():
                    pass
        except (SQLAlchemyError, OSError) as exc:
            cls._dispose(writer, reader)
            raise translate(exc, parsed, "open") from exc
        except BaseException:
            cls._dispose(writer, reader)
            raise
        return cls(parsed, writer, reader)

    @staticmethod
    def _dispose(writer: Engine, reader: Engine) -> None:
        writer.dispose()
        if reader is not writer:
            reader.dispose()

    @property
    def url(self) -> str:
        """The store's URL with the password masked; fit for messages and logs."""
        return mask_url(self._url)

    @property
    def dialect(self) -> str:
        """The backend's name: ``sqlite``, ``postgresql``..."""
        return self._writer.dialect.name

    @property
    def engine(self) -> Engine:
        """The writer engine, for migrations and tooling; prefer :meth:`session`."""
        self._check_open()
        return self._writer

    def revision(self) -> str | None:
        """The schema revision of the database (``None`` if it was never migrated)."""
        self._check_open()
        return current_revision(self._writer)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed", subject=self.url,
                             remedy="open it again with Store.open()")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A writer session in one transaction: committed when the block ends, rolled back if it
        raises.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``: other writers wait (up to the
        busy timeout) rather than fail mid-way. Keep the block short.

        Raises
        ------
        StoreError
            The database refused the transaction (locked, full, constraint violated...). Other
            exceptions raised in the block propagate unchanged after the rollback.
        """
        self._check_open()
        try:
            with self._writer_sessions.begin() as session:
                yield session
        except (SQLAlchemyError, OSError) as exc:
            raise translate(exc, self._url, "write to") from exc

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only session for queries; never commits.

        SQLite files use a separate ``query_only`` engine (readers do not block the writer in WAL
        mode); PostgreSQL runs the transaction ``READ ONLY``. An in-memory SQLite database shares
        the writer's single connection.

        Raises
        ------
        StoreError
            The query failed (including an attempt to write).
        """
        self._check_open()
        try:
            with self._reader_sessions() as session:
                try:
                    if self.dialect == "postgresql":
                        session.execute(text("SET TRANSACTION READ ONLY"))
                    yield session
                finally:
                    session.rollback()
        except (SQLAlchemyError, OSError) as exc:
            raise translate(exc, self._url, "read") from exc

    def close(self) -> None:
        """Release every connection. Idempotent; the store cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._dispose(self._writer, self._reader)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Store {self.url} ({state})>"
