"""Alembic environment of the RadGuard store.

Run programmatically by :mod:`radguard.store.migrate`, which passes an open connection (already in
a transaction) in ``config.attributes["connection"]``; no ``alembic.ini`` is needed. For a developer
writing a new revision, ``sqlalchemy.url`` in the config is used instead (see
:func:`radguard.store.migrate.alembic_config`). Nothing here configures logging: the library never
prints.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from radguard.store._engine import make_engine
from radguard.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url given to the migration environment")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("RadGuard migrations run online only; give a database URL")
run_migrations_online()
