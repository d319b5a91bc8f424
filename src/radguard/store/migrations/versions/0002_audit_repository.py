"""Audit record repository: records (hash chained), search terms, alerts, counters.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-30

Written by hand to match ``radguard.store.models_audit`` at this revision; types are spelled out
here so this file keeps meaning the same schema when the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The audit models live in their own module; importing it registers their tables on the shared
# metadata, so that comparisons of models and migrations (tests/store) see them.
import radguard.store.models_audit  # noqa: F401

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", _id(), nullable=False, autoincrement=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("peer", sa.String(255), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("app_name", sa.String(64), nullable=True),
        sa.Column("msgid", sa.String(64), nullable=True),
        sa.Column("event_time", _ts(), nullable=True),
        sa.Column("source_id", sa.String(255), nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(1), nullable=True),
        sa.Column("outcome", sa.SmallInteger(), nullable=True),
        sa.Column("validity", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_records"),
    )
    for cols in (["received_at"], ["event_time"], ["event_id", "id"], ["source_id", "id"],
                 ["outcome", "id"], ["validity", "id"]):
        op.create_index(f"ix_audit_records_{'_'.join(cols)}", "audit_records", cols)

    op.create_table(
        "audit_terms",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("record_id", _id(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["audit_records.id"],
                                name="fk_audit_terms_record_id_audit_records",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("kind", "value", "record_id", name="pk_audit_terms"),
    )

    op.create_table(
        "audit_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("rule_version", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("fired_at", _ts(), nullable=False),
        sa.Column("event_time", _ts(), nullable=False),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("record_ids", _JSON, nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["finding_id"], ["findings.id"],
                                name="fk_audit_alerts_finding_id_findings", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_alerts"),
    )
    op.create_index("ix_audit_alerts_fired_at", "audit_alerts", ["fired_at"])
    op.create_index("ix_audit_alerts_rule_id_fired_at", "audit_alerts", ["rule_id", "fired_at"])

    op.create_table(
        "audit_counters",
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "name", name="pk_audit_counters"),
    )


def downgrade() -> None:
    op.drop_table("audit_counters")
    op.drop_index("ix_audit_alerts_rule_id_fired_at", table_name="audit_alerts")
    op.drop_index("ix_audit_alerts_fired_at", table_name="audit_alerts")
    op.drop_table("audit_alerts")
    op.drop_table("audit_terms")
    for cols in (["validity", "id"], ["outcome", "id"], ["source_id", "id"], ["event_id", "id"],
                 ["event_time"], ["received_at"]):
        op.drop_index(f"ix_audit_records_{'_'.join(cols)}", table_name="audit_records")
    op.drop_table("audit_records")
