"""The complaint pages: the queue, recording a call, one complaint with its forms (take or
assign, note, link, third party, resolve, reopen), and the monthly and annual reports.
Each form posts and is answered with a redirect carrying a fixed notice code, so a
reload does not post twice."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import complaint_desk as desk
from operator_data.api import complaint_texts
from operator_data.api.auth import Principal, Role
from operator_data.api.deps import Ctx, language_of
from operator_data.api.present import wib
from operator_data.api.queries import BadCursor
from operator_data.api.routers import pages
from operator_data.api.routers.page_kit import check_csrf
from operator_data.api.routers.pages import Viewer
from operator_data.complaints import store as cs
from operator_data.complaints.calendar import WIB

router = APIRouter(include_in_schema=False)

Key = Annotated[str, Path(min_length=14, max_length=26)]
Csrf = Annotated[str, Form(max_length=128)]
# Long enough to reach the store's own check, which says what is wrong.
TextField = Annotated[str, Form(max_length=cs.MAX_TEXT * 2)]
Short = Annotated[str, Form(max_length=32)]

PROBLEMS = frozenset(
    {
        "note_length",
        "text_length",
        "resolution_required",
        "reason_required",
        "unknown_user",
        "assign_others",
        "reopen_supervisor",
        "third_party_supervisor",
        "wrong_state",
        "bad_link",
        "bad_category",
        "bad_field",
        "who_required",
        "bad_resolution_code",
    }
)


def _render(
    request: Request,
    name: str,
    principal: Principal,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> HTMLResponse:
    return pages.render(
        request,
        name,
        principal,
        {"t": complaint_texts.texts(language_of(request)), "wib": wib, **context},
        status_code=status_code,
    )


def _back(key: str, *, problem: str | None = None) -> RedirectResponse:
    query = {"problem": problem} if problem else {"done": "1"}
    return RedirectResponse(
        f"/complaints/{key}?" + urlencode(query), status_code=status.HTTP_303_SEE_OTHER
    )


def _today(ctx: Ctx) -> date:
    return ctx.clock().astimezone(WIB).date()


@router.get("/complaints")
async def queue_page(
    request: Request, ctx: Ctx, principal: Viewer, state: str = "", cursor: str = ""
) -> HTMLResponse:
    error = None
    page = desk.Page([], None)
    try:
        page = await desk.queue(ctx, principal, state=state[:16], limit=50, cursor=cursor or None)
    except cs.ComplaintProblem:
        error = "problem_bad_filter"
    except BadCursor:
        error = "bad_cursor"
    filters = {"state": state} if state else {}
    return _render(
        request,
        "complaints.html",
        principal,
        {
            "rows": page.rows,
            "state": state,
            "states": cs.STATES,
            "error": error,
            "today": _today(ctx),
            "next_url": "/complaints?" + urlencode({**filters, "cursor": page.next_cursor})
            if page.next_cursor
            else None,
            "first_url": "/complaints?" + urlencode(filters),
            "paged": bool(cursor),
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
    )


def _form_page(
    request: Request, principal: Principal, values: dict[str, str], problem: str = ""
) -> HTMLResponse:
    return _render(
        request,
        "complaint_new.html",
        principal,
        {
            "values": values,
            "categories": cs.CATEGORIES,
            "channels": cs.CHANNELS,
            "problem": f"problem_{problem}" if problem in PROBLEMS else "",
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if problem else 200,
    )


@router.get("/complaints/new")
async def new_page(
    request: Request,
    principal: Viewer,
    customer_id: str = "",
    meter_number: str = "",
    msisdn: str = "",
) -> HTMLResponse:
    # Prefilled from the customer or meter page the call started on.
    values = {"customer_id": customer_id[:12], "meter_number": meter_number[:11]}
    values["msisdn"] = msisdn[:16]
    return _form_page(request, principal, values)


@router.post("/complaints")
async def create_form(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    csrf: Csrf,
    category: Short = "",
    channel: Short = "call",
    text: TextField = "",
    customer_id: Short = "",
    meter_number: Short = "",
    msisdn: Short = "",
) -> Response:
    check_csrf(principal, csrf)
    try:
        complaint_id = await desk.record(
            ctx,
            principal,
            channel=channel,
            category=category,
            text=text,
            customer_id=customer_id,
            meter_number=meter_number,
            msisdn=msisdn,
        )
    except cs.ComplaintProblem as problem:
        values = {
            "category": category,
            "channel": channel,
            "text": text[: cs.MAX_TEXT],
            "customer_id": customer_id,
            "meter_number": meter_number,
            "msisdn": msisdn,
        }
        return _form_page(request, principal, values, problem.code)
    return RedirectResponse(
        f"/complaints/{complaint_id}?created=1", status_code=status.HTTP_303_SEE_OTHER
    )


def _need_supervisor(principal: Principal) -> None:
    if not principal.role.allows(Role.SUPERVISOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role supervisor required")


@router.get("/complaints/report")
async def report_page(
    request: Request, ctx: Ctx, principal: Viewer, month: str = ""
) -> HTMLResponse:
    _need_supervisor(principal)
    today = _today(ctx)
    month = month.strip()[:16] or f"{today.year:04d}-{today.month:02d}"
    try:
        found = await desk.monthly_report(ctx, principal, month)
    except cs.ComplaintProblem:
        return _render(
            request,
            "complaints_report.html",
            principal,
            {"report": None, "month": month, "error": "problem_bad_month"},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    return _render(
        request,
        "complaints_report.html",
        principal,
        {"report": found, "month": month, "error": None},
    )


@router.get("/complaints/annual")
async def annual_page(
    request: Request, ctx: Ctx, principal: Viewer, year: str = ""
) -> HTMLResponse:
    _need_supervisor(principal)
    text = year.strip() or str(_today(ctx).year)
    if not (text.isdigit() and len(text) == 4 and 2000 <= int(text) <= 2100):
        return _render(
            request,
            "complaints_annual.html",
            principal,
            {"summary": None, "year": text[:8], "error": "problem_bad_month"},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    found = await desk.annual_report(ctx, principal, int(text))
    return _render(
        request,
        "complaints_annual.html",
        principal,
        {"summary": found, "year": text, "error": None},
    )


@router.get("/complaints/{key}")
async def complaint_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    key: Key,
    done: str = "",
    created: str = "",
    problem: str = "",
) -> HTMLResponse:
    item = await desk.detail(ctx, principal, key)  # not found -> 404 page
    return _render(
        request,
        "complaint.html",
        principal,
        {
            "item": item,
            "users": await desk.users(ctx),
            "done": done == "1",
            "created": created == "1",
            "problem": f"problem_{problem}" if problem in PROBLEMS else "",
            "codes": cs.RESOLUTION_CODES,
            "link_kinds": cs.LINK_KINDS,
            "today": _today(ctx),
            "can_assign_others": principal.role.allows(Role.SUPERVISOR),
        },
    )


async def _act(key: str, action: Awaitable[str]) -> Response:
    try:
        complaint_id = await action
    except cs.ComplaintProblem as problem:
        return _back(key, problem=problem.code)
    return _back(complaint_id)


@router.post("/complaints/{key}/assign")
async def assign_form(
    ctx: Ctx,
    principal: Viewer,
    key: Key,
    csrf: Csrf,
    assigned_to: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(principal, csrf)
    return await _act(key, desk.assign(ctx, principal, key, assigned_to or principal.name))


@router.post("/complaints/{key}/notes")
async def note_form(
    ctx: Ctx, principal: Viewer, key: Key, csrf: Csrf, note: TextField = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _act(key, desk.note(ctx, principal, key, note))


@router.post("/complaints/{key}/links")
async def link_form(
    ctx: Ctx,
    principal: Viewer,
    key: Key,
    csrf: Csrf,
    kind: Short = "",
    ref: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(principal, csrf)
    return await _act(key, desk.link(ctx, principal, key, kind, ref))


@router.post("/complaints/{key}/third-party")
async def third_party_form(
    ctx: Ctx,
    principal: Viewer,
    key: Key,
    csrf: Csrf,
    third_party: Short = "",
    reason: TextField = "",
) -> Response:
    check_csrf(principal, csrf)
    return await _act(key, desk.third_party(ctx, principal, key, third_party == "1", reason))


@router.post("/complaints/{key}/resolve")
async def resolve_form(
    ctx: Ctx,
    principal: Viewer,
    key: Key,
    csrf: Csrf,
    code: Short = "",
    resolution: TextField = "",
) -> Response:
    check_csrf(principal, csrf)
    return await _act(key, desk.resolve(ctx, principal, key, code, resolution))


@router.post("/complaints/{key}/reopen")
async def reopen_form(
    ctx: Ctx, principal: Viewer, key: Key, csrf: Csrf, note: TextField = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _act(key, desk.reopen(ctx, principal, key, note))
