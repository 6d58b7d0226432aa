"""Users, roles, browser sessions, machine API keys, and login throttling.

Passwords are scrypt-hashed with the same parameters as customer PINs
(operator_data/crypto/pins.py). Session tokens and API keys are 256-bit random values;
only their SHA-256 digests are stored, so a leaked database yields no usable credential.

Login throttling (`LoginGuard`, behind the login form) has three limits, all applied
before any scrypt work, so a refused attempt costs a few indexed reads and an audit row:

* Per (username, client address), in the database (shared by every worker, kept over
  restarts), in the style of the customer PIN lock-out: after `web.login_max_failures`
  consecutive failed logins for a name from one address (an IPv6 /64) that name is
  locked *at that address* for `web.login_lockout_minutes`. While it is locked every
  attempt from there is refused without looking at the password. Another address is not
  locked: someone who knows a user's name can no longer lock the user out (the admin
  included) with five wrong passwords. A successful login resets the count; the lock
  expires by itself, and `pintar users unlock NAME` (`Accounts.unlock`) ends every lock
  of the name early. The counters are rows of `api_unknown_logins` keyed by
  `pair_key(name, address)`: half the name's SHA-256, then half the address's, so a
  name's rows are found by prefix and neither name nor address is stored in clear.
* Per username, a slow-down: the account counts its failed checks in a row from all
  addresses (api_users.failed_logins, or the unknown name's row keyed by the name's whole
  SHA-256). From `web.login_account_slowdown_after` on, an address that has failed for
  the name before gets one password check per delay, 1, 2, 4 ... seconds up to
  `web.login_account_max_delay_s` (the delay's end is the account's `locked_until`,
  taken by a single UPDATE so parallel guesses cannot share it). An address without a
  failure for the name is not held up, so the right user at their own place gets in
  while someone guesses from elsewhere; the guesser gets one check per new address and
  then one per delay, which bounds a spread-out attack that the per-pair lock does not.
* Per client address, in this process's memory (`AddressLimiter`): at most
  `web.login_ip_max_failures` failed logins per `web.login_ip_window_minutes`, sliding;
  beyond that the address is refused until its oldest failure leaves the window. This
  stops one password being sprayed over many usernames, which the per-name limits do not
  see. IPv6 addresses count per /64, the prefix one subscriber gets.

Usernames that do not exist lock exactly like real ones. Were the lock shown only for
names that exist, a handful of wrong passwords per name would list the accounts. The other way
out, a locked account answered like a wrong password with "try again later" reserved for
the per-address limit, would tell someone who locked themselves out that their correct
password is wrong, and they would go and have it reset for nothing. So an unknown name
has its (name, address) rows like a real one, and its account counter in
`api_unknown_logins` (keyed by the name's SHA-256), moved by the same rules. It lives in
the database like the real counter: a per-process one would give the difference away as
soon as a second worker or a restart is involved. Both paths also do the same work:
three indexed reads, one counting write, scrypt (against a dummy hash for an unknown
name), one write for the outcome, and on a new lock one clean-up delete. Rows whose lock
has expired (equivalent to no row) are deleted whenever a lock is set.

The count is race-free across workers and concurrent requests: an attempt takes its
number with a single upsert `... SET failed_logins = failed_logins + 1 WHERE <not
locked> RETURNING failed_logins` on its (name, address) row before the password is
checked, so parallel guesses cannot all pass as "the first failure"; an attempt numbered
beyond the limit locks at once without a check. The per-address count is taken before
the check in the same way and handed back when the attempt turns out not to be a failed
password check. The address is `request.client`, which uvicorn takes from
X-Forwarded-For only when the proxy is trusted (FORWARDED_ALLOW_IPS, default the
loopback addresses); never from the header itself, which any client can write.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, delete, insert, or_, select, update
from sqlalchemy.engine import Row, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.tables import api_keys, api_sessions, api_unknown_logins, api_users
from operator_data.crypto.pins import hash_pin, verify_pin
from operator_data.settings import WebSettings
from operator_data.store.bulk import upsert
from operator_data.store.engine import Store
from operator_data.store.schema import audit_log
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


class OwnAccountError(AuthError):
    """An admin tried to deactivate their own account or take the admin role from it."""


class LastAdminError(AuthError):
    """The change would leave no active admin, and so nobody to manage the users."""


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    role: Role
    active: bool
    created_at: datetime
    locked_until: datetime | None = None  # a login lock-out, as stored (it may have ended)

    @classmethod
    def from_row(cls, row: Row[Any]) -> User:
        m = row._mapping
        return cls(
            user_id=m["user_id"],
            username=m["username"],
            role=Role(m["role"]),
            active=bool(m["active"]),
            created_at=m["created_at"],
            locked_until=m.get("locked_until"),
        )

    def locked_at(self, now: datetime) -> datetime | None:
        """When the login lock-out ends, if it still holds at `now`."""
        return self.locked_until if _locked(self.locked_until, now) else None


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


# Who makes an administrative change: a logged-in user, whose own account is protected
# from them, or a label such as "cli" for the operator at the machine, who holds no account.
Actor = Principal | str


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What may be shown of an API key: never the secret, which is not stored."""

    key_id: str
    username: str
    label: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, m: RowMapping) -> ApiKey:
        return cls(m["key_id"], m["username"], m["label"], m["created_at"], m["revoked_at"])


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

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self._clock = clock  # when a login lock counts as current (unlock)

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
                # Failures counted while the name did not exist do not carry over.
                await conn.execute(delete(api_unknown_logins).where(_pairs_of(username)))
                return await self._user(conn, user_id)
        except IntegrityError:
            raise AuthError(f"user {username!r} already exists") from None

    async def _user(self, conn: AsyncConnection, user_id: int) -> User:
        row = (await conn.execute(select(api_users).where(api_users.c.user_id == user_id))).one()
        return User.from_row(row)

    async def list_users(self) -> list[User]:
        """Every user; `locked_until` is the latest of their slow-down and of the locks
        of their name at any address."""
        now = self._clock()
        async with self._store.read() as conn:
            rows = (await conn.execute(select(api_users).order_by(api_users.c.username))).all()
            locks = await conn.execute(
                select(api_unknown_logins.c.username_hash, api_unknown_logins.c.locked_until).where(
                    api_unknown_logins.c.locked_until > now
                )
            )
            latest: dict[str, datetime] = {}
            for key, until in locks:
                prefix = key[:32]
                latest[prefix] = max(until, latest.get(prefix, until))
        users = []
        for row in rows:
            user = User.from_row(row)
            elsewhere = latest.get(digest(user.username)[:32])
            if elsewhere is not None and (
                user.locked_until is None or elsewhere > user.locked_until
            ):
                user = replace(user, locked_until=elsewhere)
            users.append(user)
        return users

    async def set_active(self, username: str, active: bool, *, actor: Actor) -> User | None:
        """(De)activate `username` (None: no such user), audited as user.activate or
        user.deactivate.

        Deactivation closes every session and makes the API keys stop working; raises
        OwnAccountError for `actor`'s own account and LastAdminError for the last active
        admin. Activation brings back the keys not revoked (the password is unchanged)."""
        now = self._clock()
        async with self._store.begin() as conn:
            admins = [] if active else await _active_admins(conn)
            user = await _locked_user(conn, username)
            if user is None:
                return None
            if not active:
                _refuse_own(actor, user, "deactivate")
                _refuse_last_admin(user, admins)
            await conn.execute(
                update(api_users)
                .where(api_users.c.user_id == user.user_id)
                .values(active=active, updated_at=now)
            )
            if not active:
                await conn.execute(
                    delete(api_sessions).where(api_sessions.c.user_id == user.user_id)
                )
            action = "user.activate" if active else "user.deactivate"
            await _record(conn, now, actor, action, username, {"was_active": user.active})
            return await self._user(conn, user.user_id)

    async def set_role(self, username: str, role: Role, *, actor: Actor) -> User | None:
        """Give `username` another role (None: no such user), audited as user.role.

        Sessions stay open on purpose: `by_session` and `by_api_key` read the role from
        api_users on every request, so a session or key carries no rights of its own and
        the new role, a demotion above all, holds from the user's next request on. Raises
        OwnAccountError when `actor` would demote themselves out of admin and
        LastAdminError for the last active admin."""
        now = self._clock()
        async with self._store.begin() as conn:
            admins = await _active_admins(conn)
            user = await _locked_user(conn, username)
            if user is None:
                return None
            if user.role is Role.ADMIN and role is not Role.ADMIN:
                _refuse_own(actor, user, "take the admin role from")
                _refuse_last_admin(user, admins)
            await conn.execute(
                update(api_users)
                .where(api_users.c.user_id == user.user_id)
                .values(role=role.value, updated_at=now)
            )
            detail = {"from": user.role.value, "to": role.value}
            await _record(conn, now, actor, "user.role", username, detail)
            return await self._user(conn, user.user_id)

    async def unlock(self, username: str, *, actor: str) -> datetime | None:
        """Clear the user's login locks at every address, their slow-down and failed-login
        count (audited as user.unlock).

        Returns when the latest lock it lifted would have ended (None: none held); raises
        AuthError when there is no such user."""
        now = self._clock()
        async with self._store.begin() as conn:
            row = (
                await conn.execute(
                    select(api_users.c.locked_until).where(api_users.c.username == username)
                )
            ).first()
            if row is None:
                raise AuthError(f"user {username!r} does not exist")
            await conn.execute(
                update(api_users)
                .where(api_users.c.username == username)
                .values(failed_logins=0, locked_until=None, updated_at=now)
            )
            pairs = await conn.execute(
                select(api_unknown_logins.c.locked_until).where(_pairs_of(username))
            )
            locks = [row.locked_until, *pairs.scalars()]
            await conn.execute(delete(api_unknown_logins).where(_pairs_of(username)))
            current = [until for until in locks if _locked(until, now)]
            was: datetime | None = max(current) if current else None
            await conn.execute(
                insert(audit_log).values(
                    at=now,
                    actor=actor,
                    action="user.unlock",
                    subject_type="user",
                    subject_id=username,
                    detail={"locked_until": None if was is None else was.isoformat()},
                )
            )
        return was

    async def reset_password(self, username: str, password: str, *, actor: Actor) -> User | None:
        """An admin sets `username`'s password (None: no such user), audited as
        user.password_reset.

        Every session of the user is closed, since whoever held one may be why the
        password is being reset, and a login lock-out is lifted, since the user now has a
        password to try. API keys are separate credentials and stay. Raises AuthError
        for a password out of bounds, and for `actor`'s own account: changing one's own
        password needs the current one (`change_password`), so a session left open
        cannot be turned into the password."""
        check_password(password)
        if isinstance(actor, Principal) and username == actor.name:
            raise AuthError("use the own-password change, which asks for the current one")
        hashed = await asyncio.to_thread(hash_pin, password)
        now = self._clock()
        async with self._store.begin() as conn:
            user_id = await conn.scalar(
                update(api_users)
                .where(api_users.c.username == username)
                .values(
                    password_hash=hashed,
                    failed_logins=0,
                    locked_until=None,
                    updated_at=now,
                )
                .returning(api_users.c.user_id)
            )
            if user_id is None:
                return None
            await conn.execute(delete(api_sessions).where(api_sessions.c.user_id == user_id))
            await conn.execute(delete(api_unknown_logins).where(_pairs_of(username)))
            await _record(conn, now, actor, "user.password_reset", username, {})
            return await self._user(conn, int(user_id))

    async def change_password(
        self,
        user: User,
        current: str,
        new: str,
        *,
        guard: LoginGuard,
        client: str | None,
        keep_session: str | None,
    ) -> LoginResult:
        """`user` changes their own password, proving it with the `current` one.

        The current password is checked by `guard` exactly like a login from `client`, so a
        stolen session or API key cannot be used to guess it faster than the login form
        allows: a wrong one counts as a failed login and may lock the name at that
        address. Raises AuthError for a new password out of bounds before any check (that
        is not a guess). On LoginOk every session but `keep_session` (the caller's) is closed."""
        check_password(new)
        result = await guard.login(user.username, current, client)
        if not isinstance(result, LoginOk):
            return result
        hashed = await asyncio.to_thread(hash_pin, new)
        async with self._store.begin() as conn:
            await conn.execute(
                update(api_users)
                .where(api_users.c.user_id == user.user_id)
                .values(password_hash=hashed, updated_at=self._clock())
            )
            others = [api_sessions.c.user_id == user.user_id]
            if keep_session is not None:
                others.append(api_sessions.c.token_hash != digest(keep_session))
            await conn.execute(delete(api_sessions).where(*others))
        return result

    async def authenticate(self, username: str, password: str) -> User | None:
        """The bare credential check, without counting or lock-out (`LoginGuard` adds
        those for the login form)."""
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
        """A new key `pk_<id>_<secret>`; shown once, stored only as a digest.

        Raises AuthError for a deactivated user: the key would not work now, yet start
        working unnoticed the day the user is reactivated."""
        if not user.active:
            raise AuthError(f"user {user.username} is deactivated: activate them first")
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

    async def list_api_keys(self, username: str | None = None) -> list[ApiKey]:
        """The keys of `username` (or of everyone), revoked ones included, oldest first."""
        query = _keys_query()
        if username is not None:
            query = query.where(api_users.c.username == username)
        async with self._store.read() as conn:
            rows = await conn.execute(
                query.order_by(api_users.c.username, api_keys.c.created_at, api_keys.c.key_id)
            )
            return [ApiKey.from_row(r._mapping) for r in rows]

    async def revoke_api_key(self, username: str, key_id: str, *, actor: Actor) -> ApiKey | None:
        """Revoke `username`'s key `key_id` for good (None: the user has no such key),
        audited as api_key.revoke. Revoking a revoked key changes nothing."""
        now = self._clock()
        async with self._store.begin() as conn:
            row = (
                await conn.execute(
                    _keys_query()
                    .where(api_keys.c.key_id == key_id, api_users.c.username == username)
                    .with_for_update(of=api_keys)
                )
            ).first()
            if row is None:
                return None
            key = ApiKey.from_row(row._mapping)
            if key.revoked_at is None:
                await conn.execute(
                    update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=now)
                )
            detail = {"key_id": key_id, "label": key.label, "was_revoked": key.revoked_at}
            await _record(conn, now, actor, "api_key.revoke", username, detail)
        return key if key.revoked_at is not None else replace(key, revoked_at=now)

    async def user_by_name(self, username: str) -> User | None:
        async with self._store.read() as conn:
            row = (
                await conn.execute(select(api_users).where(api_users.c.username == username))
            ).first()
        return None if row is None else User.from_row(row)


# -- administrative changes --------------------------------------------------------------


def _keys_query() -> Select[tuple[str, str, str, datetime, datetime | None]]:
    return select(
        api_keys.c.key_id,
        api_users.c.username,
        api_keys.c.label,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
    ).join(api_users, api_users.c.user_id == api_keys.c.user_id)


async def _active_admins(conn: AsyncConnection) -> list[str]:
    """The active admins' names, their rows locked until the transaction ends.

    Read before an admin can lose their rights: on PostgreSQL a second transaction doing
    the same waits here and then sees the first one's committed change, so two admins
    demoting or deactivating each other at once cannot both succeed and leave none.
    SQLite runs one writer at a time (BEGIN IMMEDIATE) and ignores FOR UPDATE."""
    rows = await conn.execute(
        select(api_users.c.username)
        .where(api_users.c.role == Role.ADMIN.value, api_users.c.active.is_(True))
        .order_by(api_users.c.user_id)
        .with_for_update()
    )
    return list(rows.scalars())


async def _locked_user(conn: AsyncConnection, username: str) -> User | None:
    row = (
        await conn.execute(
            select(api_users).where(api_users.c.username == username).with_for_update()
        )
    ).first()
    return None if row is None else User.from_row(row)


def _refuse_own(actor: Actor, user: User, change: str) -> None:
    """An admin locking themselves out is almost always a slip, and only another admin
    could undo it."""
    if isinstance(actor, Principal) and actor.name == user.username:
        raise OwnAccountError(f"you cannot {change} your own account")


def _refuse_last_admin(user: User, admins: list[str]) -> None:
    """Without an active admin nobody could manage users from the web any more."""
    if admins == [user.username]:
        raise LastAdminError(
            f"{user.username} is the last active admin: make another user admin first"
        )


async def _record(
    conn: AsyncConnection,
    now: datetime,
    actor: Actor,
    action: str,
    username: str,
    detail: dict[str, Any],
) -> None:
    """The audit row of an administrative change, in the change's own transaction;
    `detail` never holds a secret."""
    if isinstance(actor, Principal):
        name, how = actor.name, {"via": actor.via, "role": actor.role.value}
    else:  # a command-line actor, `cli:<os user>`: via says how, actor who
        name, how = actor, {"via": "cli" if actor.startswith("cli") else actor}
    record = {
        **how,
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in detail.items()},
    }
    await _user_audit_row(conn, now, name, action, username, record)


# -- login throttling --------------------------------------------------------------------


def _locked(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def _open(table: Table, now: datetime) -> ColumnElement[bool]:
    """SQL: the row's lock (if any) has expired."""
    return or_(table.c.locked_until.is_(None), table.c.locked_until <= now)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def address_key(host: str | None) -> str:
    """What the per-address limit counts by: the IPv4 address, or the /64 of an IPv6 one
    (a subscriber gets a whole /64, so single addresses would be free for the taking)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # not an IP: a Unix socket peer, a test client
        return host[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class AddressLimiter:
    """Failed logins per client address in a sliding window, in this process's memory.

    Memory stays bounded whatever arrives: an address keeps at most `max_failures`
    timestamps, addresses without a failure inside the window are forgotten (swept at
    most once per window), and beyond `max_addresses` the least recently seen go first.
    """

    def __init__(
        self, max_failures: int, window: timedelta, *, max_addresses: int = 10_000
    ) -> None:
        self._max = max_failures
        self._window = window
        self._cap = max_addresses
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._swept: datetime | None = None

    def __len__(self) -> int:
        return len(self._failures)

    def admit(self, address: str, now: datetime) -> datetime | None:
        """None: go ahead, counted as a failure from now on (see `forgive`); otherwise
        the address is over its limit until the returned time."""
        self._sweep(now)
        stamps = self._failures.get(address)
        if stamps is None:
            stamps = self._failures[address] = deque(maxlen=self._max)
            while len(self._failures) > self._cap:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(address)
            while stamps and stamps[0] <= now - self._window:
                stamps.popleft()
        if len(stamps) >= self._max:
            return stamps[0] + self._window
        # Counted before the password check, so that parallel requests cannot all pass.
        stamps.append(now)
        return None

    def forgive(self, address: str, stamp: datetime) -> None:
        """Take back the failure `admit` counted at `stamp` (a success, or no check made)."""
        stamps = self._failures.get(address)
        if stamps is not None and stamp in stamps:
            stamps.remove(stamp)

    def _sweep(self, now: datetime) -> None:
        if self._swept is not None and now - self._swept < self._window:
            return
        self._swept = now
        horizon = now - self._window
        for address in [a for a, s in self._failures.items() if not s or s[-1] <= horizon]:
            del self._failures[address]


@dataclass(frozen=True, slots=True)
class LoginOk:
    user: User


@dataclass(frozen=True, slots=True)
class LoginFailed:
    """Wrong username or password (which of the two is never told)."""


@dataclass(frozen=True, slots=True)
class LoginRefused:
    """Refused without a password check: the name is locked or the address has failed
    too often (which of the two is never told either). Try again after `retry_after_s`."""

    retry_after_s: int


LoginResult = LoginOk | LoginFailed | LoginRefused


class LoginGuard:
    """The login form's credential check with its limits (see the module docstring). One
    per app: the per-address counts live in it."""

    def __init__(
        self,
        store: Store,
        policy: WebSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_addresses: int = 10_000,
    ) -> None:
        self._store = store
        self._max_failures = policy.login_max_failures
        self._lockout = timedelta(minutes=policy.login_lockout_minutes)
        self._slow_after = policy.login_account_slowdown_after
        self._max_delay = policy.login_account_max_delay_s
        self._clock = clock
        self.addresses = AddressLimiter(
            policy.login_ip_max_failures,
            timedelta(minutes=policy.login_ip_window_minutes),
            max_addresses=max_addresses,
        )

    def delay(self, failures: int) -> timedelta:
        """The account's wait between password checks after `failures` in a row: none
        below the threshold, then 1, 2, 4 ... seconds up to the maximum."""
        if failures < self._slow_after:
            return timedelta(0)
        doublings = min(failures - self._slow_after, 30)
        return timedelta(seconds=min(2**doublings, self._max_delay))

    async def login(self, username: str, password: str, client: str | None) -> LoginResult:
        """Check a login from `client` (its IP address); every failure and refusal is
        written to the audit log with the username and address, never the password."""
        now = self._clock()
        key = address_key(client)
        free_at = self.addresses.admit(key, now)
        if free_at is not None:
            async with self._store.begin() as conn:
                await _audit(conn, now, "session.login_refused", username, client, "address")
            return LoginRefused(_seconds(free_at - now))
        result, checked = await self._attempt(username, password, client, key, now)
        if isinstance(result, LoginOk) or not checked:
            self.addresses.forgive(key, now)
        return result

    async def _attempt(
        self, username: str, password: str, client: str | None, key: str, now: datetime
    ) -> tuple[LoginResult, bool]:
        """The result, and whether a password was checked."""
        hashed_name = digest(username)
        pair = _Pair(pair_key(username, key))
        # The same reads whatever the name: the same work for known and unknown.
        async with self._store.read() as conn:
            user_row = (
                await conn.execute(select(api_users).where(api_users.c.username == username))
            ).first()
            unknown_row = (
                await conn.execute(
                    select(api_unknown_logins.c.failed_logins).where(
                        api_unknown_logins.c.username_hash == hashed_name
                    )
                )
            ).first()
            pair_row = (
                await conn.execute(
                    select(api_unknown_logins.c.locked_until).where(
                        api_unknown_logins.c.username_hash == pair.key
                    )
                )
            ).first()
        account = _Account(username, hashed_name, known=user_row is not None)
        if pair_row is not None and _locked(pair_row.locked_until, now):
            return await self._refuse(account, pair, client, now, pair_row.locked_until), False

        # The account's slow-down holds only for addresses that have failed for it before
        # (they have a pair row): the right user at a place of their own is not held up
        # by someone guessing from elsewhere.
        row = user_row if user_row is not None else unknown_row
        failures = 0 if row is None else int(row.failed_logins)
        wait = self.delay(failures)
        if wait and pair_row is not None:
            async with self._store.begin() as conn:
                claimed = await account.claim(conn, now, now + wait)
            if not claimed:
                return await self._refuse(account, pair, client, now, None, slowed=True), False

        async with self._store.begin() as conn:
            number = await pair.count(conn, now)
        if number is None:  # locked by a concurrent attempt since the read
            return await self._refuse(account, pair, client, now, None), False
        if number > self._max_failures:
            # Attempts running side by side took numbers beyond the limit (or one was lost
            # half-way): lock now instead of checking yet another password.
            async with self._store.begin() as conn:
                await self._lock(conn, account, pair, client, now, number)
            return await self._refuse(account, pair, client, now, None), False

        stored = user_row.password_hash if user_row is not None else _DUMMY_HASH
        good = await asyncio.to_thread(verify_pin, password, stored)
        if good and user_row is not None and user_row.active:
            async with self._store.begin() as conn:
                await conn.execute(
                    update(api_users)
                    .where(api_users.c.user_id == user_row.user_id)
                    .values(failed_logins=0, locked_until=None)
                )
                await pair.forget(conn)
            return LoginOk(User.from_row(user_row)), True

        async with self._store.begin() as conn:
            in_a_row = await account.add_failure(conn)
            await _audit(
                conn,
                now,
                "session.login_failed",
                username,
                client,
                None,
                {"failures": number, "account_failures": in_a_row, "known_user": account.known},
            )
            if number < self._max_failures:
                return LoginFailed(), True
            until = await self._lock(conn, account, pair, client, now, number)
        return LoginRefused(_seconds(until - now)), True

    async def _lock(
        self,
        conn: AsyncConnection,
        account: _Account,
        pair: _Pair,
        client: str | None,
        now: datetime,
        failures: int,
    ) -> datetime:
        until = now + self._lockout
        if await pair.lock(conn, now, until):
            await _audit(
                conn,
                now,
                "session.locked",
                account.username,
                client,
                None,
                {"until": until.isoformat(), "failures": failures, "known_user": account.known},
                actor="system",
            )
            # Rows whose lock has run out say no more than a missing row. Done on every
            # new lock, real name or not, so that both cost the same.
            await conn.execute(
                delete(api_unknown_logins).where(
                    api_unknown_logins.c.failed_logins == 0,
                    api_unknown_logins.c.locked_until <= now,
                )
            )
        return until

    async def _refuse(
        self,
        account: _Account,
        pair: _Pair,
        client: str | None,
        now: datetime,
        until: datetime | None,
        *,
        slowed: bool = False,
    ) -> LoginResult:
        async with self._store.begin() as conn:
            if until is None:
                until = await (account.locked_until(conn) if slowed else pair.locked_until(conn))
            reason = "slowed" if slowed else "locked"
            await _audit(conn, now, "session.login_refused", account.username, client, reason)
        return LoginRefused(_seconds((until or now) - now))


def pair_key(username: str, address: str) -> str:
    """The key of the (username, address) counter in api_unknown_logins: the first half
    of the name's digest, so that all of a name's rows can be found by prefix (unlock, a
    new user), then half of the address's digest. Neither is stored in clear."""
    return digest(username)[:32] + digest(address)[:32]


def _pairs_of(username: str) -> ColumnElement[bool]:
    """SQL: the (username, any address) rows of `username`, and its unknown-name row."""
    return api_unknown_logins.c.username_hash.startswith(digest(username)[:32])


@dataclass(frozen=True, slots=True)
class _Pair:
    """The (username, address) counter that locks: a row of api_unknown_logins, for
    known and unknown names alike."""

    key: str

    def _row(self) -> ColumnElement[bool]:
        return api_unknown_logins.c.username_hash == self.key

    async def count(self, conn: AsyncConnection, now: datetime) -> int | None:
        """This attempt's number since the last success or lock; None if locked."""
        table = api_unknown_logins
        # An upsert whose update only applies while unlocked: no row comes back when the
        # pair is locked.
        value = await conn.scalar(
            upsert(conn, table)
            .values(username_hash=self.key, failed_logins=1, locked_until=None)
            .on_conflict_do_update(
                index_elements=[table.c.username_hash],
                set_={"failed_logins": table.c.failed_logins + 1},
                where=_open(table, now),
            )
            .returning(table.c.failed_logins)
        )
        return None if value is None else int(value)

    async def lock(self, conn: AsyncConnection, now: datetime, until: datetime) -> bool:
        """Lock until `until` unless a concurrent attempt already did."""
        table = api_unknown_logins
        result = await conn.execute(
            update(table)
            .where(self._row(), _open(table, now))
            .values(failed_logins=0, locked_until=until)
        )
        return result.rowcount == 1

    async def forget(self, conn: AsyncConnection) -> None:
        await conn.execute(delete(api_unknown_logins).where(self._row()))

    async def locked_until(self, conn: AsyncConnection) -> datetime | None:
        value: datetime | None = await conn.scalar(
            select(api_unknown_logins.c.locked_until).where(self._row())
        )
        return value


@dataclass(frozen=True, slots=True)
class _Account:
    """The account's failures in a row from every address, and its slow-down: the
    user's row, or the unknown name's row (keyed by the name's whole digest)."""

    username: str
    hashed_name: str
    known: bool

    @property
    def _table(self) -> Table:
        return api_users if self.known else api_unknown_logins

    def _row(self) -> ColumnElement[bool]:
        if self.known:
            return api_users.c.username == self.username
        return api_unknown_logins.c.username_hash == self.hashed_name

    async def add_failure(self, conn: AsyncConnection) -> int:
        """One more failed check in a row; the count."""
        table = self._table
        plus_one = {"failed_logins": table.c.failed_logins + 1}
        if self.known:
            value = await conn.scalar(
                update(table).where(self._row()).values(plus_one).returning(table.c.failed_logins)
            )
        else:
            value = await conn.scalar(
                upsert(conn, table)
                .values(username_hash=self.hashed_name, failed_logins=1, locked_until=None)
                .on_conflict_do_update(index_elements=[table.c.username_hash], set_=plus_one)
                .returning(table.c.failed_logins)
            )
        return int(value or 0)

    async def claim(self, conn: AsyncConnection, now: datetime, until: datetime) -> bool:
        """Take the account's next password check, holding the ones after it off until
        `until`; False when another attempt holds it (a single UPDATE: race-free)."""
        table = self._table
        result = await conn.execute(
            update(table).where(self._row(), _open(table, now)).values(locked_until=until)
        )
        return result.rowcount == 1

    async def locked_until(self, conn: AsyncConnection) -> datetime | None:
        value: datetime | None = await conn.scalar(
            select(self._table.c.locked_until).where(self._row())
        )
        return value


async def _audit(
    conn: AsyncConnection,
    now: datetime,
    action: str,
    username: str,
    client: str | None,
    reason: str | None,
    detail: dict[str, Any] | None = None,
    *,
    actor: str = "anonymous",
) -> None:
    record: dict[str, Any] = {"ip": client, **(detail or {})}
    if reason is not None:
        record["reason"] = reason
    await _user_audit_row(conn, now, actor, action, username, record)


async def _user_audit_row(
    conn: AsyncConnection,
    now: datetime,
    actor: str,
    action: str,
    username: str,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        insert(audit_log).values(
            at=now,
            actor=actor,
            action=action,
            subject_type="user",
            subject_id=username[:64],  # an unknown name at the login form may be longer
            detail=detail,
        )
    )
