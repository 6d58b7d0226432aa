"""Retention purge with an explicit clock on both backends: rows just inside the legal
minimum stay, rows just beyond it go; dry runs delete nothing; one purge per cluster."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from operator_data.retention import ANONYMISED_NAME, Cutoffs, months_before, purge
from operator_data.settings import RetentionPolicy
from operator_data.store import Store, schema
from operator_data.store.locks import run_once
from operator_data.store.reporting_schema import ap2t_batches
from tests.operator_data.reporting_seed import customer_id, insert_meters, insert_rows

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
USAGE_CUT = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SLA_CUT = datetime(2024, 12, 31, 17, 0, tzinfo=UTC)  # 1 Jan 2025 00:00 WIB
S = timedelta(seconds=1)


def test_cutoffs_follow_the_legal_minimums() -> None:
    cut = Cutoffs.compute(RetentionPolicy(), NOW)
    assert cut.usage_records == USAGE_CUT
    assert cut.complaints == USAGE_CUT
    assert cut.inactive_customers == USAGE_CUT
    assert cut.sla == SLA_CUT
    longer = Cutoffs.compute(
        RetentionPolicy(usage_records_months=13, sla_financial_years_after=2), NOW
    )
    assert longer.usage_records == datetime(2025, 5, 15, 12, 0, tzinfo=UTC)
    assert longer.sla == datetime(2023, 12, 31, 17, 0, tzinfo=UTC)
    assert months_before(datetime(2026, 5, 31, tzinfo=UTC), 3) == datetime(2026, 2, 28, tzinfo=UTC)
    with pytest.raises(ValueError, match="legal minimum"):
        RetentionPolicy(usage_records_months=2)


def _message(n: int, at: datetime) -> dict[str, object]:
    return {
        "id": f"01MSG{n:021d}",
        "direction": "in",
        "flow": "meter_to_hub",
        "state": "processed",
        "state_at": at,
        "retries": 0,
        "idempotency_key": f"k{n}",
        "created_at": at,
    }


async def seed(store: Store) -> None:
    """Expired rows carry odd numbers, rows just inside the minimum even ones."""
    old, young = USAGE_CUT - S, USAGE_CUT + S
    async with store.begin() as conn:
        await insert_meters(conn, range(2), NOW - timedelta(days=400))
        msgs = [_message(n, old if n % 2 else young) for n in range(1, 11)]
        await insert_rows(conn, schema.messages, msgs)
        await insert_rows(
            conn,
            schema.message_states,
            [{"message_id": m["id"], "state": "received", "at": m["created_at"]} for m in msgs]
            + [{"message_id": m["id"], "state": "processed", "at": m["created_at"]} for m in msgs],
        )
        await insert_rows(
            conn,
            schema.cost_ledger,
            [
                {
                    "message_id": m["id"],
                    "customer_id": None,
                    "flow": "meter_to_hub",
                    "price_version": "v0",
                    "amount_idr": 0,
                    "charged_at": m["created_at"],
                }
                for m in msgs[:4]
            ],
        )
        await insert_rows(
            conn,
            schema.telemetry_readings,
            [{"meter_number": "14000000000", "received_at": at} for at in (old, young, old)],
        )
        await insert_rows(
            conn,
            schema.alarms,
            [
                {
                    "meter_number": "14000000000",
                    "code": "tamper",
                    "severity": "high",
                    "received_at": at,
                }
                for at in (old, young)
            ],
        )
        items = [
            ("closed", old),
            ("resolved", old),
            ("closed", young),
            ("open", old - timedelta(days=900)),
        ]
        await insert_rows(
            conn,
            schema.helpdesk_items,
            [
                {
                    "kind": "complaint",
                    "subject": f"item {n}",
                    "state": state,
                    "opened_at": at - timedelta(days=10),
                    "resolved_at": at if state != "open" else None,
                    "closed_at": at if state == "closed" else None,
                }
                for n, (state, at) in enumerate(items)
            ],
        )
        await insert_rows(
            conn,
            schema.sla_events,
            [
                {"metric": "m", "started_at": at, "recorded_at": at}
                for at in (SLA_CUT - S, SLA_CUT + S)
            ],
        )
        await insert_rows(
            conn,
            ap2t_batches,
            [
                {
                    "day": day,
                    "generated_at": at,
                    "file": "f",
                    "sha256": "0" * 64,
                    "record_count": 0,
                    "corrections": 0,
                }
                for day, at in ((date(2024, 12, 30), SLA_CUT - S), (date(2025, 1, 1), SLA_CUT + S))
            ],
        )
        # Customers: 0 has a meter (anonymise), 100 has none (delete), 101 inactive too
        # recently (keep), 1 active (keep). Phones of the expired ones go.
        await conn.execute(
            schema.customers.update()
            .where(schema.customers.c.customer_id == customer_id(0))
            .values(status="inactive", inactive_since=old)
        )
        base = {
            "tariff_segment": "R1",
            "power_va": 900,
            "opted_out": False,
            "created_at": old,
            "updated_at": old,
        }
        await insert_rows(
            conn,
            schema.customers,
            [
                {
                    "customer_id": customer_id(100),
                    "name": "Lama",
                    "status": "inactive",
                    "inactive_since": old,
                    **base,
                },
                {
                    "customer_id": customer_id(101),
                    "name": "Baru",
                    "status": "inactive",
                    "inactive_since": young,
                    **base,
                },
            ],
        )
        await insert_rows(
            conn,
            schema.customer_phones,
            [
                {
                    "msisdn": f"+62811200000{n}",
                    "customer_id": customer_id(c),
                    "failed_attempts": 0,
                    "created_at": old,
                    "updated_at": old,
                }
                for n, c in enumerate((0, 100, 101, 1))
            ],
        )


async def table_counts(store: Store) -> dict[str, int]:
    tables = [
        schema.messages,
        schema.message_states,
        schema.cost_ledger,
        schema.telemetry_readings,
        schema.alarms,
        schema.helpdesk_items,
        schema.sla_events,
        ap2t_batches,
        schema.customers,
        schema.customer_phones,
    ]
    async with store.read() as conn:
        return {
            t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0) for t in tables
        }


EXPECTED = {
    "messages": 5,
    "message_states": 10,
    "outbox": 0,
    "cost_ledger": 2,
    "telemetry_readings": 2,
    "alarms": 1,
    "helpdesk_items": 2,
    "sla_events": 1,
    "ap2t_batches": 1,
    "customer_phones": 2,
    "customers": 1,
    "customers_anonymised": 1,
}


async def test_purge_keeps_rows_inside_the_minimum(store: Store) -> None:
    await seed(store)
    before = await table_counts(store)
    result = await purge(store, RetentionPolicy(), now=NOW, batch_size=2)
    assert result.ran and not result.dry_run
    assert result.counts == EXPECTED
    after = await table_counts(store)
    for name, count in before.items():
        assert after[name] == count - EXPECTED[name], name
    async with store.read() as conn:
        left = set(await conn.scalars(select(schema.messages.c.created_at)))
        names = dict(
            (
                await conn.execute(select(schema.customers.c.customer_id, schema.customers.c.name))
            ).all()
        )
        helpdesk = set(await conn.scalars(select(schema.helpdesk_items.c.state)))
    assert left == {USAGE_CUT + S}
    assert names == {
        customer_id(0): ANONYMISED_NAME,
        customer_id(1): "Pelanggan 1",
        customer_id(101): "Baru",
    }
    assert helpdesk == {"closed", "open"}  # the young closed one and the ancient open one
    again = await purge(store, RetentionPolicy(), now=NOW)
    assert set(again.counts.values()) == {0}


async def test_dry_run_counts_and_deletes_nothing(store: Store) -> None:
    await seed(store)
    before = await table_counts(store)
    result = await purge(store, RetentionPolicy(), now=NOW, dry_run=True)
    assert result.ran and result.dry_run
    assert result.counts == EXPECTED
    assert await table_counts(store) == before


async def test_longer_configured_retention_keeps_more(store: Store) -> None:
    await seed(store)
    result = await purge(
        store, RetentionPolicy(usage_records_months=4, complaint_months=4), now=NOW
    )
    assert result.counts["messages"] == 0
    assert result.counts["helpdesk_items"] == 0
    assert result.counts["sla_events"] == 1


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_only_one_node_purges_at_a_time(store: Store, database_url: str) -> None:
    await seed(store)
    async with Store(database_url) as other_node:
        async with run_once(other_node, "retention.purge") as held:
            assert held
            skipped = await purge(store, RetentionPolicy(), now=NOW)
            assert not skipped.ran and skipped.counts == {}
            async with run_once(store, "some.other.job") as independent:
                assert independent
        ran = await purge(store, RetentionPolicy(), now=NOW)
    assert ran.ran and ran.counts == EXPECTED


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_concurrent_purges_one_runs(store: Store, database_url: str) -> None:
    import asyncio

    await seed(store)
    async with Store(database_url) as other_node:
        # Each holds its lock while both ask: exactly one gets it.
        async with run_once(store, "job") as first, run_once(other_node, "job") as second:
            assert (first, second) == (True, False)
        results = await asyncio.gather(
            purge(store, RetentionPolicy(), now=NOW), purge(other_node, RetentionPolicy(), now=NOW)
        )
    assert sum(r.counts.get("messages", 0) for r in results) == 5


async def test_sla_measurements_outlive_the_message_log(store: Store) -> None:
    from operator_data.settings import SlaTargets
    from tests.operator_data.test_sla_report import scenario

    await scenario(store)  # March 2026
    later = datetime(2026, 7, 1, tzinfo=UTC)  # the March message log has expired
    result = await purge(store, RetentionPolicy(), now=later, sla_targets=SlaTargets())
    assert result.counts["messages"] == 11
    # 11 purchases (incl. 4 March): 11 token, 11 meter (2 silent, overdue by July),
    # 9 report; 3 AP2T intervals (the newest overdue); 11 P2APST answers; 8 receipts
    # (applied, no receipt SMS: overdue).
    assert result.counts["sla_events_recorded"] == 11 + 11 + 9 + 3 + 11 + 8
    ev = schema.sla_events
    async with store.read() as conn:
        kept = await conn.scalar(
            select(func.count()).where(ev.c.metric == "token_to_network", ev.c.met.is_(False))
        )
    assert kept == 2  # the 12 s and 30 s tokens of the scenario are still on record
