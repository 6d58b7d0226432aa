"""Work that is stuck is seen: an incident for every accepted purchase still without
P2APST's answer after `hub.stuck_purchase_after_s`, and for every report to P2APST still
unacknowledged after `hub.stuck_report_after_s` — once per purchase (the incident names
it), so that none ends accepted-but-unpaid or unreported without the helpdesk knowing.
(A paid token the meter never applies is escalated by the delivery sweep already.)

Run by the hub's sweep, once per cluster. Reads by index only: open transactions by
(state, state_at), unacknowledged reports by (acknowledged, created_at), earlier incidents
by transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from operator_data.hub.context import HubContext
from operator_data.hub.formatting import short_ref
from operator_data.hub.helpdesk import open_incident
from operator_data.hub.lifecycle import OPEN
from operator_data.store import TransactionState, schema
from operator_data.store.workflow_schema import hub_reports

log = logging.getLogger("operator_data.hub.stuck")
T = TransactionState
PURCHASE_STUCK = "purchase_stuck"
REPORT_STUCK = "report_unacknowledged"


async def flag_stuck(ctx: HubContext, limit: int = 200) -> int:
    """Open the incidents due now; returns how many were opened."""
    now = ctx.now()
    hub = ctx.settings.hub
    t = schema.transactions
    async with ctx.store.read() as conn:
        purchases = list(
            await conn.execute(
                select(t.c.id, t.c.state, t.c.customer_id, t.c.meter_number, t.c.phone_msisdn)
                .where(
                    t.c.state.in_(sorted(s.value for s in OPEN)),
                    t.c.state_at <= now - timedelta(seconds=hub.stuck_purchase_after_s),
                )
                .order_by(t.c.state_at)
                .limit(limit)
            )
        )
        reports = list(
            await conn.execute(
                select(hub_reports.c.transaction_id)
                .where(
                    hub_reports.c.acknowledged.is_(False),
                    hub_reports.c.created_at <= now - timedelta(seconds=hub.stuck_report_after_s),
                    hub_reports.c.transaction_id.is_not(None),
                )
                .order_by(hub_reports.c.created_at)
                .limit(limit)
            )
        )
    candidates = {r.id for r in purchases} | {str(r.transaction_id) for r in reports}
    if not candidates:
        return 0
    items = schema.helpdesk_items
    opened = 0
    async with ctx.unit() as (conn, _):
        flagged = {
            (str(tx), str(category))
            for tx, category in await conn.execute(
                select(items.c.transaction_id, items.c.category).where(
                    items.c.transaction_id.in_(sorted(candidates)),
                    items.c.category.in_([PURCHASE_STUCK, REPORT_STUCK]),
                )
            )
        }
        for r in purchases:
            if (r.id, PURCHASE_STUCK) in flagged:
                continue
            await open_incident(
                conn,
                category=PURCHASE_STUCK,
                subject=f"Purchase {short_ref(r.id)} still {r.state}: no answer from P2APST",
                notes=(
                    f"accepted, still {r.state} after {hub.stuck_purchase_after_s:.0f} s; "
                    "the hub keeps driving it (inquiry, purchase, advices)"
                ),
                at=now,
                customer_id=r.customer_id,
                meter_number=r.meter_number,
                msisdn=r.phone_msisdn,
                transaction_id=r.id,
            )
            opened += 1
        for r in reports:
            tx = str(r.transaction_id)
            if (tx, REPORT_STUCK) in flagged:
                continue
            await open_incident(
                conn,
                category=REPORT_STUCK,
                subject=f"Report of purchase {short_ref(tx)} not acknowledged by P2APST",
                notes=(
                    f"recorded more than {hub.stuck_report_after_s:.0f} s ago; "
                    "the client keeps sending it"
                ),
                at=now,
                transaction_id=tx,
            )
            opened += 1
    if opened:
        log.warning("%d stuck purchase(s) or report(s) opened as helpdesk incidents", opened)
    return opened
