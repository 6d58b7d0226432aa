"""What a demo run reports: live counters while it runs, and the summary at the end.

The summary checks the books from three independent sides: the P2APST simulator's ledger
(what was paid), the simulated meters (what was credited) and the simulated phones (what
customers were told), with the hub's own records explaining every difference.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from meter_sim.meter.state_store import token_digest
from operator_data.sla.report import sla_report
from operator_data.store import schema
from p2apst_adapter.ap2t.delivery import HttpUpload
from p2apst_adapter.simulator.ledger import LedgerEntry

if TYPE_CHECKING:
    from operator_data.demo.run import World

WIB = ZoneInfo("Asia/Jakarta")
_T = schema.transactions
# States after which the hub has nothing more to do for a purchase without a person.
_SETTLED = {"reported", "declined", "applied", "meter_rejected", "meter_timeout"}


@dataclass
class Counters:
    purchases_asked: int = 0
    sla_breaches: int = 0

    def breach(self) -> None:
        self.sla_breaches += 1


async def _scalar(world: World, query: Any) -> int:
    async with world.store.read() as conn:
        return int(await conn.scalar(query) or 0)


def _credited_tokens(world: World) -> dict[str, int]:
    """token_digest → how often meters credited it (meters keep no clear token at rest)."""
    seen: Tally[str] = Tally()
    for meter in world.fleet.meters:
        for record in meter.credited:
            seen[record.digest] += 1
    return dict(seen)


def _was_credited(entry: LedgerEntry, credited: dict[str, int]) -> bool:
    return entry.token is not None and token_digest(entry.token) in credited


async def _transaction_states(world: World) -> dict[str, str]:
    """switcher reference → the hub transaction's state."""
    async with world.store.read() as conn:
        rows = await conn.execute(select(_T.c.switcher_ref, _T.c.state))
        return {ref: state for ref, state in rows if ref}


async def _unsettled(world: World) -> int:
    """Paid purchases neither credited nor settled by the hub (0 does not yet mean the
    run is settled: see `_settled`)."""
    credited = _credited_tokens(world)
    states = await _transaction_states(world)
    return sum(
        1
        for entry in world.simulator.ledger.paid()
        if not _was_credited(entry, credited)
        and states.get(entry.switcher_reference) not in _SETTLED
    )


async def _settled(world: World) -> bool:
    if await _unsettled(world):
        return False
    states = await _transaction_states(world)
    # Purchases the hub still has open (advising, waiting for a meter) are not settled.
    if any(state not in _SETTLED for state in states.values()):
        return False
    # A customer SMS accepted (logged) but not yet answered is work in hand.
    if await _unanswered(world):
        return False
    # A receipt is queued when its token is applied and reaches the phone a moment later.
    # Without network loss every one comes, so wait for them all (with loss one may not).
    # The meters remember the credits of earlier runs on this data dir, the phones do not.
    credited = len(_credited_tokens(world)) - world.credited_before
    return bool(world.options.faults.loss) or len(world.fleet.ledger().receipts) >= credited


async def _unanswered(world: World) -> int:
    m = schema.messages
    return await _scalar(
        world,
        select(func.count())
        .select_from(m)
        .where(
            m.c.direction == "in",
            m.c.flow == "customer_to_hub",
            m.c.state == "received",
        ),
    )


#: Why a purchase in each state is still open, for the summary.
_OPEN_BECAUSE = {
    "requested": "waiting for P2APST (the inquiry, or the purchase not yet sent)",
    "submitted": "waiting for P2APST's answer to the purchase (2210)",
    "advising": "waiting for P2APST's answer to an advice",
    "token_issued": "token frame not yet taken by the network",
    "token_sent": "waiting for the meter's TOKEN_RESULT",
    "applied": "token applied; report to P2APST not yet acknowledged",
    "meter_rejected": "meter refused the token; report not yet acknowledged",
    "meter_timeout": "meter never answered; report not yet acknowledged",
}


async def _open_work(world: World) -> dict[str, Any]:
    """What the hub still has in hand when the summary is taken, and why."""
    outbox = schema.outbox
    async with world.store.read() as conn:
        rows = await conn.execute(
            select(_T.c.state, func.count())
            .where(_T.c.state.in_(list(_OPEN_BECAUSE)))
            .group_by(_T.c.state)
        )
        purchases = {
            str(state): {"count": int(count), "why": _OPEN_BECAUSE[str(state)]}
            for state, count in rows
        }
        queued = int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)
    return {
        "purchases": purchases,
        "customer_sms_unanswered": await _unanswered(world),
        "sms_in_outbox": queued,
        "sms_in_outbox_why": (
            "queued, or handed to a gateway and waiting for its send result or status report"
        ),
    }


#: Seconds between two drain progress reports.
PROGRESS_EVERY = 5.0


async def _drain(
    world: World,
    seconds: float,
    cut: asyncio.Event | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> dict[str, Any]:
    """Lets answers in flight come home: until every paid purchase is settled, `seconds`
    have passed or `cut` is set. `progress(elapsed, unsettled)` every few seconds."""
    cut = cut or asyncio.Event()
    clock = asyncio.get_running_loop().time
    start = clock()
    deadline = start + seconds
    reported = start
    settled = False
    while not cut.is_set() and clock() < deadline:
        if await _settled(world):
            settled = True
            break
        if progress is not None and clock() - reported >= PROGRESS_EVERY:
            reported = clock()
            progress(reported - start, await _unsettled(world))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(cut.wait(), 1.0)
    return {
        "settled": settled,
        "cut_short": cut.is_set() and not settled,
        "seconds": round(clock() - start, 1),
        "limit_s": seconds,
    }


async def _helpdesk_meters(world: World) -> set[str]:
    items = schema.helpdesk_items
    async with world.store.read() as conn:
        rows = await conn.execute(
            select(items.c.meter_number).where(items.c.meter_number.is_not(None))
        )
        return {meter for (meter,) in rows}


async def _losses(
    world: World, paid: list[LedgerEntry], credited: dict[str, int]
) -> list[dict[str, Any]]:
    states = await _transaction_states(world)
    helpdesk = await _helpdesk_meters(world)
    lost = []
    for entry in paid:
        if _was_credited(entry, credited):
            continue
        state = states.get(entry.switcher_reference)
        surfaced = entry.meter_number in helpdesk
        lost.append(
            {
                "reference": entry.switcher_reference,
                "meter_number": entry.meter_number,
                "hub_state": state,
                "surfaced_to_helpdesk": surfaced,
                "reason": (
                    "meter refused the token" if state == "meter_rejected"
                    else "meter never answered" if state == "meter_timeout"
                    else "no hub transaction" if state is None
                    else f"stopped at {state}"
                ),
                "silent": not surfaced and state not in ("meter_rejected", "meter_timeout"),
            }
        )  # fmt: skip
    return lost


async def _sla(world: World) -> dict[str, Any]:
    today = datetime.now(WIB).date()
    report = await sla_report(
        world.store, world.settings.sla, today - timedelta(days=1), today + timedelta(days=1)
    )
    document = report.to_dict()
    breaches = Tally(breach["stage"] for breach in document["breaches"])
    stages = {}
    for stage in document["stages"]:
        total = stage["total"]
        stages[stage["stage"]] = {
            key: total.get(key)
            for key in ("count", "within_target", "percent_within", "p50_ms", "p95_ms", "p99_ms")
        } | {"breaches": breaches[stage["stage"]]}
    return {"stages": stages, "breaches_signalled": world.counters.sla_breaches}


async def _ap2t(world: World) -> dict[str, Any]:
    from operator_data.ap2t_source import Ap2tJob

    job = Ap2tJob(
        world.store,
        world.options.data_dir / "ap2t",
        HttpUpload(f"{world.ap2t_url}/ap2t/batches", world.ap2t.token),
    )
    day: date = datetime.now(WIB).date()
    try:
        ack = await job.deliver(day, attempts=3, first_delay=0.5)
    except Exception as error:  # the demo reports it; it must not hide the rest
        return {"delivered": False, "error": str(error)}
    batch = world.ap2t.batches.get(day.isoformat())
    return {
        "delivered": True,
        "receipt": ack.receipt,
        "records": batch.manifest.record_count if batch else None,
    }


async def collect_summary(
    world: World,
    *,
    drain: float,
    cut: asyncio.Event | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> dict[str, Any]:
    """Drains (see `_drain`), then checks the books. A resumed run's books include the
    purchases of the runs before it: `resumed` says how many were paid then."""
    drained = await _drain(world, drain, cut, progress)
    paid = list(world.simulator.ledger.paid())
    credited = _credited_tokens(world)
    ledger = world.fleet.ledger()
    transactions = schema.transactions
    states = schema.transaction_states
    tokens_delivered = await _scalar(
        world,
        select(func.count(func.distinct(states.c.transaction_id))).where(
            states.c.state == "token_sent"
        ),
    )
    lost = await _losses(world, paid, credited)
    # The phones remember only this run; the simulator's books every run on this data dir.
    duplicate_purchases = max(0, len(paid) - world.paid_before - ledger.purchases_sent)
    messages = schema.messages
    per_transaction = (
        select(messages.c.transaction_id)
        .where(messages.c.kind == "receipt", messages.c.direction == "out")
        .group_by(messages.c.transaction_id)
        .having(func.count() > 1)
        .subquery()
    )
    hub_double_receipts = await _scalar(world, select(func.count()).select_from(per_transaction))
    return {
        "finished_at": datetime.now(UTC).isoformat(),
        "meters": world.options.meters,
        "modems": world.options.modems,
        "profile": str(world.options.profile),
        "seed": world.options.seed,
        "drain": drained,
        "resumed": {
            "runs_before": world.simulator.ledger.starts - 1,
            "paid_before": world.paid_before,
        },
        "purchases_asked": ledger.purchases_sent,
        "purchases_paid": len(paid),
        "tokens_delivered": tokens_delivered,
        "tokens_applied": len(credited),
        "receipts_sent": len(ledger.receipts),
        "telemetry_received": await _scalar(
            world, select(func.count()).select_from(schema.telemetry_readings)
        ),
        "transactions": await _scalar(world, select(func.count()).select_from(transactions)),
        "lost": lost,
        "silent_losses": sum(1 for item in lost if item["silent"]),
        "open": await _open_work(world),
        "duplicates": {
            "total": len(ledger.double_credits) + duplicate_purchases + hub_double_receipts,
            "double_purchases": duplicate_purchases,
            "double_credits": list(ledger.double_credits),
            "receipts_sent_twice_by_the_hub": hub_double_receipts,
            # The network's own duplication (a fault the demo injects) shows a phone the
            # same SMS twice; the hub sent it once.
            "receipts_seen_twice_by_phones": list(ledger.duplicate_receipts),
        },
        "customer_ledger": ledger.as_dict(),
        "sla": await _sla(world),
        "ap2t": await _ap2t(world),
    }
