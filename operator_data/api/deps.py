"""Request-scoped plumbing: the app context, who is calling, role checks, audit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from fastapi.templating import Jinja2Templates
from sqlalchemy import insert

from operator_data.api import i18n
from operator_data.api.auth import Accounts, Principal, Role
from operator_data.api.metrics import AppMetrics
from operator_data.api.providers import Actions, Ap2tHistoryProvider, StatusProvider
from operator_data.registry import Registry
from operator_data.settings import Settings
from operator_data.store import Store, schema

SESSION_COOKIE = "pintar_session"
LANGUAGE_COOKIE = "pintar_lang"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Machine API key")


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    store: Store
    registry: Registry
    accounts: Accounts
    status: StatusProvider
    ap2t: Ap2tHistoryProvider
    actions: Actions
    templates: Jinja2Templates
    metrics: AppMetrics
    clock: Callable[[], datetime]


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


# Where the request gate (operator_data/api/request_gate.py) leaves the caller it looked
# up before the body was read, so that the route's dependencies do not look again.
_PRINCIPAL_KEY = "pintar_principal"


async def resolve_principal(request: Request, ctx: AppContext) -> Principal | None:
    """The caller by X-API-Key or session cookie (None: anonymous), looked up once per
    request."""
    state = request.scope.setdefault("state", {})
    if _PRINCIPAL_KEY in state:
        cached: Principal | None = state[_PRINCIPAL_KEY]
        return cached
    principal: Principal | None = None
    api_key = request.headers.get("X-API-Key")
    token = request.cookies.get(SESSION_COOKIE)
    if api_key:
        principal = await ctx.accounts.by_api_key(api_key)
    elif token:
        principal = await ctx.accounts.by_session(token)
    state[_PRINCIPAL_KEY] = principal
    return principal


async def optional_principal(
    request: Request,
    ctx: Ctx,
    api_key: Annotated[str | None, Depends(api_key_header)] = None,
) -> Principal | None:
    # `api_key` is declared for the OpenAPI security scheme; resolve_principal reads it.
    del api_key
    return await resolve_principal(request, ctx)


async def api_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: X-API-Key header or a session cookie",
        )
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the caller, who must hold `role` or a higher one."""

    async def check(
        principal: Annotated[Principal, Depends(api_principal)], request: Request
    ) -> Principal:
        if not principal.role.allows(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {role.value} required")
        if request.method not in ("GET", "HEAD", "OPTIONS") and principal.via == "session":
            await _check_csrf(request, principal)
        return principal

    return check


async def _check_csrf(request: Request, principal: Principal) -> None:
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if sent != principal.csrf_token():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


Helpdesk = Annotated[Principal, Depends(require(Role.HELPDESK))]
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


async def audit(
    ctx: AppContext,
    principal: Principal,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One audit_log row: who (principal), what (action, subject), when (clock), why
    (detail["reason"] where the caller gave one)."""
    record = {"via": principal.via, "role": principal.role.value, **(detail or {})}
    async with ctx.store.begin() as conn:
        await conn.execute(
            insert(schema.audit_log).values(
                at=ctx.clock(),
                actor=principal.name,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                detail=record,
            )
        )


def language_of(request: Request) -> str:
    return i18n.pick_language(
        request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    )
