"""Pages of the message detail, purchase search, outbox (supervisor), token resend and
gateway status; server-rendered, no script (the gateway page refreshes with a meta tag,
which the CSP does not govern)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import ops_texts, ops_views
from operator_data.api import resend as resend_module
from operator_data.api.auth import Principal, Role
from operator_data.api.deps import Ctx, language_of
from operator_data.api.message_detail import BadSearch, TransactionSearch
from operator_data.api.outbox_view import Refused
from operator_data.api.present import wib
from operator_data.api.routers import pages
from operator_data.api.routers.pages import Viewer

router = APIRouter(include_in_schema=False)

Ulid = Annotated[str, Path(pattern=r"^[0-9A-Z]{26}$")]
OutboxId = Annotated[int, Path(ge=1, le=2**62)]
Short = Annotated[str, Query(max_length=64)]
#: What `?done=` may say on the outbox page: fixed texts, never words from the link.
OUTBOX_DONE = {"retried": "outbox_retried", "cancelled": "outbox_cancelled"}


def _render(
    request: Request, name: str, principal: Principal, context: dict[str, Any], code: int = 200
) -> HTMLResponse:
    return pages.render(
        request,
        name,
        principal,
        {"t": ops_texts.texts(language_of(request)), "wib": wib, **context},
        status_code=code,
    )


def _check_csrf(principal: Principal, csrf: str) -> None:
    pages._check_form_csrf(principal, csrf)


@router.get("/messages/{message_id}")
async def message_page(
    request: Request, ctx: Ctx, principal: Viewer, message_id: Ulid
) -> HTMLResponse:
    data = await ops_views.message(ctx, principal, message_id)
    offer = False
    if data["transaction_id"] and principal.role.allows(Role.SUPERVISOR):
        state = await resend_module.current_state(ctx, data["transaction_id"])
        offer = resend_module.allowed(state)
    return _render(request, "message.html", principal, {"m": data, "offer_resend": offer})


@router.get("/find")
async def find_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    pln_ref: Short = "",
    switcher_ref: Short = "",
    token_suffix: Short = "",
    meter_number: Short = "",
    customer_id: Short = "",
) -> HTMLResponse:
    filters = {
        "pln_ref": pln_ref.strip(),
        "switcher_ref": switcher_ref.strip(),
        "token_suffix": token_suffix.strip(),
        "meter_number": meter_number.strip(),
        "customer_id": customer_id.strip(),
    }
    asked = any(filters[k] for k in ("pln_ref", "switcher_ref", "token_suffix"))
    rows: list[dict[str, Any]] = []
    error = None
    if asked:
        search = TransactionSearch(**{k: v or None for k, v in filters.items()})
        try:
            rows = await ops_views.find_transactions(ctx, principal, search)
        except BadSearch as problem:
            error = str(problem)
    code = 422 if error else 200
    return _render(
        request,
        "find.html",
        principal,
        {"rows": rows, "filters": filters, "asked": asked, "error": error},
        code,
    )


@router.get("/outbox")
async def outbox_page(
    request: Request, ctx: Ctx, principal: Viewer, done: Short = ""
) -> HTMLResponse:
    pages._need(principal, Role.SUPERVISOR)
    return await _outbox(request, ctx, principal, notice=OUTBOX_DONE.get(done))


async def _outbox(
    request: Request,
    ctx: Ctx,
    principal: Principal,
    *,
    notice: str | None = None,
    refused: str | None = None,
    code: int = 200,
) -> HTMLResponse:
    data = await ops_views.outbox(ctx, principal)
    t = ops_texts.texts(language_of(request))
    return _render(
        request,
        "outbox.html",
        principal,
        {"data": data, "done": t[notice] if notice else "", "refused": refused, "now": ctx.clock()},
        code,
    )


@router.post("/outbox/{outbox_id}/{action}")
async def outbox_action_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    outbox_id: OutboxId,
    action: Annotated[str, Path(pattern=r"^(retry|cancel)$")],
    csrf: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    _check_csrf(principal, csrf)
    pages._need(principal, Role.SUPERVISOR)
    reason = reason.strip()
    t = ops_texts.texts(language_of(request))
    if not 3 <= len(reason) <= 200:
        return await _outbox(request, ctx, principal, refused=t["reason_required"], code=422)
    try:
        done = await ops_views.outbox_action(ctx, principal, outbox_id, action, reason)
    except Refused as problem:
        return await _outbox(request, ctx, principal, refused=str(problem), code=409)
    return RedirectResponse(f"/outbox?done={done['result']}", status_code=303)


@router.get("/transactions/{transaction_id}/resend-token")
async def resend_form(
    request: Request, ctx: Ctx, principal: Viewer, transaction_id: Ulid
) -> HTMLResponse:
    pages._need(principal, Role.SUPERVISOR)
    state = await resend_module.current_state(ctx, transaction_id)
    return _render(
        request,
        "resend.html",
        principal,
        {
            "tid": transaction_id,
            "state": state,
            "offer": resend_module.allowed(state),
            "outcome": None,
            "error": None,
        },
    )


@router.post("/transactions/{transaction_id}/resend-token")
async def resend_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    transaction_id: Ulid,
    csrf: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=400)] = "",
) -> HTMLResponse:
    _check_csrf(principal, csrf)
    pages._need(principal, Role.SUPERVISOR)
    reason = reason.strip()
    if not 3 <= len(reason) <= 200:
        state = await resend_module.current_state(ctx, transaction_id)
        t = ops_texts.texts(language_of(request))
        context = {
            "tid": transaction_id,
            "state": state,
            "offer": resend_module.allowed(state),
            "outcome": None,
            "error": t["reason_required"],
        }
        return _render(request, "resend.html", principal, context, 422)
    outcome = await ops_views.resend(ctx, principal, transaction_id, reason)
    code = {"resent": 200, "not_allowed": 409, "refused": 409, "unavailable": 503}
    return _render(
        request,
        "resend.html",
        principal,
        {
            "tid": quote(transaction_id),
            "state": outcome["state"],
            "offer": False,
            "outcome": outcome,
            "error": None,
        },
        code[outcome["outcome"]],
    )


@router.get("/gateways")
async def gateways_page(request: Request, ctx: Ctx, principal: Viewer) -> HTMLResponse:
    data = await ops_views.gateways(ctx)
    return _render(request, "gateways.html", principal, {"data": data})
