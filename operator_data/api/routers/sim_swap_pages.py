"""The SIM-swap page: the list (filter by state), a request form for the helpdesk, and
approve/reject buttons for supervisors. Each form posts and is answered by a redirect
back to the list with a fixed notice code (shown in the page's language), so a reload
does not post twice and no exception text reaches the page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from operator_data.api import sim_swaps
from operator_data.api.auth import Principal, Role
from operator_data.api.deps import Ctx, audit
from operator_data.api.routers.page_kit import check_csrf, render
from operator_data.api.routers.pages import Viewer
from operator_data.registry.models import Conflict, RegistryError
from operator_data.store.states import IllegalTransition
from operator_data.store.transitions import NotFound

router = APIRouter(include_in_schema=False)

SwapId = Annotated[int, Path(ge=1, le=2**62)]
Csrf = Annotated[str, Form(max_length=128)]
Text = Annotated[str, Form(max_length=1000)]

DONE = frozenset({"requested", "approved", "rejected"})
#: Why a form came back: fixed codes, each a text of helpdesk_texts (`swap_problem_*`).
PROBLEMS = frozenset(
    {"bad_meter", "bad_number", "not_found", "conflict", "own_request", "decided", "long_text"}
)
MAX_TEXT = 500


def _back(*, done: str | None = None, problem: str | None = None) -> RedirectResponse:
    query = {"done": done} if done else {"problem": problem or "conflict"}
    return RedirectResponse("/sim-swaps?" + urlencode(query), status_code=status.HTTP_303_SEE_OTHER)


def _problem(error: Exception) -> str:
    if isinstance(error, NotFound):
        return "not_found"
    if isinstance(error, IllegalTransition):
        return "decided"
    if isinstance(error, Conflict):
        return "conflict"
    if "someone other than its requester" in str(error):
        return "own_request"
    return "bad_number"


@router.get("/sim-swaps")
async def swaps_page(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    state: str = "",
    done: str = "",
    problem: str = "",
) -> HTMLResponse:
    error = None
    rows: list[dict[str, object]] = []
    try:
        wanted = sim_swaps.parse_state(state[:32])
    except sim_swaps.BadSwapFilter:
        error = "swap_problem_bad_filter"  # said so, and no unfiltered rows
    else:
        async with ctx.store.read() as conn:
            rows = await sim_swaps.list_swaps(conn, principal.role, state=wanted)
    return render(
        request,
        "sim_swaps.html",
        principal,
        {
            "rows": rows,
            "state": state[:32],
            "states": sim_swaps.STATES,
            "error": error,
            "done": f"swap_done_{done}" if done in DONE else "",
            "problem": f"swap_problem_{problem}" if problem in PROBLEMS else "",
            "can_decide": principal.role.allows(Role.SUPERVISOR),
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
    )


@router.post("/sim-swaps")
async def request_form(
    ctx: Ctx,
    principal: Viewer,
    csrf: Csrf,
    meter_number: Annotated[str, Form(max_length=64)] = "",
    new_msisdn: Annotated[str, Form(max_length=64)] = "",
    reason: Text = "",
) -> Response:
    check_csrf(principal, csrf)
    meter = meter_number.strip()
    if not (len(meter) == 11 and meter.isdigit()):
        return _back(problem="bad_meter")
    if len(reason) > MAX_TEXT:
        return _back(problem="long_text")
    try:
        swap = await ctx.registry.request_sim_swap(
            meter, new_msisdn, requested_by=principal.name, reason=reason.strip() or None
        )
    except (RegistryError, NotFound) as error:
        return _back(problem=_problem(error))
    await audit(
        ctx,
        principal,
        "action.request_sim_swap",
        "sim_swap",
        str(swap.swap_id),
        {"meter_number": meter},
    )
    return _back(done="requested")


async def _decide(
    ctx: Ctx, principal: Principal, swap_id: int, approve: bool, note: str
) -> Response:
    if not principal.role.allows(Role.SUPERVISOR):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "role supervisor required")
    if len(note) > MAX_TEXT:
        return _back(problem="long_text")
    try:
        if approve:
            await ctx.actions.approve_sim_swap(swap_id, principal.name)
        else:
            await ctx.registry.reject_sim_swap(
                swap_id, rejected_by=principal.name, note=note.strip() or None
            )
    except (RegistryError, NotFound, IllegalTransition) as error:
        return _back(problem=_problem(error))
    action = "action.approve_sim_swap" if approve else "action.reject_sim_swap"
    await audit(ctx, principal, action, "sim_swap", str(swap_id))
    return _back(done="approved" if approve else "rejected")


@router.post("/sim-swaps/{swap_id}/approve")
async def approve_form(
    ctx: Ctx, principal: Viewer, swap_id: SwapId, csrf: Csrf, note: Text = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _decide(ctx, principal, swap_id, True, note)


@router.post("/sim-swaps/{swap_id}/reject")
async def reject_form(
    ctx: Ctx, principal: Viewer, swap_id: SwapId, csrf: Csrf, note: Text = ""
) -> Response:
    check_csrf(principal, csrf)
    return await _decide(ctx, principal, swap_id, False, note)
