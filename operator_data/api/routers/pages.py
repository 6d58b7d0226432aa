"""Server-rendered pages of the helpdesk (Jinja2, Bahasa Indonesia or English).

The pages call the same `views` functions as the JSON API, so masking and audit are
identical; page POSTs carry the session's CSRF token in a hidden field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.msisdn import MsisdnError, normalise
from operator_data.api import (
    charts,
    helpdesk_texts,
    i18n,
    list_filters,
    message_dates,
    queries,
    views,
)
from operator_data.api.auth import LoginGuard, LoginOk, LoginRefused, Principal, Role
from operator_data.api.deps import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    AppContext,
    Ctx,
    audit,
    get_ctx,
    language_of,
    optional_principal,
)
from operator_data.api.present import WIB, wib
from operator_data.api.providers import ActionUnavailable
from operator_data.store.states import Direction, Flow, MessageState
from operator_data.store.transitions import NotFound

router = APIRouter(include_in_schema=False)

_ULID = re.compile(r"[0-9A-Z]{26}")


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to /login."""


async def page_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None or principal.via != "session":
        raise LoginRequired
    return principal


Viewer = Annotated[Principal, Depends(page_principal)]


def render(
    request: Request,
    name: str,
    principal: Principal | None,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    ctx: AppContext = get_ctx(request)
    lang = language_of(request)
    response = ctx.templates.TemplateResponse(
        request,
        name,
        {
            "t": i18n.texts(lang),
            "lang": lang,
            "principal": principal,
            "csrf": principal.csrf_token() if principal else "",
            "is_supervisor": principal is not None and principal.role.allows(Role.SUPERVISOR),
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, lang, samesite="lax", max_age=365 * 86400)
    return response


def _check_form_csrf(principal: Principal, csrf: str) -> None:
    if csrf != principal.csrf_token():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


def _need(principal: Principal, role: Role) -> None:
    if not principal.role.allows(role):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {role.value} required")


# -- login -------------------------------------------------------------------------------


def login_guard(request: Request, ctx: AppContext) -> LoginGuard:
    """The app's LoginGuard, made on first use (it holds the per-address counts)."""
    guard: LoginGuard | None = getattr(request.app.state, "login_guard", None)
    if guard is None:
        guard = LoginGuard(ctx.store, ctx.settings.web, clock=ctx.clock)
        request.app.state.login_guard = guard
    return guard


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return render(request, "login.html", None, {"error": False, "refused": False})


@router.post("/login")
async def login(
    request: Request,
    ctx: Ctx,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    client = request.client.host if request.client else None
    result = await login_guard(request, ctx).login(username, password, client)
    if isinstance(result, LoginRefused):
        refused = render(
            request,
            "login.html",
            None,
            {"error": False, "refused": True},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        refused.headers["Retry-After"] = str(result.retry_after_s)
        return refused
    if not isinstance(result, LoginOk):
        return render(
            request, "login.html", None, {"error": True, "refused": False}, status_code=401
        )
    user = result.user
    token = await ctx.accounts.open_session(user)
    await audit(
        ctx, Principal(user, "session"), "session.login", "user", user.username, {"ip": client}
    )
    response = RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)
    # Strict SameSite plus the form CSRF token: no cross-site request carries the session.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(ctx: Ctx, principal: Viewer, csrf: Annotated[str, Form()]) -> Response:
    _check_form_csrf(principal, csrf)
    if principal.session_token:
        await ctx.accounts.close_session(principal.session_token)
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE)
    return response


# -- home and search ---------------------------------------------------------------------


def classify(query: str) -> tuple[str, str] | None:
    """What a search box entry is: ("meter", n) for 11 digits, ("customer", id) for 12,
    ("transaction", ulid), ("msisdn", +62...) for a phone number, or None."""
    text = query.strip()
    compact = re.sub(r"[\s-]", "", text)
    if re.fullmatch(r"[0-9]{11}", compact) and not compact.startswith("0"):
        return ("meter", compact)
    if re.fullmatch(r"[0-9]{12}", compact) and not compact.startswith(("0", "62")):
        return ("customer", compact)
    if _ULID.fullmatch(text.upper()) and len(text) == 26:
        return ("transaction", text.upper())
    try:
        return ("msisdn", normalise(compact))
    except MsisdnError:
        pass
    if re.fullmatch(r"[0-9]{11}", compact):
        return ("meter", compact)
    if re.fullmatch(r"[0-9]{12}", compact):
        return ("customer", compact)
    return None


@router.get("/")
async def home(request: Request, ctx: Ctx, principal: Viewer) -> HTMLResponse:
    dashboard = await views.sla_dashboard(ctx, days=14)
    status_ = await views.gateway_status(ctx)
    async with ctx.store.read() as conn:
        open_alarms = len(await queries.alarm_queue(conn, include_acknowledged=False, limit=500))
    return render(
        request,
        "home.html",
        principal,
        {
            "error": False,
            "query": "",
            "volume_chart": _volume_chart(dashboard, request),
            "outbox_pending": status_["outbox_pending"],
            "open_alarms": open_alarms,
            "sla_today": dashboard["today"],
        },
    )


@router.get("/search")
async def search(request: Request, principal: Viewer, q: str = "") -> Response:
    found = classify(q[:64])
    if found is None:
        return render(
            request,
            "home.html",
            principal,
            {
                "error": True,
                "query": q[:64],
                "volume_chart": None,
                "outbox_pending": None,
                "open_alarms": None,
                "sla_today": [],
            },
            status_code=200,
        )
    kind, value = found
    target = {
        "meter": f"/meters/{value}",
        "customer": f"/customers/{value}",
        "transaction": f"/transactions/{value}",
        "msisdn": "/messages?" + urlencode({"msisdn": value}),
    }[kind]
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


# -- message log -------------------------------------------------------------------------


@router.get("/messages")
async def messages_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    msisdn: str = "",
    meter_number: str = "",
    customer_id: str = "",
    state: str = "",
    flow: str = "",
    direction: str = "",
    cursor: str = "",
    from_: Annotated[str, Query(alias="from", max_length=32)] = "",
    until: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    error = None
    number = None
    # Date range (WIB days, both inclusive): a range that cannot be read shows no rows.
    span = message_dates.parse_range(from_, until)
    # A filter that cannot be used is refused by name, and no rows are shown (item 11).
    bad = list_filters.bad_message_filters(
        meter_number=meter_number,
        customer_id=customer_id,
        state=state,
        flow=flow,
        direction=direction,
    )
    if msisdn:
        try:
            number = normalise(msisdn[:32], mobile_only=False)
        except MsisdnError:
            bad.insert(0, "msisdn")
    where = queries.MessageFilter(
        msisdn=number,
        meter_number=meter_number if re.fullmatch(r"[0-9]{11}", meter_number) else None,
        customer_id=customer_id if re.fullmatch(r"[0-9]{12}", customer_id) else None,
        state=state if state in MessageState.__members__.values() else None,
        flow=Flow(flow) if flow in Flow.__members__.values() else None,
        direction=Direction(direction) if direction in ("in", "out") else None,
        since=None if span is None else span[0],
        until=None if span is None else span[1],
    )
    try:
        if span is None:
            raise message_dates.BadDates
        if bad:
            raise list_filters.BadFilter(bad)
        page = await views.search(
            ctx, principal, where, limit=50, cursor=cursor or None, reason=None
        )
    except queries.BadCursor:
        page = queries.Page([], None)
        error = helpdesk_texts.texts(language_of(request))["bad_cursor"]
        bad.append("cursor")  # refused like a filter: 4xx, no rows
    except message_dates.BadDates:
        page = queries.Page([], None)
        error = message_dates.bad_dates_text(language_of(request))
    except list_filters.BadFilter as refused:
        page = queries.Page([], None)
        error = list_filters.refusal_text(refused.names, language_of(request))
    params = {
        k: v
        for k, v in {
            "msisdn": msisdn,
            "meter_number": meter_number,
            "customer_id": customer_id,
            "state": state,
            "flow": flow,
            "direction": direction,
            "from": from_,
            "until": until,
        }.items()
        if v
    }
    next_url = (
        "/messages?" + urlencode({**params, "cursor": page.next_cursor})
        if page.next_cursor
        else None
    )
    return render(
        request,
        "messages.html",
        principal,
        {
            "rows": page.rows,
            "filters": params,
            "next_url": next_url,
            "first_url": "/messages?" + urlencode(params),
            "paged": bool(cursor),
            "error": error,
            "flows": [f.value for f in Flow],
            "states": [s.value for s in MessageState],
            "wib": wib,
            "dates": message_dates.labels(language_of(request)),
        },
        status_code=422 if span is None or bad else 200,
    )


# -- meter, customer, transaction --------------------------------------------------------


@router.get("/meters/{meter_number}")
async def meter_page(
    request: Request, ctx: Ctx, principal: Viewer, meter_number: str
) -> HTMLResponse:
    data = await views.meter(ctx, principal, meter_number, None)
    return render(request, "meter.html", principal, {"data": data, "wib": wib})


@router.get("/customers/{customer_id}")
async def customer_form(request: Request, principal: Viewer, customer_id: str) -> HTMLResponse:
    """The reason form. The reason goes in a POST body, not the URL, where it would stay
    in the browser's history and in proxies' and servers' access logs."""
    return render(request, "reason.html", principal, {"customer_id": quote(customer_id, safe="")})


@router.post("/customers/{customer_id}")
async def customer_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    customer_id: str,
    csrf: Annotated[str, Form(max_length=128)],
    reason: Annotated[str, Form(max_length=400)] = "",
) -> HTMLResponse:
    _check_form_csrf(principal, csrf)
    reason = reason.strip()[:200]
    if len(reason) < 3:
        return render(
            request,
            "reason.html",
            principal,
            {"customer_id": quote(customer_id, safe="")},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    data = await views.customer(ctx, principal, customer_id, reason)
    return render(request, "customer.html", principal, {"data": data, "wib": wib})


#: What `?done=` may say on a transaction page: a code from our own redirect, shown as a
#: fixed text (i18n key), so no link can put words of its own on the helpdesk's screen.
DONE_NOTICES = {"resent": "done_resent", "unavailable": "done_unavailable"}


@router.get("/transactions/{transaction_id}")
async def transaction_page(
    request: Request, ctx: Ctx, principal: Viewer, transaction_id: str, done: str = ""
) -> HTMLResponse:
    data = await views.transaction(ctx, principal, transaction_id, None)
    notice = DONE_NOTICES.get(done)
    return render(
        request,
        "transaction.html",
        principal,
        {
            "data": data,
            "wib": wib,
            "done": i18n.texts(language_of(request))[notice] if notice else "",
            "happy_path": queries.HAPPY_PATH,
        },
    )


@router.post("/transactions/{transaction_id}/resend")
async def resend_page(
    ctx: Ctx,
    principal: Viewer,
    transaction_id: str,
    csrf: Annotated[str, Form()],
    reason: Annotated[str, Form(min_length=3, max_length=200)],
) -> Response:
    _check_form_csrf(principal, csrf)
    _need(principal, Role.SUPERVISOR)
    await audit(
        ctx, principal, "action.resend_token", "transaction", transaction_id, {"reason": reason}
    )
    try:
        await ctx.actions.resend_token(transaction_id, principal.name, reason)
        done = "resent"
    except ActionUnavailable:
        done = "unavailable"
    return RedirectResponse(
        f"/transactions/{quote(transaction_id)}?" + urlencode({"done": done}),
        status_code=status.HTTP_303_SEE_OTHER,
    )


# -- dashboards --------------------------------------------------------------------------


def _volume_chart(dashboard: dict[str, Any], request: Request) -> Any:
    t = i18n.texts(language_of(request))
    labels = [d["day_start"].astimezone(WIB).strftime("%d/%m") for d in dashboard["daily"]]
    return charts.bar_chart(labels, [d["sms"] for d in dashboard["daily"]], t["sms_volume"])


def target_text(target_ms: int) -> str:
    """A stage's target as read on the SLA page: '20 s', '300 s', '24 h'."""
    if target_ms % 3_600_000 == 0:
        return f"{target_ms // 3_600_000} h"
    return f"{target_ms / 1000:g} s"


@router.get("/sla")
async def sla_page(request: Request, ctx: Ctx, principal: Viewer) -> HTMLResponse:
    dashboard = await views.sla_dashboard(ctx, days=14)
    t = i18n.texts(language_of(request))
    labels = [d["day_start"].astimezone(WIB).strftime("%d/%m") for d in dashboard["daily"]]
    return render(
        request,
        "sla.html",
        principal,
        {
            "d": dashboard,
            "wib": wib,
            "target": target_text,
            "volume_chart": _volume_chart(dashboard, request),
            "sla_chart": charts.line_chart(
                labels, [d["sla_percent"] for d in dashboard["daily"]], t["sla_over_time"]
            ),
        },
    )


@router.get("/alarms")
async def alarms_page(request: Request, ctx: Ctx, principal: Viewer, all: str = "") -> HTMLResponse:
    async with ctx.store.read() as conn:
        rows = await queries.alarm_queue(conn, include_acknowledged=bool(all), limit=200)
    return render(request, "alarms.html", principal, {"rows": rows, "wib": wib, "all": bool(all)})


@router.post("/alarms/{alarm_id}/ack")
async def ack_page(
    ctx: Ctx,
    principal: Viewer,
    alarm_id: Annotated[int, Path(ge=1, le=2**62)],
    csrf: Annotated[str, Form()],
) -> Response:
    _check_form_csrf(principal, csrf)
    _need(principal, Role.SUPERVISOR)
    await ctx.actions.acknowledge_alarm(alarm_id, principal.name)
    await audit(ctx, principal, "action.acknowledge_alarm", "alarm", str(alarm_id))
    return RedirectResponse("/alarms", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/status")
async def status_page(request: Request, ctx: Ctx, principal: Viewer) -> HTMLResponse:
    data = await views.gateway_status(ctx)
    batches = await ctx.ap2t.batches(30)
    return render(request, "status.html", principal, {"data": data, "batches": batches, "wib": wib})


__all__ = ["LoginRequired", "NotFound", "classify", "router"]
