"""A changed re-export of an AP2T day is a correction revision: the acknowledged original
stays on record with its receipt, the revision has its own file and delivery state, and an
unchanged re-export changes nothing. Also: the 0003 migration and the CSV cell rule."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text
from typer.testing import CliRunner

from operator_data.ap2t_source import Ap2tJob, StoreAp2tHistory, batch_history
from operator_data.cli.main import app
from operator_data.migrations.runner import downgrade, shipped_heads, upgrade
from operator_data.store import Store, schema
from operator_data.store.reporting_schema import ap2t_batches
from p2apst_adapter.ap2t import Manifest, export_batch
from p2apst_adapter.ap2t.cells import neutralise, restore
from p2apst_adapter.ap2t.delivery import DirectoryDrop, HttpUpload
from p2apst_adapter.ap2t.receiver import Ap2tReceiver
from tests.ap2t_support import serve, synthetic_records
from tests.operator_data.reporting_seed import meter_number
from tests.operator_data.test_ap2t_source import DAY, END, Clock, seed
from tests.operator_data.test_sla_cli import seeded

pytestmark = pytest.mark.timeout(60)


async def batches(store: Store) -> list[tuple[int, int | None, str, str | None]]:
    """(revision, supersedes, file, receipt) of DAY's rows, in revision order."""
    b = ap2t_batches
    async with store.read() as conn:
        rows = await conn.execute(select(b).where(b.c.day == DAY).order_by(b.c.revision))
        return [(r.revision, r.supersedes, r.file, r.receipt) for r in rows]


async def change_a_record(store: Store) -> None:
    """Data behind the day's cut changes: meter 1's readings are purged."""
    async with store.begin() as conn:
        await conn.execute(
            delete(schema.telemetry_readings).where(
                schema.telemetry_readings.c.meter_number == meter_number(1)
            )
        )


async def test_a_changed_day_is_a_revision_and_the_delivered_original_stays(
    store: Store, tmp_path: Path
) -> None:
    await seed(store)
    clock = Clock(END + timedelta(hours=1))
    out, drop = tmp_path / "out", tmp_path / "drop"
    job = Ap2tJob(store, out, DirectoryDrop(drop), clock=clock)
    first_ack = await job.deliver(DAY)
    acked_at = clock.now
    original = (out / "ap2t-20260302.csv").read_bytes()

    await change_a_record(store)
    clock.now += timedelta(hours=2)
    fix = await job.export(DAY)
    assert (fix.revision, fix.manifest.supersedes, fix.created) == (2, 1, True)
    assert fix.manifest.file == "ap2t-20260302-r2.csv" and fix.acknowledged_at is None
    assert fix.generated_at == acked_at  # the day's data cut is kept
    # The original: still acknowledged with its receipt, its file untouched.
    async with store.read() as conn:
        rows = (await conn.execute(select(ap2t_batches).order_by(ap2t_batches.c.revision))).all()
    assert [(r.revision, r.acknowledged_at, r.receipt) for r in rows] == [
        (1, acked_at, first_ack.receipt),
        (2, None, None),
    ]
    assert rows[1].exported_at == clock.now and rows[1].sha256 != rows[0].sha256
    assert (out / "ap2t-20260302.csv").read_bytes() == original
    revised = (out / "ap2t-20260302-r2.csv").read_text(encoding="utf-8")
    meter_1 = next(
        r for r in csv.DictReader(io.StringIO(revised)) if r["meter_number"].endswith("1")
    )
    assert meter_1["last_reading_kwh"] == ""
    manifest = Manifest.from_json((out / "ap2t-20260302-r2.manifest.json").read_text())
    assert (manifest.revision, manifest.supersedes, manifest.sha256) == (2, 1, rows[1].sha256)
    assert Manifest.from_json((out / "ap2t-20260302.manifest.json").read_text()).revision == 1

    # Unchanged again: nothing new, the pending revision stays as it is.
    clock.now += timedelta(hours=1)
    again = await job.export(DAY)
    assert (again.revision, again.created, again.manifest) == (2, False, fix.manifest)
    assert await batches(store) == [
        (1, None, "ap2t-20260302.csv", first_ack.receipt),
        (2, 1, "ap2t-20260302-r2.csv", None),
    ]

    # Delivering sends the revision; revision 1's acknowledgement is not touched.
    second_ack = await job.deliver(DAY)
    assert second_ack.receipt == "dropped:ap2t-20260302-r2.csv"
    assert (drop / "ap2t-20260302-r2.csv").read_text(encoding="utf-8") == revised
    assert (drop / "ap2t-20260302.csv").read_bytes() == original
    # An acknowledged revision is not sent again, nor its time overwritten.
    clock.now += timedelta(hours=1)
    (drop / "ap2t-20260302-r2.csv").unlink()
    assert await job.deliver(DAY) == second_ack
    assert not (drop / "ap2t-20260302-r2.csv").exists()
    async with store.read() as conn:
        acks = (
            await conn.execute(
                select(ap2t_batches.c.acknowledged_at).order_by(ap2t_batches.c.revision)
            )
        ).scalars()
        assert list(acks) == [acked_at, acked_at + timedelta(hours=3)]
    # Listings show both, newest revision first.
    listed = await batch_history(store)
    assert [(b.revision, b.state) for b in listed] == [(2, "acknowledged"), (1, "acknowledged")]
    shown = await StoreAp2tHistory(store).batches(10)
    assert [s.batch_id for s in shown] == ["ap2t-20260302-r2.csv", "ap2t-20260302.csv"]


async def test_the_receiver_takes_a_revision_and_the_overdue_clock_ignores_it(
    store: Store, tmp_path: Path
) -> None:
    await seed(store)
    receiver = Ap2tReceiver(token="t")
    clock = Clock(END + timedelta(hours=1))
    async with serve(receiver.app()) as base:
        job = Ap2tJob(store, tmp_path, HttpUpload(f"{base}/ap2t/batches", "t"), clock=clock)
        first = await job.deliver(DAY)
        await change_a_record(store)
        clock.now += timedelta(hours=20)
        second = await job.deliver(DAY)
    assert first.receipt != second.receipt and "-r2-" in second.receipt
    assert set(receiver.revisions) == {("2026-03-02", 1), ("2026-03-02", 2)}
    assert receiver.batches["2026-03-02"].manifest.revision == 2
    # The daily duty is measured from the day's first acknowledgement: a correction
    # acknowledged 20 h later does not restart the 24 h clock.
    assert await job.overdue(END + timedelta(hours=25, seconds=1))


async def test_migration_makes_existing_batches_revision_1(store: Store) -> None:
    await downgrade(store.engine, "0003_ap2t_revisions-1")
    at = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    async with store.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO ap2t_batches (day, generated_at, file, sha256, record_count,"
                " corrections, acknowledged_at, receipt) VALUES"
                " (:day, :at, 'ap2t-20260302.csv', :sha, 3, 0, :at, 'R1')"
            ),
            {"day": date(2026, 3, 2), "at": at, "sha": "a" * 64},
        )
    await upgrade(store.engine)
    assert await store.current_revision() == shipped_heads()
    async with store.read() as conn:
        row = (await conn.execute(select(ap2t_batches))).one()
    assert (row.revision, row.supersedes, row.exported_at, row.receipt) == (1, None, at, "R1")
    # The new key takes a second revision of the same day.
    async with store.begin() as conn:
        await conn.execute(
            insert(ap2t_batches).values(
                day=date(2026, 3, 2),
                revision=2,
                supersedes=1,
                generated_at=at,
                exported_at=at,
                file="ap2t-20260302-r2.csv",
                sha256="b" * 64,
                record_count=3,
                corrections=0,
            )
        )
    assert len(await batch_history(store)) == 2


def test_cli_lists_revisions_and_overdue_shows_the_pending_one(tmp_path: Path) -> None:
    import asyncio

    drop = tmp_path / "drop"
    cfg = seeded(tmp_path, f'[ap2t]\ndirectory = "{drop}"\n', ap2t=True)
    runner = CliRunner()
    day = ["--date", "2026-03-02", "--config", str(cfg)]
    assert runner.invoke(app, ["ap2t", "deliver", *day]).exit_code == 0

    async def purge() -> None:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}") as opened:
            await change_a_record(opened)

    asyncio.run(purge())
    exported = runner.invoke(app, ["ap2t", "export", *day])
    assert exported.exit_code == 0, exported.output
    doc = json.loads(exported.stdout)
    assert (doc["revision"], doc["supersedes"], doc["state"], doc["new_revision"]) == (
        2,
        1,
        "pending",
        True,
    )
    listed = runner.invoke(app, ["ap2t", "list", "--format", "csv", "--config", str(cfg)])
    assert listed.exit_code == 0, listed.output
    got = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [(r["revision"], r["supersedes"], r["file"], r["state"]) for r in got] == [
        ("2", "1", "ap2t-20260302-r2.csv", "pending"),
        ("1", "", "ap2t-20260302.csv", "acknowledged"),
    ]
    pending = runner.invoke(app, ["ap2t", "list", "--pending", "--config", str(cfg)])
    assert [b["revision"] for b in json.loads(pending.stdout)] == [2]
    overdue = json.loads(runner.invoke(app, ["ap2t", "overdue", "--config", str(cfg)]).stdout)
    assert overdue["last_acknowledged"]["file"] == "ap2t-20260302.csv"
    assert [(p["file"], p["state"]) for p in overdue["pending"]] == [
        ("ap2t-20260302-r2.csv", "pending")
    ]
    bad = runner.invoke(app, ["ap2t", "list", "--limit", "0", "--config", str(cfg)])
    assert bad.exit_code == 2 and "--limit" in bad.stderr


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+62812", "'+62812"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),
        ("14000000001", "14000000001"),
        ("low-credit;tamper", "low-credit;tamper"),
        ("", ""),
    ],
)
def test_cell_rule(value: str, cell: str) -> None:
    assert neutralise(value) == cell
    assert restore(neutralise(value)) == value


async def test_text_cells_are_neutralised_numbers_kept_exact(tmp_path: Path) -> None:
    (plain,) = synthetic_records(DAY, 1)
    hostile = dataclasses.replace(
        plain,
        customer_id="=cmd|' /C calc'!A0",
        alarms=("@tamper", "low-credit"),
        last_reading_kwh=Decimal("-1.5"),
        remaining_credit_kwh=Decimal("-0.25"),
    )
    manifest = await export_batch(DAY, [hostile], tmp_path)
    with (tmp_path / manifest.file).open(encoding="utf-8", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["customer_id"] == "'=cmd|' /C calc'!A0"
    assert row["alarms"] == "'@tamper;low-credit"
    assert restore(row["alarms"]).split(";") == ["@tamper", "low-credit"]
    # Numbers AP2T parses: exact, a minus sign included.
    assert (row["last_reading_kwh"], row["remaining_credit_kwh"]) == ("-1.500", "-0.250")
    assert row["meter_number"] == plain.meter_number
