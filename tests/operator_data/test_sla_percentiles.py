"""The SQL percentiles and counts equal a plain Python nearest-rank computation."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from operator_data.settings import SlaTargets
from operator_data.sla import STAGES_BY_NAME, sla_report
from operator_data.store import Store, schema
from tests.operator_data.reporting_seed import customer_id, insert_meters, insert_rows, meter_number

pytestmark = pytest.mark.timeout(120)

ISSUED = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 WIB


def nearest_rank(values: list[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.integers(min_value=0, max_value=900_000), min_size=1, max_size=40))
async def test_matches_python(store: Store, durations_ms: list[int]) -> None:
    async with store.begin() as conn:
        await conn.execute(delete(schema.transaction_states))
        await conn.execute(delete(schema.transactions))
        if not await conn.scalar(
            schema.meters.select().with_only_columns(schema.meters.c.meter_number).limit(1)
        ):
            await insert_meters(conn, range(1), ISSUED)
        txs = [f"T{n:025d}" for n in range(len(durations_ms))]
        await insert_rows(
            conn,
            schema.transactions,
            [
                {
                    "id": tx,
                    "idempotency_key": tx,
                    "meter_number": meter_number(0),
                    "customer_id": customer_id(0),
                    "amount_idr": 20_000,
                    "state": "applied",
                    "state_at": ISSUED,
                    "created_at": ISSUED,
                }
                for tx in txs
            ],
        )
        history = []
        for n, (tx, ms) in enumerate(zip(txs, durations_ms, strict=True)):
            sent = ISSUED + timedelta(seconds=n)
            history.append({"transaction_id": tx, "state": "token_sent", "at": sent})
            history.append(
                {"transaction_id": tx, "state": "applied", "at": sent + timedelta(milliseconds=ms)}
            )
        await insert_rows(conn, schema.transaction_states, history)
    report = await sla_report(
        store,
        SlaTargets(),
        date(2026, 3, 2),
        date(2026, 3, 3),
        as_of=datetime(2026, 3, 5, tzinfo=UTC),
        stages=(STAGES_BY_NAME["meter_answer"],),
    )
    total = report.stages[0].total
    target = 300_000
    assert total.count == len(durations_ms)
    assert total.within_target == sum(ms <= target for ms in durations_ms)
    assert (total.p50_ms, total.p95_ms, total.p99_ms) == tuple(
        nearest_rank(durations_ms, p) for p in (50, 95, 99)
    )
    assert sorted(b.duration_ms or 0 for b in report.breaches) == sorted(
        ms for ms in durations_ms if ms > target
    )
