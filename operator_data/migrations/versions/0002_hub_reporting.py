"""Hub reporting: the AP2T daily batch ledger (SLA and late-data corrections use it).

Revision ID: 0002_hub_reporting
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import operator_data.store.types

revision: str = "0002_hub_reporting"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("hub_reporting",)
depends_on: str | Sequence[str] | None = None


def _utc() -> operator_data.store.types.UTCDateTime:
    return operator_data.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ap2t_batches",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("generated_at", _utc(), nullable=False),
        sa.Column("file", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("corrections", sa.Integer(), nullable=False),
        sa.Column("acknowledged_at", _utc(), nullable=True),
        sa.Column("receipt", sa.String(length=128), nullable=True),
        sa.Column("delivery", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_ap2t_batches")),
    )
    with op.batch_alter_table("ap2t_batches", schema=None) as batch_op:
        batch_op.create_index("ix_ap2t_batches_acknowledged_at", ["acknowledged_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ap2t_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_ap2t_batches_acknowledged_at")
    op.drop_table("ap2t_batches")
