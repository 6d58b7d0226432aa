"""The incident queue: the helpdesk's trail on each hub-opened item
(`helpdesk_item_events`: assign, note, resolve, reopen, link) and the links from an item
to what caused it (`helpdesk_item_links`: message, alarm, transaction, meter), and an index on
`helpdesk_items.opened_at` for the queue's all-states listing.

Its own branch: the queue is an area of its own, and only needs `helpdesk_items` (0001).

Revision ID: 0002_helpdesk_incidents
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import operator_data.store.types

revision: str = "0002_helpdesk_incidents"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("helpdesk_incidents",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> operator_data.store.types.UTCDateTime:
    return operator_data.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_helpdesk_items_opened_at", "helpdesk_items", ["opened_at"])
    op.create_table(
        "helpdesk_item_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["helpdesk_items.id"],
            name=op.f("fk_helpdesk_item_events_item_id_helpdesk_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_item_events")),
    )
    op.create_index("ix_helpdesk_item_events_item_id_at", "helpdesk_item_events", ["item_id", "at"])
    op.create_table(
        "helpdesk_item_links",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=26), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["helpdesk_items.id"],
            name=op.f("fk_helpdesk_item_links_item_id_helpdesk_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_helpdesk_item_links")),
        sa.UniqueConstraint(
            "item_id", "kind", "ref", name="uq_helpdesk_item_links_item_id_kind_ref"
        ),
    )


def downgrade() -> None:
    op.drop_table("helpdesk_item_links")
    op.drop_index("ix_helpdesk_item_events_item_id_at", table_name="helpdesk_item_events")
    op.drop_table("helpdesk_item_events")
    op.drop_index("ix_helpdesk_items_opened_at", table_name="helpdesk_items")
