"""The incident queue over the API: list, detail, assign, note, link, resolve, reopen."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from operator_data.api import incident_queue as iq
from operator_data.api.deps import Ctx, Helpdesk, Supervisor, audit

router = APIRouter(prefix="/api/v1", tags=["incidents"])

ItemId = Annotated[int, Path(ge=1, le=2**62)]
State = Literal["open", "assigned", "resolved"]


class IncidentSummary(BaseModel):
    id: int
    category: str | None
    subject: str
    state: State
    assigned_to: str | None
    opened_at: datetime
    resolved_at: datetime | None
    customer_id: str | None
    meter_number: str | None
    msisdn: str | None = Field(description="masked for the helpdesk role")
    transaction_id: str | None


class IncidentLink(BaseModel):
    kind: Literal["transaction", "meter", "message", "alarm", "customer", "phone"]
    ref: str
    added_by: str | None = Field(description="None: set by the hub when it opened the item")
    added_at: datetime | None


class IncidentEvent(BaseModel):
    at: datetime
    actor: str
    action: Literal["assign", "note", "resolve", "reopen", "link"]
    state: State
    assigned_to: str | None
    note: str | None


class IncidentDetail(IncidentSummary):
    hub_notes: str | None
    links: list[IncidentLink]
    history: list[IncidentEvent]


class IncidentQueue(BaseModel):
    items: list[IncidentSummary]
    next_cursor: str | None


class Assignment(BaseModel):
    assigned_to: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=iq.MAX_NOTE)


class Note(BaseModel):
    note: str = Field(min_length=1, max_length=iq.MAX_NOTE)


class Resolution(BaseModel):
    resolution: str = Field(min_length=3, max_length=iq.MAX_NOTE)


class Link(BaseModel):
    kind: Literal["transaction", "meter", "message", "alarm"]
    ref: str = Field(min_length=1, max_length=26)


def _refused(problem: iq.IncidentProblem) -> HTTPException:
    return HTTPException(problem.status, str(problem))


@router.get("/incidents", summary="Incident queue, newest first", response_model=IncidentQueue)
async def list_incidents(
    ctx: Ctx,
    principal: Helpdesk,
    state: Annotated[
        str, Query(description="open, assigned, resolved or all; empty: open and assigned")
    ] = "",
    assigned_to: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    try:
        async with ctx.store.read() as conn:
            page = await iq.queue(
                conn, principal, state=state, assigned_to=assigned_to, limit=limit, cursor=cursor
            )
    except iq.IncidentProblem as problem:
        raise _refused(problem) from problem
    return {"items": page.rows, "next_cursor": page.next_cursor}


@router.get("/incidents/{item_id}", summary="One incident", response_model=IncidentDetail)
async def get_incident(ctx: Ctx, principal: Helpdesk, item_id: ItemId) -> dict[str, Any]:
    async with ctx.store.read() as conn:
        found = await iq.detail(conn, principal, item_id)
    await audit(ctx, principal, "view.incident", "incident", str(item_id))
    return found


@router.post(
    "/incidents/{item_id}/assign",
    summary="Assign (helpdesk: to oneself; supervisor: to anyone)",
    response_model=IncidentDetail,
)
async def assign_incident(
    ctx: Ctx, principal: Helpdesk, item_id: ItemId, body: Assignment
) -> dict[str, Any]:
    try:
        return await iq.assign(ctx, principal, item_id, body.assigned_to, body.note)
    except iq.IncidentProblem as problem:
        raise _refused(problem) from problem


@router.post("/incidents/{item_id}/notes", summary="Add a note", response_model=IncidentDetail)
async def note_incident(
    ctx: Ctx, principal: Helpdesk, item_id: ItemId, body: Note
) -> dict[str, Any]:
    try:
        return await iq.add_note(ctx, principal, item_id, body.note)
    except iq.IncidentProblem as problem:
        raise _refused(problem) from problem


@router.post(
    "/incidents/{item_id}/links",
    summary="Link a transaction, meter, message or alarm",
    response_model=IncidentDetail,
)
async def link_incident(
    ctx: Ctx, principal: Helpdesk, item_id: ItemId, body: Link
) -> dict[str, Any]:
    try:
        return await iq.add_link(ctx, principal, item_id, body.kind, body.ref)
    except iq.IncidentProblem as problem:
        raise _refused(problem) from problem


@router.post("/incidents/{item_id}/resolve", summary="Resolve", response_model=IncidentDetail)
async def resolve_incident(
    ctx: Ctx, principal: Helpdesk, item_id: ItemId, body: Resolution
) -> dict[str, Any]:
    try:
        return await iq.resolve(ctx, principal, item_id, body.resolution)
    except iq.IncidentProblem as problem:
        raise _refused(problem) from problem


@router.post(
    "/incidents/{item_id}/reopen", summary="Reopen (supervisor)", response_model=IncidentDetail
)
async def reopen_incident(
    ctx: Ctx, principal: Supervisor, item_id: ItemId, body: Note
) -> dict[str, Any]:
    try:
        return await iq.reopen(ctx, principal, item_id, body.note)
    except iq.IncidentProblem as problem:
        raise _refused(problem) from problem
