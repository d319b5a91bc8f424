"""Schema migrations of the store, run programmatically (no ``alembic.ini`` at run time).

The migration scripts ship inside the package (``radguard/store/migrations``). :func:`upgrade` runs
every pending revision in one transaction, under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory
lock on PostgreSQL) so that two processes opening a fresh store at once do not both create it.

A developer adding a revision::

    from alembic import command
    from radguard.store.migrate import alembic_config
    command.revision(alembic_config("sqlite:////tmp/dev.db"), message="...", autogenerate=True)

then reviews the generated file, names its revision id like the others (``0002``...) and runs
``tests/store``, which checks that models and migrations agree.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from radguard.errors import StoreError
from radguard.store._engine import make_engine, mask_url, parse_url, prepare_sqlite_dir, translate

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
    "upgrade_engine",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
"""Where the Alembic environment and revision scripts live."""

_PG_LOCK_ID = 0x52616447  # "RadG": advisory lock serialising migrations on PostgreSQL


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """Build the Alembic configuration for the packaged migrations.

    Parameters
    ----------
    url:
        Database URL for Alembic commands run without a connection (developer use).
    connection:
        An open connection, already in a transaction, that the migration environment uses.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = parse_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision the packaged migrations know."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StoreError("no migration scripts found", subject=str(MIGRATIONS_DIR),
                         remedy="reinstall RadGuard")
    return head


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` (default: the newest).

    Idempotent: a database already at ``revision`` is left alone.

    Raises
    ------
    StoreError
        The database cannot be reached, a migration failed (nothing of it is kept), or the
        database carries a revision this RadGuard does not know (it was written by a newer one).
    """
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_ID})
            command.upgrade(alembic_config(connection=conn), revision)
    except CommandError as exc:
        raise StoreError(
            f"cannot migrate the store: {exc}",
            subject=mask_url(engine.url),
            remedy="the database may have been written by a newer RadGuard; upgrade RadGuard or "
            "point database_url at another database",
        ) from exc
    except (SQLAlchemyError, OSError) as exc:
        raise translate(exc, engine.url, "migrate") from exc


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest).

    Creates the parent directory of a SQLite file. See :func:`upgrade_engine` for errors.
    """
    parsed = parse_url(url)
    prepare_sqlite_dir(parsed)
    engine = make_engine(parsed)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(url: str | URL | Engine) -> str | None:
    """The revision the database at ``url`` is at, or ``None`` for a database never migrated.

    Raises
    ------
    StoreError
        The database cannot be reached.
    """
    if isinstance(url, Engine):
        engine, owned = url, False
    else:
        engine, owned = make_engine(url), True
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except (SQLAlchemyError, OSError) as exc:
        raise translate(exc, engine.url, "read the revision of") from exc
    finally:
        if owned:
            engine.dispose()
