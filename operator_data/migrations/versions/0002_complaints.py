"""Complaints (pengaduan): `complaints` (one row per customer report, by call or by the
ADUAN SMS, with its ticket, category, third-party flag and resolution), its trail
`complaint_events` (open, assign, note, link, third_party, resolve, reopen) and its links
to transactions and messages (`complaint_links`).

Its own branch: complaints are an area of their own and reference nothing by foreign key
outside themselves (operator_data/complaints/tables.py says why).

Revision ID: 0002_complaints
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from operator_data.store.types import UTCDateTime

revision: str = "0002_complaints"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("complaints",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> UTCDateTime:
    return UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("ticket", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=12), nullable=True),
        sa.Column("meter_number", sa.String(length=11), nullable=True),
        sa.Column("msisdn", sa.String(length=16), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column("third_party", sa.Boolean(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=True),
        sa.Column("resolution_code", sa.String(length=16), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("source_message_id", sa.String(length=26), nullable=True),
        sa.CheckConstraint(
            "state IN ('open', 'assigned', 'resolved')", name=op.f("ck_complaints_state")
        ),
        sa.CheckConstraint(
            "channel IN ('call', 'sms', 'other')", name=op.f("ck_complaints_channel")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("ticket", name=op.f("uq_complaints_ticket")),
        sa.UniqueConstraint("source_message_id", name=op.f("uq_complaints_source_message_id")),
    )
    op.create_index("ix_complaints_received_at", "complaints", ["received_at"])
    op.create_index("ix_complaints_state_received_at", "complaints", ["state", "received_at"])
    op.create_index("ix_complaints_customer_id", "complaints", ["customer_id"])
    op.create_index("ix_complaints_meter_number", "complaints", ["meter_number"])
    op.create_index("ix_complaints_msisdn", "complaints", ["msisdn"])
    op.create_table(
        "complaint_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("complaint_id", sa.String(length=26), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assigned_to", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_events_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_events")),
    )
    op.create_index(
        "ix_complaint_events_complaint_id_at", "complaint_events", ["complaint_id", "at"]
    )
    op.create_table(
        "complaint_links",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("complaint_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=26), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_links_complaint_id_complaints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_links")),
        sa.UniqueConstraint(
            "complaint_id", "kind", "ref", name=op.f("uq_complaint_links_complaint_id_kind_ref")
        ),
    )


def downgrade() -> None:
    op.drop_table("complaint_links")
    op.drop_index("ix_complaint_events_complaint_id_at", table_name="complaint_events")
    op.drop_table("complaint_events")
    for name in (
        "ix_complaints_msisdn",
        "ix_complaints_meter_number",
        "ix_complaints_customer_id",
        "ix_complaints_state_received_at",
        "ix_complaints_received_at",
    ):
        op.drop_index(name, table_name="complaints")
    op.drop_table("complaints")
