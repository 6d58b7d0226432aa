"""Helpdesk login lock-out: failed-login counter and lock on api_users, the same for
usernames that do not exist (api_unknown_logins).

Revision ID: 0003_helpdesk_login_lockout
Revises: 0002_helpdesk
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import operator_data.store.types

revision: str = "0003_helpdesk_login_lockout"
down_revision: str | None = "0002_helpdesk"
branch_labels: str | Sequence[str] | None = None  # continues the "helpdesk" branch
depends_on: str | Sequence[str] | None = None


def _utc() -> operator_data.store.types.UTCDateTime:
    return operator_data.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    # A literal server default keeps this a plain ALTER TABLE ADD COLUMN on SQLite too
    # (no table copy) and fills the existing users' rows with 0.
    with op.batch_alter_table("api_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("locked_until", _utc(), nullable=True))
    op.create_table(
        "api_unknown_logins",
        sa.Column("username_hash", sa.String(length=64), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("username_hash", name=op.f("pk_api_unknown_logins")),
    )


def downgrade() -> None:
    op.drop_table("api_unknown_logins")
    # Not batch mode: on SQLite that copies api_users and drops the original, which
    # api_sessions and api_keys reference (foreign keys are enforced), so it fails as soon
    # as anyone has a session. SQLite >= 3.35 and PostgreSQL drop a plain column in place.
    op.drop_column("api_users", "locked_until")
    op.drop_column("api_users", "failed_logins")
