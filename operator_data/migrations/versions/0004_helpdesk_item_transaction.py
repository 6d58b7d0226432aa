"""helpdesk_items.transaction_id: an incident names the purchase it is about, so the sweep
that flags stuck purchases and unacknowledged reports opens one item per purchase, not
one per sweep (and the helpdesk can go from the item to the purchase).

Revision ID: 0004_helpdesk_item_transaction
Revises: 0003_purchase_path_indexes
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_helpdesk_item_transaction"
down_revision: str | None = "0003_purchase_path_indexes"
branch_labels: str | Sequence[str] | None = None  # continues the "hub_workflows" branch
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("helpdesk_items", sa.Column("transaction_id", sa.String(26), nullable=True))
    op.create_index("ix_helpdesk_items_transaction_id", "helpdesk_items", ["transaction_id"])


def downgrade() -> None:
    op.drop_index("ix_helpdesk_items_transaction_id", table_name="helpdesk_items")
    with op.batch_alter_table("helpdesk_items") as batch:
        batch.drop_column("transaction_id")
