"""User administration pages (admin) and the own-password page (everyone logged in).

They do what the JSON API in `users.py` does, through the same `Accounts` methods and
the same audit rows; each POST carries the session's CSRF token in a hidden field.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import i18n
from operator_data.api.auth import (
    AuthError,
    LastAdminError,
    LoginOk,
    LoginRefused,
    OwnAccountError,
    Principal,
    Role,
    User,
    check_password,
)
from operator_data.api.deps import Ctx, audit, language_of
from operator_data.api.routers.pages import Viewer, _check_form_csrf, _need, render
from operator_data.api.routers.users import IssuedKey, KeyId, change_and_audit, issue_and_audit

router = APIRouter(include_in_schema=False)

Username = Annotated[str, Path(pattern=r"^[a-z][a-z0-9._-]{1,63}$")]
Csrf = Annotated[str, Form(max_length=64)]  # missing → "" → refused like a wrong token
Secret = Annotated[str, Form(max_length=256)]
# What a redirect after a successful form says (a key of i18n, not free text).
_DONE = (
    "user_created",
    "user_deactivated",
    "user_activated",
    "role_changed",
    "user_unlocked",
    "password_was_reset",
    "api_key_revoked",
)


def _admin(principal: Principal, csrf: str | None = None) -> None:
    if csrf is not None:
        _check_form_csrf(principal, csrf)
    _need(principal, Role.ADMIN)


def _password_problem(request: Request, password: str, repeat: str | None = None) -> str | None:
    """The translated reason a new password is refused, if it is."""
    t = i18n.texts(language_of(request))
    if repeat is not None and password != repeat:
        return t["passwords_differ"]
    try:
        check_password(password)
    except AuthError:
        return t["password_rule"]
    return None


def _kept(users: list[User], principal: Principal) -> set[str]:
    """Whose role and activation the page offers no change of (`Accounts` refuses it
    anyway): the admin's own account, and the last active admin's."""
    admins = [u.username for u in users if u.active and u.role is Role.ADMIN]
    return {principal.name, *(admins if len(admins) == 1 else [])}


async def _users_page(
    request: Request,
    ctx: Ctx,
    principal: Principal,
    *,
    error: str | None = None,
    status_code: int = 200,
    issued: IssuedKey | None = None,
) -> HTMLResponse:
    done = request.query_params.get("done", "")
    users = await ctx.accounts.list_users()
    return render(
        request,
        "users.html",
        principal,
        {
            "users": users,
            "kept": _kept(users, principal),
            "keys": await ctx.accounts.list_api_keys(),
            "now": ctx.clock(),
            "roles": [r.value for r in Role],
            "done": done if done in _DONE else None,
            "done_user": request.query_params.get("user", "")[:64],
            "error": error,
            "issued": issued,
        },
        status_code=status_code,
    )


async def _refused(
    request: Request, ctx: Ctx, principal: Principal, error: AuthError
) -> HTMLResponse:
    """The users page with the reason an admin-protecting rule refused a change."""
    t = i18n.texts(language_of(request))
    if isinstance(error, OwnAccountError):
        message = t["own_account_refused"]
    elif isinstance(error, LastAdminError):
        message = t["last_admin_refused"]
    else:
        message = str(error)
    return await _users_page(request, ctx, principal, error=message, status_code=422)


async def _no_such_user(
    request: Request, ctx: Ctx, principal: Principal, username: str
) -> HTMLResponse:
    t = i18n.texts(language_of(request))
    error = f"{t['not_found']} ({username})"
    return await _users_page(request, ctx, principal, error=error, status_code=404)


def _back(done: str, username: str) -> Response:
    query = urlencode({"done": done, "user": username})
    return RedirectResponse(f"/users?{query}", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/users")
async def users_page(request: Request, ctx: Ctx, principal: Viewer) -> HTMLResponse:
    _admin(principal)
    return await _users_page(request, ctx, principal)


@router.post("/users")
async def create_user_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[Role, Form()],
    password: Secret,
    csrf: Csrf = "",
) -> Response:
    _admin(principal, csrf)
    problem = _password_problem(request, password)
    if problem is None:
        try:
            user = await ctx.accounts.create_user(username, role, password)
        except AuthError as error:
            problem = str(error)
        else:
            await audit(ctx, principal, "user.create", "user", user.username, {"role": role.value})
            return _back("user_created", user.username)
    return await _users_page(request, ctx, principal, error=problem, status_code=422)


async def _changed(
    request: Request,
    ctx: Ctx,
    principal: Principal,
    username: str,
    change: Awaitable[User | None],
    done: str,
) -> Response:
    """Back to the list after an account change, or the page saying why it was refused."""
    try:
        user = await change
    except AuthError as error:
        return await _refused(request, ctx, principal, error)
    if user is None:
        return await _no_such_user(request, ctx, principal, username)
    return _back(done, username)


@router.post("/users/{username}/deactivate")
async def deactivate_page(
    request: Request, ctx: Ctx, principal: Viewer, username: Username, csrf: Csrf = ""
) -> Response:
    _admin(principal, csrf)
    change = ctx.accounts.set_active(username, False, actor=principal)
    return await _changed(request, ctx, principal, username, change, "user_deactivated")


@router.post("/users/{username}/activate")
async def activate_page(
    request: Request, ctx: Ctx, principal: Viewer, username: Username, csrf: Csrf = ""
) -> Response:
    _admin(principal, csrf)
    change = ctx.accounts.set_active(username, True, actor=principal)
    return await _changed(request, ctx, principal, username, change, "user_activated")


@router.post("/users/{username}/role")
async def role_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    username: Username,
    role: Annotated[Role, Form()],
    csrf: Csrf = "",
) -> Response:
    _admin(principal, csrf)
    change = ctx.accounts.set_role(username, role, actor=principal)
    return await _changed(request, ctx, principal, username, change, "role_changed")


@router.post("/users/{username}/api-keys/{key_id}/revoke")
async def revoke_key_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    username: Username,
    key_id: KeyId,
    csrf: Csrf = "",
) -> Response:
    _admin(principal, csrf)
    if await ctx.accounts.revoke_api_key(username, key_id, actor=principal) is None:
        return await _no_such_user(request, ctx, principal, f"{username}: {key_id}")
    return _back("api_key_revoked", username)


@router.post("/users/{username}/api-keys")
async def issue_key_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    username: Username,
    label: Annotated[str, Form(max_length=1000)] = "",
    csrf: Csrf = "",
) -> Response:
    """The one answer that shows the new key: rendered here, not redirected to, so the
    secret stays out of URLs, and marked no-store so no cache keeps it."""
    _admin(principal, csrf)
    t = i18n.texts(language_of(request))
    if not 1 <= len(label) <= 100:
        return await _users_page(request, ctx, principal, error=t["label_rule"], status_code=422)
    try:
        issued = await issue_and_audit(ctx, principal, username, label)
    except AuthError:
        error = f"{t['user_inactive_no_key']} ({username})"
        return await _users_page(request, ctx, principal, error=error, status_code=422)
    if issued is None:
        return await _no_such_user(request, ctx, principal, username)
    response = await _users_page(request, ctx, principal, issued=issued)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/users/{username}/unlock")
async def unlock_page(
    request: Request, ctx: Ctx, principal: Viewer, username: Username, csrf: Csrf = ""
) -> Response:
    _admin(principal, csrf)
    try:
        await ctx.accounts.unlock(username, actor=principal.name)  # audits user.unlock
    except AuthError:
        return await _no_such_user(request, ctx, principal, username)
    return _back("user_unlocked", username)


@router.post("/users/{username}/password")
async def reset_password_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    username: Username,
    password: Secret,
    csrf: Csrf = "",
) -> Response:
    _admin(principal, csrf)
    problem = _password_problem(request, password)
    if problem is None:
        try:
            user = await ctx.accounts.reset_password(username, password, actor=principal)
        except AuthError as error:
            problem = str(error)
        else:
            if user is not None:
                return _back("password_was_reset", username)
            return await _no_such_user(request, ctx, principal, username)
    return await _users_page(request, ctx, principal, error=problem, status_code=422)


# -- own password ------------------------------------------------------------------------


@router.get("/account/password")
async def password_form(request: Request, principal: Viewer, done: str = "") -> HTMLResponse:
    return render(request, "account_password.html", principal, {"error": None, "done": bool(done)})


@router.post("/account/password")
async def change_password_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    current: Secret,
    new: Secret,
    repeat: Secret,
    csrf: Csrf = "",
) -> Response:
    _check_form_csrf(principal, csrf)
    t = i18n.texts(language_of(request))
    problem = _password_problem(request, new, repeat)
    code = 422
    retry_after = None
    if problem is None:
        result = await change_and_audit(request, ctx, principal, current, new)
        if isinstance(result, LoginOk):
            return RedirectResponse(
                "/account/password?done=1", status_code=status.HTTP_303_SEE_OTHER
            )
        if isinstance(result, LoginRefused):
            problem, code = t["too_many_attempts"], status.HTTP_429_TOO_MANY_REQUESTS
            retry_after = str(result.retry_after_s)
        else:
            problem, code = t["wrong_current_password"], status.HTTP_400_BAD_REQUEST
    response = render(
        request,
        "account_password.html",
        principal,
        {"error": problem, "done": False},
        status_code=code,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response
