"""The incident queue's pages: the queue, one incident, and its forms (take/assign,
note, link, resolve, reopen). Each form posts, and the answer is a redirect back to the
incident with a fixed notice code, so a reload does not post twice."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import incident_queue as iq
from operator_data.api.auth import Role
from operator_data.api.deps import Ctx, audit
from operator_data.api.queries import BadCursor
from operator_data.api.routers.page_kit import check_csrf, render
from operator_data.api.routers.pages import Viewer

router = APIRouter(include_in_schema=False)

ItemId = Annotated[int, Path(ge=1, le=2**62)]
Csrf = Annotated[str, Form(max_length=128)]
# Long enough to reach the queue's own check, which says what is wrong; a longer post is
# refused by FastAPI before it.
NoteField = Annotated[str, Form(max_length=iq.MAX_NOTE * 2)]

#: The problems a form can come back with: codes of our own, shown as fixed texts.
PROBLEMS = frozenset(
    {
        "note_length",
        "resolution_required",
        "unknown_user",
        "assign_others",
        "reopen_supervisor",
        "wrong_state",
        "bad_link",
    }
)


def _back(item_id: int, *, problem: str | None = None) -> RedirectResponse:
    query = {"problem": problem} if problem else {"done": "1"}
    return RedirectResponse(
        f"/incidents/{item_id}?" + urlencode(query), status_code=status.HTTP_303_SEE_OTHER
    )


@router.get("/incidents")
async def queue_page(
    request: Request, ctx: Ctx, principal: Viewer, state: str = "", cursor: str = ""
) -> HTMLResponse:
    error = None
    page = iq.QueuePage([], None)
    try:
        async with ctx.store.read() as conn:
            page = await iq.queue(
                conn, principal, state=state[:16], assigned_to=None, limit=50, cursor=cursor or None
            )
    except iq.IncidentProblem:
        error = "problem_bad_filter"
    except BadCursor:
        error = "bad_cursor"
    filters = {"state": state} if state else {}
    return render(
        request,
        "incidents.html",
        principal,
        {
            "rows": page.rows,
            "state": state,
            "states": iq.STATES,
            "error": error,
            "next_url": "/incidents?" + urlencode({**filters, "cursor": page.next_cursor})
            if page.next_cursor
            else None,
            "first_url": "/incidents?" + urlencode(filters),
            "paged": bool(cursor),
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
    )


@router.get("/incidents/{item_id}")
async def incident_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    item_id: ItemId,
    done: str = "",
    problem: str = "",
) -> HTMLResponse:
    async with ctx.store.read() as conn:
        item = await iq.detail(conn, principal, item_id)  # NotFound -> 404 page
        users = await iq.helpdesk_users(conn)
    await audit(ctx, principal, "view.incident", "incident", str(item_id))
    return render(
        request,
        "incident.html",
        principal,
        {
            "item": item,
            "users": users,
            "done": done == "1",
            "problem": f"problem_{problem}" if problem in PROBLEMS else "",
            "link_kinds": list(iq.LINK_KINDS),
            "can_assign_others": principal.role.allows(Role.SUPERVISOR),
        },
    )


async def _act(item_id: int, action: Awaitable[object]) -> Response:
    try:
        await action
    except iq.IncidentProblem as problem:
        return _back(item_id, problem=problem.code)
    return _back(item_id)


@router.post("/incidents/{item_id}/assign")
async def assign_form(
    ctx: Ctx,
    principal: Viewer,
    item_id: ItemId,
    csrf: Csrf,
    assigned_to: Annotated[str, Form(max_length=64)] = "",
    note: NoteField = "",
) -> Response:
    check_csrf(principal, csrf)
    to = assigned_to or principal.name
    return await _act(item_id, iq.assign(ctx, principal, item_id, to, note))


@router.post("/incidents/{item_id}/notes")
async def note_form(
    ctx: Ctx, principal: Viewer, item_id: ItemId, csrf: Csrf, note: NoteField = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _act(item_id, iq.add_note(ctx, principal, item_id, note))


@router.post("/incidents/{item_id}/links")
async def link_form(
    ctx: Ctx,
    principal: Viewer,
    item_id: ItemId,
    csrf: Csrf,
    kind: Annotated[str, Form(max_length=16)] = "",
    ref: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    check_csrf(principal, csrf)
    return await _act(item_id, iq.add_link(ctx, principal, item_id, kind, ref))


@router.post("/incidents/{item_id}/resolve")
async def resolve_form(
    ctx: Ctx, principal: Viewer, item_id: ItemId, csrf: Csrf, resolution: NoteField = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _act(item_id, iq.resolve(ctx, principal, item_id, resolution))


@router.post("/incidents/{item_id}/reopen")
async def reopen_form(
    ctx: Ctx, principal: Viewer, item_id: ItemId, csrf: Csrf, note: NoteField = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _act(item_id, iq.reopen(ctx, principal, item_id, note))
