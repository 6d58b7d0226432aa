"""Hub workflows: P2APST purchase journal, token-report outbox, token deliveries.

Revision ID: 0002_hub_workflows
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import operator_data.store.types

revision: str = "0002_hub_workflows"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("hub_workflows",)
depends_on: str | Sequence[str] | None = None


def _utc() -> operator_data.store.types.UTCDateTime:
    return operator_data.store.types.UTCDateTime(timezone=True)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hub_purchases",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("stan", sa.String(length=12), nullable=False),
        sa.Column("sent_at", _utc(), nullable=False),
        sa.Column("result_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("result_master_id", sa.String(length=32), nullable=True),
        sa.Column("completed_at", _utc(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hub_purchases")),
    )
    op.create_index("ix_hub_purchases_completed_at", "hub_purchases", ["completed_at"])
    op.create_table(
        "hub_reports",
        sa.Column("report_id", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=26), nullable=True),
        sa.Column("report_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("master_id", sa.String(length=32), nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("acknowledged_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_hub_reports")),
    )
    op.create_index("ix_hub_reports_acknowledged", "hub_reports", ["acknowledged", "created_at"])
    op.create_table(
        "hub_deliveries",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(length=26), nullable=False),
        sa.Column("meter_number", sa.String(length=11), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_check_at", _utc(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("last_frame_message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hub_deliveries")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_hub_deliveries_transaction_id")),
    )
    op.create_index("ix_hub_deliveries_next_check_at", "hub_deliveries", ["next_check_at"])
    op.create_index("ix_hub_deliveries_meter_number", "hub_deliveries", ["meter_number"])


def downgrade() -> None:
    op.drop_index("ix_hub_deliveries_meter_number", table_name="hub_deliveries")
    op.drop_index("ix_hub_deliveries_next_check_at", table_name="hub_deliveries")
    op.drop_table("hub_deliveries")
    op.drop_index("ix_hub_reports_acknowledged", table_name="hub_reports")
    op.drop_table("hub_reports")
    op.drop_index("ix_hub_purchases_completed_at", table_name="hub_purchases")
    op.drop_table("hub_purchases")
