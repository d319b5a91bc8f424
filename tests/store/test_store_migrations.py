"""The packaged migrations and the models describe the same schema, on every backend."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from radguard.store import Store, current_revision, head_revision
from radguard.store.migrate import alembic_config
from radguard.store.models import Base


def test_models_and_migrations_agree(db_url: str) -> None:
    # Given a database built only by the migrations
    with Store.open(db_url) as store, store.engine.connect() as conn:
        # When Alembic compares it with the models
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    # Then there is nothing to migrate
    assert diff == []


def test_every_model_table_is_created(db_url: str) -> None:
    with Store.open(db_url) as store:
        tables = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_downgrade_to_base_and_upgrade_again(db_url: str) -> None:
    with Store.open(db_url) as store:
        with store.engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "base")
        assert current_revision(store.engine) is None
        assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    with Store.open(db_url) as store:
        assert store.revision() == head_revision()
