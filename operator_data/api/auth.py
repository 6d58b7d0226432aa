"""Users, roles, browser sessions and machine API keys.

Passwords are scrypt-hashed with the same parameters as customer PINs
(operator_data/crypto/pins.py). Session tokens and API keys are 256-bit random values;
only their SHA-256 digests are stored, so a leaked database yields no usable credential.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.tables import api_keys, api_sessions, api_users
from operator_data.crypto.pins import hash_pin, verify_pin
from operator_data.store.engine import Store
from operator_data.store.types import utcnow

SESSION_LIFETIME = timedelta(hours=12)
API_KEY_PREFIX = "pk_"
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")
# Verified against when the user does not exist, so a wrong username costs as much time
# as a wrong password (no user enumeration by timing).
_DUMMY_HASH = hash_pin("not-a-real-password")


class Role(StrEnum):
    HELPDESK = "helpdesk"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """Roles are ordered: a supervisor can do what helpdesk can, admin everything."""
        return self.rank >= needed.rank


_RANK = {Role.HELPDESK: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}


class AuthError(ValueError):
    """Bad user input for user management (the message says which field)."""


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    role: Role
    active: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> User:
        m = row._mapping
        return cls(
            user_id=m["user_id"],
            username=m["username"],
            role=Role(m["role"]),
            active=bool(m["active"]),
            created_at=m["created_at"],
        )


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user through a browser session or an API key."""

    user: User
    via: str  # "session" | "api_key"
    session_token: str | None = None

    @property
    def name(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    def csrf_token(self) -> str:
        """Form token bound to the session; a cross-site page cannot know the session."""
        if self.session_token is None:
            return ""
        return hashlib.sha256(b"csrf:" + self.session_token.encode()).hexdigest()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise AuthError("username must be 2-64 of a-z 0-9 . _ - starting with a letter")
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH or len(password) > 256:
        raise AuthError(f"password must be {MIN_PASSWORD_LENGTH}-256 characters")
    return password


class Accounts:
    """User management and credential checks over the Store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create_user(self, username: str, role: Role, password: str) -> User:
        check_username(username)
        check_password(password)
        hashed = await asyncio.to_thread(hash_pin, password)  # scrypt: deliberately slow
        now = utcnow()
        try:
            async with self._store.begin() as conn:
                result = await conn.execute(
                    insert(api_users)
                    .values(
                        username=username,
                        role=role.value,
                        password_hash=hashed,
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(api_users.c.user_id)
                )
                user_id = int(result.scalar_one())
                return await self._user(conn, user_id)
        except IntegrityError:
            raise AuthError(f"user {username!r} already exists") from None

    async def _user(self, conn: AsyncConnection, user_id: int) -> User:
        row = (await conn.execute(select(api_users).where(api_users.c.user_id == user_id))).one()
        return User.from_row(row)

    async def list_users(self) -> list[User]:
        async with self._store.read() as conn:
            rows = await conn.execute(select(api_users).order_by(api_users.c.username))
            return [User.from_row(r) for r in rows]

    async def set_active(self, username: str, active: bool) -> User | None:
        async with self._store.begin() as conn:
            row = (
                await conn.execute(
                    update(api_users)
                    .where(api_users.c.username == username)
                    .values(active=active, updated_at=utcnow())
                    .returning(api_users.c.user_id)
                )
            ).first()
            if row is None:
                return None
            if not active:
                await conn.execute(delete(api_sessions).where(api_sessions.c.user_id == row[0]))
            return await self._user(conn, int(row[0]))

    async def authenticate(self, username: str, password: str) -> User | None:
        async with self._store.read() as conn:
            row = (
                await conn.execute(select(api_users).where(api_users.c.username == username))
            ).first()
        stored = _DUMMY_HASH if row is None else row.password_hash
        good = await asyncio.to_thread(verify_pin, password, stored)
        if row is None or not good or not row.active:
            return None
        return User.from_row(row)

    async def open_session(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._store.begin() as conn:
            await conn.execute(
                insert(api_sessions).values(
                    token_hash=digest(token),
                    user_id=user.user_id,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        return token

    async def close_session(self, token: str) -> None:
        async with self._store.begin() as conn:
            await conn.execute(
                delete(api_sessions).where(api_sessions.c.token_hash == digest(token))
            )

    async def by_session(self, token: str) -> Principal | None:
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    select(api_users, api_sessions.c.expires_at)
                    .join(api_sessions, api_sessions.c.user_id == api_users.c.user_id)
                    .where(api_sessions.c.token_hash == digest(token))
                )
            ).first()
        if row is None or not row.active or row.expires_at <= utcnow():
            return None
        return Principal(User.from_row(row), "session", token)

    async def create_api_key(self, user: User, label: str) -> str:
        """A new key `pk_<id>_<secret>`; shown once, stored only as a digest."""
        key_id = secrets.token_hex(8)
        key = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        async with self._store.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    key_id=key_id,
                    key_hash=digest(key),
                    user_id=user.user_id,
                    label=label[:100],
                    created_at=utcnow(),
                )
            )
        return key

    async def by_api_key(self, key: str) -> Principal | None:
        parts = key.split("_")
        if len(parts) < 3 or not key.startswith(API_KEY_PREFIX):
            return None
        key_id = parts[1]
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    select(api_users, api_keys.c.key_hash, api_keys.c.revoked_at)
                    .join(api_keys, api_keys.c.user_id == api_users.c.user_id)
                    .where(api_keys.c.key_id == key_id)
                )
            ).first()
        if row is None or row.revoked_at is not None or not row.active:
            return None
        if not hmac.compare_digest(row.key_hash, digest(key)):
            return None
        return Principal(User.from_row(row), "api_key")

    async def user_by_name(self, username: str) -> User | None:
        async with self._store.read() as conn:
            row = (
                await conn.execute(select(api_users).where(api_users.c.username == username))
            ).first()
        return None if row is None else User.from_row(row)
