"""Tables of the helpdesk app: users, browser sessions and machine API keys.

Registered on the shared `schema.metadata` (migration 0002_helpdesk creates them;
0003_helpdesk_login_lockout adds the login lock-out columns and `api_unknown_logins`).
Secrets are never stored: passwords as scrypt hashes, session tokens and API keys as
SHA-256 digests (they are 256-bit random values, so a fast hash cannot be brute-forced).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table

from operator_data.store.schema import messages, metadata
from operator_data.store.types import BigId, UTCDateTime

api_users = Table(
    "api_users",
    metadata,
    Column("user_id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # helpdesk | supervisor | admin
    Column("password_hash", String(200), nullable=False),  # scrypt, see crypto/pins.py
    Column("active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Login lock-out (auth.LoginGuard): attempts since the last success or lock, and until
    # when the username is refused without a password check.
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime, nullable=True),
)

# The same counter for usernames that do not exist, so that they lock exactly like real
# ones and the login page cannot be used to find out which usernames exist (see auth.py).
# Keyed by the SHA-256 of the name as typed: a fixed-size key, and no further copy of
# what people type there (now and then a password by mistake).
api_unknown_logins = Table(
    "api_unknown_logins",
    metadata,
    Column("username_hash", String(64), primary_key=True),
    Column("failed_logins", Integer, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
)

api_sessions = Table(
    "api_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # sha256 hex of the cookie value
    Column("user_id", BigId, ForeignKey("api_users.user_id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
Index("ix_api_sessions_user_id", api_sessions.c.user_id)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),  # public part of the key
    Column("key_hash", String(64), nullable=False),  # sha256 hex of the whole key
    Column("user_id", BigId, ForeignKey("api_users.user_id"), nullable=False),
    Column("label", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)
Index("ix_api_keys_user_id", api_keys.c.user_id)

# The message search filters by flow within a time range ("every meter_to_hub SMS
# yesterday"); without this index that query scans the whole created_at range.
Index("ix_messages_flow_created_at", messages.c.flow, messages.c.created_at)

TABLES = (api_users, api_unknown_logins, api_sessions, api_keys)

# The incident queue's tables live in their own module; importing it here registers them
# on `schema.metadata` wherever the helpdesk tables are (see operator_data/store/__init__.py).
import operator_data.api.incident_tables  # noqa: E402, F401
