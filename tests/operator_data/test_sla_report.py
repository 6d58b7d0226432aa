"""The SLA report from a scripted scenario with known timings, on SQLite and PostgreSQL.

Ten purchases go through the real transition functions with explicit timestamps; every
figure below is computed by hand from the chosen durations (nearest-rank percentiles).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.settings import SlaTargets
from operator_data.sla import SlaReport, sla_report
from operator_data.sla.events import record_events
from operator_data.store import MessageState, Store, TransactionState, schema
from operator_data.store.messages import enqueue_outbound, set_message_state
from operator_data.store.reporting_schema import ap2t_batches
from operator_data.store.states import Flow
from operator_data.store.transactions import create_transaction, set_transaction_state
from tests.operator_data.reporting_seed import customer_id, insert_meters, meter_number

pytestmark = pytest.mark.timeout(60)

T = TransactionState
WIB = timedelta(hours=7)
# token issued -> token SMS `sent` (s); sent -> meter answer (s, None = never); answer -> reported (ms)
TO_NETWORK_S = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]
ANSWER_S: list[int | None] = [10, 20, 30, 40, 50, 60, 120, 240, 301, None]
REPORT_MS = [100, 200, 300, 400, 500, 1000, 2000, 4999, 5001]


def issued_at(i: int) -> datetime:
    """tx 0-4 on 2 March (WIB), tx 5-9 on 3 March WIB (tx 5 is still 2 March in UTC)."""
    if i < 5:
        return datetime(2026, 3, 2, 10, i, tzinfo=UTC) - WIB
    return datetime(2026, 3, 3, 0, 30 + i, tzinfo=UTC) - WIB


async def purchase(conn: AsyncConnection, i: int, issued: datetime) -> str:
    tx, _ = await create_transaction(
        conn,
        idempotency_key=f"buy-{i}-{issued.isoformat()}",
        meter_number=meter_number(i),
        customer_id=customer_id(i),
        amount_idr=20_000,
        at=issued - timedelta(seconds=3),
    )
    await set_transaction_state(conn, tx.id, T.SUBMITTED, at=issued - timedelta(seconds=2))
    await set_transaction_state(conn, tx.id, T.TOKEN_ISSUED, at=issued)
    return tx.id


async def send_token(conn: AsyncConnection, tx_id: str, i: int, issued: datetime, s: int) -> None:
    message, _ = await enqueue_outbound(
        conn,
        flow=Flow.HUB_TO_METER,
        idempotency_key=f"token-{tx_id}",
        destination="+628112000001",
        payload=b"frame",
        meter_number=meter_number(i),
        transaction_id=tx_id,
        at=issued + timedelta(milliseconds=10),
    )
    await set_message_state(
        conn, message.id, MessageState.SUBMITTED, at=issued + timedelta(seconds=s / 2)
    )
    await set_message_state(conn, message.id, MessageState.SENT, at=issued + timedelta(seconds=s))
    await set_transaction_state(conn, tx_id, T.TOKEN_SENT, at=issued + timedelta(seconds=s))


async def scenario(store: Store) -> list[str]:
    ids = []
    async with store.begin() as conn:
        await insert_meters(conn, range(11), datetime(2026, 1, 1, tzinfo=UTC))
        for i in range(10):
            issued = issued_at(i)
            tx = await purchase(conn, i, issued)
            ids.append(tx)
            await send_token(conn, tx, i, issued, TO_NETWORK_S[i])
            answer = ANSWER_S[i]
            if answer is None:
                continue
            answered = issued + timedelta(seconds=TO_NETWORK_S[i] + answer)
            outcome = T.METER_REJECTED if i == 7 else T.APPLIED
            await set_transaction_state(conn, tx, outcome, at=answered)
            await set_transaction_state(
                conn, tx, T.REPORTED, at=answered + timedelta(milliseconds=REPORT_MS[i])
            )
        # Outside the period (4 March WIB): must not be counted.
        late = datetime(2026, 3, 4, 1, 0, tzinfo=UTC) - WIB
        tx = await purchase(conn, 10, late)
        await send_token(conn, tx, 10, late, 30)
        # AP2T acknowledgements: 23.5 h apart, then 25.5 h apart (a breach of 24 h).
        acks = [
            datetime(2026, 3, 2, 1, 0, tzinfo=UTC) - WIB,
            datetime(2026, 3, 3, 0, 30, tzinfo=UTC) - WIB,
            datetime(2026, 3, 4, 2, 0, tzinfo=UTC) - WIB,
        ]
        for n, ack in enumerate(acks):
            await conn.execute(
                ap2t_batches.insert().values(
                    day=date(2026, 3, 1 + n),
                    generated_at=ack - timedelta(minutes=5),
                    file=f"ap2t-2026030{1 + n}.csv",
                    sha256="0" * 64,
                    record_count=1,
                    corrections=0,
                    acknowledged_at=ack,
                    receipt=f"R{n}",
                    delivery="dir:/tmp",
                )
            )
    return ids


AS_OF = datetime(2026, 3, 6, tzinfo=UTC)


async def report(store: Store, group: str = "day") -> SlaReport:
    return await sla_report(
        store, SlaTargets(), date(2026, 3, 2), date(2026, 3, 4), group=group, as_of=AS_OF
    )


def stage(rep: SlaReport, name: str) -> Any:
    found = [s for s in rep.to_dict()["stages"] if s["stage"] == name]
    assert len(found) == 1
    return found[0]


async def test_token_to_network(store: Store) -> None:
    ids = await scenario(store)
    s = stage(await report(store), "token_to_network")
    assert s["target_ms"] == 10_000
    assert s["total"] == {
        "period": "total",
        "count": 10,
        "completed": 10,
        "within_target": 9,
        "overdue": 0,
        "pending": 0,
        "percent_within": 90.0,
        "p50_ms": 5000,
        "p95_ms": 12000,
        "p99_ms": 12000,
    }
    day1, day2 = s["periods"]
    assert (day1["period"], day1["count"], day1["within_target"]) == ("2026-03-02", 5, 5)
    assert (day1["p50_ms"], day1["p95_ms"], day1["percent_within"]) == (3000, 5000, 100.0)
    assert (day2["period"], day2["count"], day2["within_target"]) == ("2026-03-03", 5, 4)
    assert (day2["p50_ms"], day2["p95_ms"], day2["percent_within"]) == (8000, 12000, 80.0)
    rep = await report(store)
    breaches = [b for b in rep.breaches if b.stage == "token_to_network"]
    assert [(b.subject_id, b.duration_ms, b.target_ms) for b in breaches] == [
        (ids[9], 12000, 10_000)
    ]


async def test_meter_answer_counts_a_silent_meter_as_overdue(store: Store) -> None:
    ids = await scenario(store)
    rep = await report(store, "month")
    s = stage(rep, "meter_answer")
    assert s["total"] == {
        "period": "total",
        "count": 10,
        "completed": 9,
        "within_target": 8,
        "overdue": 1,
        "pending": 0,
        "percent_within": 80.0,
        "p50_ms": 50_000,
        "p95_ms": 301_000,
        "p99_ms": 301_000,
    }
    assert [p["period"] for p in s["periods"]] == ["2026-03"]
    breaches = [(b.subject_id, b.duration_ms) for b in rep.breaches if b.stage == "meter_answer"]
    assert breaches == [(ids[8], 301_000), (ids[9], None)]


async def test_a_silent_meter_is_pending_until_its_target_passes(store: Store) -> None:
    await scenario(store)
    sent = issued_at(9) + timedelta(seconds=12)
    early = await sla_report(
        store,
        SlaTargets(),
        date(2026, 3, 2),
        date(2026, 3, 4),
        as_of=sent + timedelta(seconds=299),
    )
    total = stage(early, "meter_answer")["total"]
    assert (total["count"], total["overdue"], total["pending"]) == (9, 0, 1)


async def test_report_to_p2apst(store: Store) -> None:
    ids = await scenario(store)
    rep = await report(store)
    s = stage(rep, "report_to_p2apst")
    assert s["total"] == {
        "period": "total",
        "count": 9,
        "completed": 9,
        "within_target": 8,
        "overdue": 0,
        "pending": 0,
        "percent_within": 88.89,
        "p50_ms": 500,
        "p95_ms": 5001,
        "p99_ms": 5001,
    }
    breaches = [
        (b.subject_id, b.duration_ms) for b in rep.breaches if b.stage == "report_to_p2apst"
    ]
    assert breaches == [(ids[8], 5001)]


async def test_ap2t_batch_interval(store: Store) -> None:
    await scenario(store)
    rep = await report(store)
    s = stage(rep, "ap2t_batch_interval")
    assert s["target_ms"] == 24 * 3600 * 1000
    total = s["total"]
    assert (total["count"], total["within_target"], total["p50_ms"]) == (2, 1, 84_600_000)
    breaches = [
        (b.subject_id, b.duration_ms) for b in rep.breaches if b.stage == "ap2t_batch_interval"
    ]
    assert breaches == [("2026-03-02", 91_800_000)]


async def test_targets_come_from_settings(store: Store) -> None:
    await scenario(store)
    rep = await sla_report(
        store,
        SlaTargets(token_to_network_s=5.0),
        date(2026, 3, 2),
        date(2026, 3, 4),
        as_of=AS_OF,
    )
    total = stage(rep, "token_to_network")["total"]
    assert (total["within_target"], total["percent_within"]) == (5, 50.0)


async def test_csv_has_a_header_and_a_row_per_stage_period(store: Store) -> None:
    await scenario(store)
    lines = (await report(store)).to_csv().splitlines()
    assert lines[0].startswith("stage,target_ms,period,count,")
    assert "token_to_network,10000,2026-03-03,5,5,4,0,0,80.0,8000,12000,12000" in lines
    assert "token_to_network,10000,total,10,10,9,0,0,90.0,5000,12000,12000" in lines


async def test_empty_period(store: Store) -> None:
    rep = await report(store)
    for s in rep.stages:
        assert s.periods == ()
        assert s.total.count == 0 and s.total.percent_within is None
    with pytest.raises(ValueError, match="empty period"):
        await sla_report(store, SlaTargets(), date(2026, 3, 4), date(2026, 3, 4))


async def test_record_events_writes_each_measurement_once(store: Store) -> None:
    ids = await scenario(store)
    start, end = datetime(2026, 3, 1, 17, tzinfo=UTC), datetime(2026, 3, 3, 17, tzinfo=UTC)
    added = await record_events(store, SlaTargets(), start, end, as_of=AS_OF)
    # completed or overdue, per stage; p2apst_response 10, receipt_to_customer 8 (applied,
    # no receipt SMS in the scenario: overdue)
    assert added == 10 + 10 + 9 + 2 + 10 + 8
    assert await record_events(store, SlaTargets(), start, end, as_of=AS_OF) == 0
    ev = schema.sla_events
    async with store.read() as conn:
        rows = {
            (r.metric, r.subject_id): r
            for r in await conn.execute(
                select(ev).where(ev.c.subject_id.in_([ids[9], "2026-03-02"]))
            )
        }
    slow = rows[("token_to_network", ids[9])]
    assert (slow.duration_ms, slow.target_ms, slow.met) == (12_000, 10_000, False)
    silent = rows[("meter_answer", ids[9])]
    assert (silent.ended_at, silent.duration_ms, silent.met) == (None, None, False)
    assert rows[("ap2t_batch_interval", "2026-03-02")].duration_ms == 91_800_000
