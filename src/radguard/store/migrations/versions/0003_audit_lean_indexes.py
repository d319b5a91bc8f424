"""Audit repository: leaner write path (fewer index entries per stored record).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Measured in bench/results/audit.md: the indexes maintained per record were a third of the
writer's cost. This revision keeps every search of ``radguard audit search`` indexed and drops
what no search uses:

- ``ix_audit_records_source_id_id`` goes: node searches use ``audit_terms`` (kind ``node`` holds
  the AuditSourceID too), nothing filters on the column alone;
- ``outcome`` and ``validity`` are indexed only where they are rare (partial indexes: outcome not
  0, validity not ``valid``); the common values are found by walking ids newest first, which stops
  after ``limit`` rows, and :func:`radguard.audit.repository.search.build` states the index
  condition so that the planner may use the partial index;
- on SQLite ``audit_terms`` becomes a ``WITHOUT ROWID`` table: its primary key *is* the search
  index, so each term is one B-tree entry instead of two (table row + primary-key index). On
  PostgreSQL the table is unchanged (heap + primary key, as before).

Written by hand; types spelled out so that this file keeps meaning the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FAILED = "outcome <> 0"
_NOT_VALID = "validity <> 'valid'"


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _terms_table(name: str, *, with_rowid: bool) -> None:
    op.create_table(
        name,
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("record_id", _id(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["audit_records.id"],
                                name="fk_audit_terms_record_id_audit_records",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("kind", "value", "record_id", name="pk_audit_terms"),
        sqlite_with_rowid=with_rowid,
    )


def _rebuild_terms(with_rowid: bool) -> None:
    """SQLite cannot alter WITHOUT ROWID: build the new table, copy, swap."""
    _terms_table("audit_terms_new", with_rowid=with_rowid)
    op.execute("INSERT INTO audit_terms_new (kind, value, record_id) "
               "SELECT kind, value, record_id FROM audit_terms")
    op.drop_table("audit_terms")
    op.rename_table("audit_terms_new", "audit_terms")


def upgrade() -> None:
    op.drop_index("ix_audit_records_source_id_id", table_name="audit_records")
    op.drop_index("ix_audit_records_outcome_id", table_name="audit_records")
    op.drop_index("ix_audit_records_validity_id", table_name="audit_records")
    op.create_index("ix_audit_records_outcome_id", "audit_records", ["outcome", "id"],
                    sqlite_where=sa.text(_FAILED), postgresql_where=sa.text(_FAILED))
    op.create_index("ix_audit_records_validity_id", "audit_records", ["validity", "id"],
                    sqlite_where=sa.text(_NOT_VALID), postgresql_where=sa.text(_NOT_VALID))
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_terms(with_rowid=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_terms(with_rowid=True)
    op.drop_index("ix_audit_records_validity_id", table_name="audit_records")
    op.drop_index("ix_audit_records_outcome_id", table_name="audit_records")
    op.create_index("ix_audit_records_validity_id", "audit_records", ["validity", "id"])
    op.create_index("ix_audit_records_outcome_id", "audit_records", ["outcome", "id"])
    op.create_index("ix_audit_records_source_id_id", "audit_records", ["source_id", "id"])
