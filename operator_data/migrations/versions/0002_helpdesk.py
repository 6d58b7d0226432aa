"""Helpdesk app: users, sessions, API keys; index for message search by flow.

Revision ID: 0002_helpdesk
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import operator_data.store.types

revision: str = "0002_helpdesk"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("helpdesk",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> operator_data.store.types.UTCDateTime:
    return operator_data.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_users",
        sa.Column("user_id", _ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_api_users")),
        sa.UniqueConstraint("username", name=op.f("uq_api_users_username")),
    )
    op.create_table(
        "api_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["api_users.user_id"], name=op.f("fk_api_sessions_user_id_api_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_api_sessions")),
    )
    op.create_index("ix_api_sessions_user_id", "api_sessions", ["user_id"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["api_users.user_id"], name=op.f("fk_api_keys_user_id_api_users")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_index("ix_messages_flow_created_at", "messages", ["flow", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_flow_created_at", table_name="messages")
    op.drop_index("ix_api_keys_user_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_api_sessions_user_id", table_name="api_sessions")
    op.drop_table("api_sessions")
    op.drop_table("api_users")
