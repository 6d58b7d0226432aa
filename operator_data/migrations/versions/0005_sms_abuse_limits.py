"""Limits on abuse of the SMS channel: reply budgets per number and for the hub
(`reply_budgets`, hub/reply_budget.py), and escalating PIN lock-outs
(`customer_phones.lockouts`: each lock-out in a row lasts twice as long as the last).

Revision ID: 0005_sms_abuse_limits
Revises: 0004_helpdesk_item_transaction
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from operator_data.store.types import UTCDateTime

revision: str = "0005_sms_abuse_limits"
down_revision: str | None = "0004_helpdesk_item_transaction"
branch_labels: str | Sequence[str] | None = None  # continues the "hub_workflows" branch
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reply_budgets",
        sa.Column("msisdn", sa.String(16), primary_key=True),
        sa.Column("window_start", UTCDateTime(timezone=True), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("unregistered_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("reply_like_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "customer_phones",
        sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("customer_phones") as batch:
        batch.drop_column("lockouts")
    op.drop_table("reply_budgets")
