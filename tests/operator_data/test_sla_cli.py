"""`pintar sla report`, `pintar retention purge` and `pintar ap2t` end to end on a SQLite file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.store import Store, schema
from tests.operator_data import test_ap2t_source, test_sla_report
from tests.operator_data.reporting_seed import insert_rows

pytestmark = pytest.mark.timeout(60)


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "pintar.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "p.db"}"\n'
        + extra,
        encoding="utf-8",
    )
    return path


def seeded(tmp_path: Path, extra: str = "", *, sla: bool = False, ap2t: bool = False) -> Path:
    path = config(tmp_path, extra)

    async def run() -> None:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}") as store:
            await store.migrate()
            if sla:
                await test_sla_report.scenario(store)
            if ap2t:
                await test_ap2t_source.seed(store)

    asyncio.run(run())
    return path


def test_sla_report_json_and_csv(tmp_path: Path) -> None:
    cfg = seeded(tmp_path, sla=True)
    runner = CliRunner()
    args = ["sla", "report", "--from", "2026-03-02", "--to", "2026-03-04", "--config", str(cfg)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    totals = {s["stage"]: s["total"] for s in doc["stages"]}
    assert totals["token_to_network"]["p50_ms"] == 5000
    assert totals["meter_answer"]["overdue"] == 1
    # 1 + 2 + 1 + 1 (see test_sla_report) + 8 receipts never sent (no receipt SMS there)
    assert len(doc["breaches"]) == 13
    result = runner.invoke(app, [*args, "--format", "csv", "--group", "month"])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["stage"], r["period"]) for r in table][:2] == [
        ("p2apst_response", "2026-03"),
        ("p2apst_response", "total"),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        ["--from", "2026-13-01", "--to", "2026-03-04"],
        ["--from", "2026-03-04", "--to", "2026-03-04"],
        ["--from", "2026-03-02", "--to", "2026-03-04", "--format", "xml"],
        ["--from", "2026-03-02", "--to", "2026-03-04", "--group", "week"],
    ],
)
def test_sla_report_bad_input_exits_2(tmp_path: Path, bad: list[str]) -> None:
    result = CliRunner().invoke(app, ["sla", "report", *bad, "--config", str(config(tmp_path))])
    assert result.exit_code == 2
    assert "error:" in result.stderr


def test_retention_purge_cli(tmp_path: Path) -> None:
    cfg = seeded(tmp_path)
    now = datetime.now(UTC)

    async def add() -> None:
        async with (
            Store(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}") as store,
            store.begin() as conn,
        ):
            await insert_rows(
                conn,
                schema.telemetry_readings,
                [
                    {"meter_number": "14000000001", "received_at": now - timedelta(days=400)},
                    {"meter_number": "14000000001", "received_at": now - timedelta(days=10)},
                ],
            )

    asyncio.run(add())
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "purge", "--dry-run", "--config", str(cfg)])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"]["telemetry_readings"] == 1
    done = runner.invoke(app, ["retention", "purge", "--config", str(cfg)])
    doc = json.loads(done.stdout)
    assert doc["ran"] and not doc["dry_run"] and doc["counts"]["telemetry_readings"] == 1
    again = runner.invoke(app, ["retention", "purge", "--config", str(cfg)])
    assert json.loads(again.stdout)["counts"]["telemetry_readings"] == 0
