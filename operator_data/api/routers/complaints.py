"""Complaints over the API: record, list, detail, assign, note, link, third-party flag,
resolve, reopen, and the monthly and annual reports (supervisor)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, Field

from operator_data.api import complaint_desk as desk
from operator_data.api.deps import Ctx, Helpdesk, Supervisor
from operator_data.complaints import store as cs

router = APIRouter(prefix="/api/v1", tags=["complaints"])

Key = Annotated[str, Path(min_length=14, max_length=26, description="ticket (ADU-…) or id")]
State = Literal["open", "assigned", "resolved"]
Category = Literal["tagihan", "token", "gangguan", "layanan", "lainnya"]
Code = Literal["solved", "refund", "token_resent", "explained", "no_fault", "referred"]
Text = Annotated[str, Field(min_length=1, max_length=cs.MAX_TEXT)]


class ComplaintSummary(BaseModel):
    id: str
    ticket: str
    channel: Literal["call", "sms", "other"]
    category: str
    state: State
    assigned_to: str | None
    customer_id: str | None
    meter_number: str | None
    msisdn: str | None = Field(description="masked for the helpdesk role")
    third_party: bool = Field(description="caused by a third party: excluded from the target")
    received_at: datetime
    due_on: date = Field(description="the 15th working day after the day received (WIB)")
    final_due_on: date = Field(description="the last working day of the due day's month")
    resolved_at: datetime | None
    resolution_code: str | None


class ComplaintLink(BaseModel):
    kind: Literal["transaction", "message"]
    ref: str
    added_by: str
    added_at: datetime


class ComplaintEvent(BaseModel):
    at: datetime
    actor: str
    action: Literal["open", "assign", "note", "link", "third_party", "resolve", "reopen"]
    state: State
    assigned_to: str | None
    note: str | None


class ComplaintDetail(ComplaintSummary):
    text: str
    resolution: str | None
    opened_by: str
    links: list[ComplaintLink]
    history: list[ComplaintEvent]


class ComplaintQueue(BaseModel):
    items: list[ComplaintSummary]
    next_cursor: str | None


class NewComplaint(BaseModel):
    channel: Literal["call", "sms", "other"] = "call"
    category: Category
    text: Text
    customer_id: str | None = Field(default=None, max_length=12)
    meter_number: str | None = Field(default=None, max_length=11)
    msisdn: str | None = Field(default=None, max_length=16)


class Assignment(BaseModel):
    assigned_to: str = Field(min_length=1, max_length=64)


class Note(BaseModel):
    note: Text


class Link(BaseModel):
    kind: Literal["transaction", "message"]
    ref: str = Field(min_length=26, max_length=26)


class ThirdParty(BaseModel):
    third_party: bool
    reason: str = Field(min_length=3, max_length=cs.MAX_TEXT)


class Resolution(BaseModel):
    code: Code
    resolution: str = Field(min_length=3, max_length=cs.MAX_TEXT)


class Disruption(BaseModel):
    from_month: str
    to_month: str
    reports: int
    resolved: int
    resolved_pct: float | None
    customers: int
    per_1000_customers: float | None


class MonthlyReport(BaseModel):
    month: str
    measured: int = Field(description="due in the month, third-party-caused excluded")
    within_target: int
    within_target_pct: float | None
    by_month_end: int
    by_month_end_pct: float | None
    target_pct: float
    target_met: bool | None = Field(description="None until the month is over")
    late_tickets: list[str]
    third_party_excluded: int
    received: int
    resolved: int
    open_now: int
    by_category: dict[str, int]
    last_working_day: date
    final: bool
    calendar_gaps: list[int]
    disruption: Disruption


class AnnualMonth(BaseModel):
    month: str
    measured: int
    within_target_pct: float | None
    by_month_end_pct: float | None
    target_met: bool | None
    received: int


class AnnualReport(BaseModel):
    year: int
    months: list[AnnualMonth]
    measured: int
    within_target: int
    within_target_pct: float | None
    by_month_end: int
    by_month_end_pct: float | None
    received: int
    third_party_excluded: int
    months_target_met: int
    months_target_missed: int
    disruption: Disruption


def _refused(problem: cs.ComplaintProblem) -> HTTPException:
    return HTTPException(problem.status, str(problem))


@router.get("/complaints", summary="Complaints, newest first", response_model=ComplaintQueue)
async def list_complaints(
    ctx: Ctx,
    principal: Helpdesk,
    state: Annotated[
        str, Query(max_length=16, description="open, assigned, resolved or all; empty: working")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    try:
        page = await desk.queue(ctx, principal, state=state, limit=limit, cursor=cursor)
    except cs.ComplaintProblem as problem:
        raise _refused(problem) from problem
    return {"items": page.rows, "next_cursor": page.next_cursor}


@router.post(
    "/complaints", summary="Record a complaint", response_model=ComplaintDetail, status_code=201
)
async def create_complaint(ctx: Ctx, principal: Helpdesk, body: NewComplaint) -> dict[str, Any]:
    try:
        complaint_id = await desk.record(ctx, principal, **body.model_dump())
    except cs.ComplaintProblem as problem:
        raise _refused(problem) from problem
    return await desk.detail(ctx, principal, complaint_id, audit_view=False)


@router.get(
    "/complaints/report",
    summary="Monthly complaint figures (supervisor)",
    response_model=MonthlyReport,
)
async def complaint_report(
    ctx: Ctx,
    principal: Supervisor,
    month: Annotated[str, Query(min_length=7, max_length=7, description="YYYY-MM")],
) -> dict[str, Any]:
    try:
        return await desk.monthly_report(ctx, principal, month)
    except cs.ComplaintProblem as problem:
        raise _refused(problem) from problem


@router.get(
    "/complaints/annual",
    summary="Annual complaint summary (supervisor)",
    response_model=AnnualReport,
)
async def complaint_annual(
    ctx: Ctx, principal: Supervisor, year: Annotated[int, Query(ge=2000, le=2100)]
) -> dict[str, Any]:
    return await desk.annual_report(ctx, principal, year)


@router.get("/complaints/{key}", summary="One complaint", response_model=ComplaintDetail)
async def get_complaint(ctx: Ctx, principal: Helpdesk, key: Key) -> dict[str, Any]:
    return await desk.detail(ctx, principal, key)


async def _then_detail(ctx: Ctx, principal: Any, action: Any) -> dict[str, Any]:
    try:
        complaint_id = await action
    except cs.ComplaintProblem as problem:
        raise _refused(problem) from problem
    return await desk.detail(ctx, principal, complaint_id, audit_view=False)


@router.post(
    "/complaints/{key}/assign",
    summary="Assign (helpdesk: to oneself; supervisor: to anyone)",
    response_model=ComplaintDetail,
)
async def assign_complaint(
    ctx: Ctx, principal: Helpdesk, key: Key, body: Assignment
) -> dict[str, Any]:
    return await _then_detail(ctx, principal, desk.assign(ctx, principal, key, body.assigned_to))


@router.post("/complaints/{key}/notes", summary="Add a note", response_model=ComplaintDetail)
async def note_complaint(ctx: Ctx, principal: Helpdesk, key: Key, body: Note) -> dict[str, Any]:
    return await _then_detail(ctx, principal, desk.note(ctx, principal, key, body.note))


@router.post(
    "/complaints/{key}/links",
    summary="Link a transaction or message",
    response_model=ComplaintDetail,
)
async def link_complaint(ctx: Ctx, principal: Helpdesk, key: Key, body: Link) -> dict[str, Any]:
    return await _then_detail(ctx, principal, desk.link(ctx, principal, key, body.kind, body.ref))


@router.post(
    "/complaints/{key}/third-party",
    summary="Mark as caused by a third party, or not (supervisor)",
    response_model=ComplaintDetail,
)
async def third_party_complaint(
    ctx: Ctx, principal: Supervisor, key: Key, body: ThirdParty
) -> dict[str, Any]:
    return await _then_detail(
        ctx, principal, desk.third_party(ctx, principal, key, body.third_party, body.reason)
    )


@router.post(
    "/complaints/{key}/resolve",
    summary="Resolve with a resolution code",
    response_model=ComplaintDetail,
)
async def resolve_complaint(
    ctx: Ctx, principal: Helpdesk, key: Key, body: Resolution
) -> dict[str, Any]:
    return await _then_detail(
        ctx, principal, desk.resolve(ctx, principal, key, body.code, body.resolution)
    )


@router.post(
    "/complaints/{key}/reopen", summary="Reopen (supervisor)", response_model=ComplaintDetail
)
async def reopen_complaint(ctx: Ctx, principal: Supervisor, key: Key, body: Note) -> dict[str, Any]:
    return await _then_detail(ctx, principal, desk.reopen(ctx, principal, key, body.note))
