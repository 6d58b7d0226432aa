"""AP2T batch revisions: a changed re-export of a day is a new row (revision 2, 3, ...)
with its own file, checksum and delivery state, instead of a rewrite that forgot the
acknowledgement of the first. The primary key becomes (day, revision); existing rows are
revision 1, exported at their data cut.

Revision ID: 0003_ap2t_revisions
Revises: 0002_hub_reporting
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from operator_data.store.types import UTCDateTime

revision: str = "0003_ap2t_revisions"
down_revision: str | None = "0002_hub_reporting"
branch_labels: str | Sequence[str] | None = None  # continues the "hub_reporting" branch
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot change a primary key in place, so the table is
    # copied (recreate); PostgreSQL gets the plain ALTERs.
    with op.batch_alter_table("ap2t_batches") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("supersedes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("exported_at", UTCDateTime(timezone=True), nullable=True))
        batch.drop_constraint("pk_ap2t_batches", type_="primary")
        batch.create_primary_key("pk_ap2t_batches", ["day", "revision"])
    op.execute("UPDATE ap2t_batches SET exported_at = generated_at")
    with op.batch_alter_table("ap2t_batches") as batch:
        # The code always names the revision; the default was for the rows already there.
        batch.alter_column("revision", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    # Lossy by necessity: the old key holds one batch per day, so only revision 1 stays.
    op.execute("DELETE FROM ap2t_batches WHERE revision <> 1")
    with op.batch_alter_table("ap2t_batches") as batch:
        batch.drop_constraint("pk_ap2t_batches", type_="primary")
        batch.create_primary_key("pk_ap2t_batches", ["day"])
        batch.drop_column("exported_at")
        batch.drop_column("supersedes")
        batch.drop_column("revision")
