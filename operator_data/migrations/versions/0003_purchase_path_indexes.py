"""Indexes for the purchase path, so that no lookup of a purchase reads a growing table end
to end (tests/operator_data/test_purchase_query_plans.py):

- transactions (phone_msisdn, created_at): BELI's duplicate check, this phone's purchases
  in the window (with created_at alone it read every phone's purchases in the window);
- outbox (available_at, lease_until) and (lease_until, available_at), replacing
  (priority, available_at): the claim seeks the due rows by time instead of walking every
  row in priority order (including all those waiting for a send result), and the
  dispatcher's next wake-up, min(available_at) of unleased rows and min(lease_until),
  reads one index entry each instead of the whole table.

Revision ID: 0003_purchase_path_indexes
Revises: 0002_hub_workflows
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_purchase_path_indexes"
down_revision: str | None = "0002_hub_workflows"
branch_labels: str | Sequence[str] | None = None  # continues the "hub_workflows" branch
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_transactions_phone_msisdn_created_at", "transactions", ["phone_msisdn", "created_at"]
    )
    op.create_index("ix_outbox_available_at_lease_until", "outbox", ["available_at", "lease_until"])
    op.create_index("ix_outbox_lease_until_available_at", "outbox", ["lease_until", "available_at"])
    op.drop_index("ix_outbox_claimable", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_claimable", "outbox", ["priority", "available_at"])
    op.drop_index("ix_outbox_lease_until_available_at", table_name="outbox")
    op.drop_index("ix_outbox_available_at_lease_until", table_name="outbox")
    op.drop_index("ix_transactions_phone_msisdn_created_at", table_name="transactions")
