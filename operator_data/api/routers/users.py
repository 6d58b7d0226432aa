"""Who am I; user and API-key management, registry counts and configuration (admin)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from pydantic import BaseModel, Field

from operator_data.api.auth import (
    API_KEY_PREFIX,
    MIN_PASSWORD_LENGTH,
    ApiKey,
    AuthError,
    LoginFailed,
    LoginOk,
    LoginRefused,
    LoginResult,
    Principal,
    Role,
    User,
)
from operator_data.api.deps import Admin, AppContext, Ctx, Helpdesk, audit
from operator_data.api.routers.pages import login_guard

router = APIRouter(prefix="/api/v1", tags=["users"])

Username = Annotated[str, Path(pattern=r"^[a-z][a-z0-9._-]{1,63}$")]
KeyId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


class NewUser(BaseModel):
    username: str = Field(pattern=r"^[a-z][a-z0-9._-]{1,63}$")
    role: Role
    password: str = Field(min_length=10, max_length=256)


class NewPassword(BaseModel):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)


class NewKey(BaseModel):
    label: str = Field(min_length=1, max_length=100)


class NewRole(BaseModel):
    role: Role


def _user(user: User, now: datetime) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role.value,
        "active": user.active,
        "created_at": user.created_at,
        "locked_until": user.locked_at(now),
    }


def _key(key: ApiKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "label": key.label,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


def _missing(username: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"user {username} does not exist")


@router.get("/me", summary="The calling user")
async def me(ctx: Ctx, principal: Helpdesk) -> dict[str, Any]:
    return {**_user(principal.user, ctx.clock()), "via": principal.via}


@router.get("/users", summary="List users (admin)")
async def list_users(ctx: Ctx, principal: Admin) -> dict[str, Any]:
    return {"items": [_user(u, ctx.clock()) for u in await ctx.accounts.list_users()]}


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Create a user (admin)")
async def create_user(ctx: Ctx, principal: Admin, body: NewUser) -> dict[str, Any]:
    try:
        user = await ctx.accounts.create_user(body.username, body.role, body.password)
    except AuthError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    await audit(ctx, principal, "user.create", "user", user.username, {"role": user.role.value})
    return _user(user, ctx.clock())


async def _changed(
    ctx: AppContext, username: str, change: Awaitable[User | None]
) -> dict[str, Any]:
    """The user after an account change; 422 with the reason it was refused, 404 if none."""
    try:
        user = await change
    except AuthError as error:
        raise HTTPException(422, str(error)) from None
    if user is None:
        raise _missing(username)
    return _user(user, ctx.clock())


@router.post(
    "/users/{username}/deactivate",
    summary="Deactivate a user (admin); not oneself, not the last active admin",
)
async def deactivate(ctx: Ctx, principal: Admin, username: Username) -> dict[str, Any]:
    return await _changed(ctx, username, ctx.accounts.set_active(username, False, actor=principal))


@router.post(
    "/users/{username}/activate",
    summary="Reactivate a user (admin); their API keys not revoked work again",
)
async def activate(ctx: Ctx, principal: Admin, username: Username) -> dict[str, Any]:
    return await _changed(ctx, username, ctx.accounts.set_active(username, True, actor=principal))


@router.post(
    "/users/{username}/role",
    summary="Change a user's role (admin); not one's own admin role, not the last admin's",
)
async def set_role(ctx: Ctx, principal: Admin, username: Username, body: NewRole) -> dict[str, Any]:
    change = ctx.accounts.set_role(username, body.role, actor=principal)
    return await _changed(ctx, username, change)


@router.post("/users/{username}/unlock", summary="Lift a user's login lock-out (admin)")
async def unlock(ctx: Ctx, principal: Admin, username: Username) -> dict[str, Any]:
    try:
        was = await ctx.accounts.unlock(username, actor=principal.user.username)
    except AuthError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {username} does not exist") from None
    return {"username": username, "unlocked": True, "was_locked_until": was}


@router.post(
    "/users/{username}/password",
    summary="Set another user's password (admin); closes their sessions, lifts a lock-out",
)
async def reset_password(
    ctx: Ctx, principal: Admin, username: Username, body: NewPassword
) -> dict[str, Any]:
    try:
        user = await ctx.accounts.reset_password(username, body.password, actor=principal)
    except AuthError as error:
        raise HTTPException(422, str(error)) from None
    if user is None:
        raise _missing(username)
    return {"username": username, "password_reset": True}


@router.post(
    "/me/password",
    summary="Change the calling user's password; a wrong current one counts as a failed login",
)
async def change_own_password(
    request: Request, ctx: Ctx, principal: Helpdesk, body: PasswordChange
) -> dict[str, Any]:
    result = await change_and_audit(
        request, ctx, principal, body.current_password, body.new_password
    )
    if isinstance(result, LoginRefused):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed attempts, try again later",
            headers={"Retry-After": str(result.retry_after_s)},
        )
    if isinstance(result, LoginFailed):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the current password is wrong")
    return {"username": principal.name, "password_changed": True}


async def change_and_audit(
    request: Request, ctx: AppContext, principal: Principal, current: str, new: str
) -> LoginResult:
    """`Accounts.change_password` through the app's LoginGuard plus its audit row (the
    guard itself audits a wrong password as session.login_failed); shared with the page.
    Raises AuthError for a new password out of bounds."""
    client = request.client.host if request.client else None
    result = await ctx.accounts.change_password(
        principal.user,
        current,
        new,
        guard=login_guard(request, ctx),
        client=client,
        keep_session=principal.session_token,
    )
    if isinstance(result, LoginOk):
        await audit(ctx, principal, "user.password_change", "user", principal.name)
    else:
        reason = "refused" if isinstance(result, LoginRefused) else "wrong_password"
        await audit(
            ctx,
            principal,
            "user.password_change_failed",
            "user",
            principal.name,
            {"reason": reason},
        )
    return result


@router.post(
    "/users/{username}/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key (admin); the key is shown only in this answer; "
    "not for a deactivated user (422)",
)
async def issue_key(ctx: Ctx, principal: Admin, username: Username, body: NewKey) -> dict[str, Any]:
    try:
        issued = await issue_and_audit(ctx, principal, username, body.label)
    except AuthError as error:
        raise HTTPException(422, str(error)) from None
    if issued is None:
        raise _missing(username)
    return {"api_key": issued.api_key, "key_id": issued.key_id}


@dataclass(frozen=True, slots=True)
class IssuedKey:
    api_key: str  # the secret: for this one answer only, never a log or audit row
    key_id: str
    username: str
    label: str


async def issue_and_audit(
    ctx: AppContext, principal: Principal, username: str, label: str
) -> IssuedKey | None:
    """A new API key for `username` (None: no such user) and its api_key.create audit
    row without the secret; shared with the users page. Raises AuthError for a
    deactivated user (`Accounts.create_api_key`)."""
    user = await ctx.accounts.user_by_name(username)
    if user is None:
        return None
    key = await ctx.accounts.create_api_key(user, label)
    key_id = key.removeprefix(API_KEY_PREFIX).split("_")[0]  # public: names it in a revoke
    await audit(
        ctx, principal, "api_key.create", "user", username, {"label": label, "key_id": key_id}
    )
    return IssuedKey(key, key_id, username, label)


@router.get("/users/{username}/api-keys", summary="A user's API keys, without secrets (admin)")
async def list_keys(ctx: Ctx, principal: Admin, username: Username) -> dict[str, Any]:
    if await ctx.accounts.user_by_name(username) is None:
        raise _missing(username)
    return {"items": [_key(k) for k in await ctx.accounts.list_api_keys(username)]}


@router.post(
    "/users/{username}/api-keys/{key_id}/revoke",
    summary="Revoke a user's API key for good (admin)",
)
async def revoke_key(
    ctx: Ctx, principal: Admin, username: Username, key_id: KeyId
) -> dict[str, Any]:
    key = await ctx.accounts.revoke_api_key(username, key_id, actor=principal)
    if key is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {username} has no API key {key_id}")
    return _key(key)


@router.get("/registry/counts", summary="Registry size (admin)")
async def registry_counts(ctx: Ctx, principal: Admin) -> dict[str, int]:
    return await ctx.registry.counts()


@router.get("/config", summary="Effective configuration without secrets (admin)")
async def config(ctx: Ctx, principal: Admin) -> dict[str, Any]:
    await audit(ctx, principal, "view.config", None, None)
    return ctx.settings.model_dump(mode="json", exclude={"security"})
