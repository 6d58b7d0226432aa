"""`pintar complaints report|annual` end to end on a SQLite file: the month's figures as
JSON and CSV, an operator's holiday file, and clear errors for bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app
from operator_data.store import Store
from tests.operator_data.test_complaints_report import _seed

pytestmark = pytest.mark.timeout(60)

AS_OF = ["--as-of", "2026-12-01T09:00:00+07:00"]


def seeded(tmp_path: Path) -> Path:
    path = tmp_path / "pintar.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "p.db"}"\n',
        encoding="utf-8",
    )

    async def run() -> None:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}") as store:
            await store.migrate()
            await _seed(store)

    asyncio.run(run())
    return path


def test_report_json_and_csv(tmp_path: Path) -> None:
    cfg = seeded(tmp_path)
    runner = CliRunner()
    args = ["complaints", "report", "--month", "2026-11", *AS_OF, "--config", str(cfg)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["measured"] == 11 and doc["within_target_pct"] == 81.8
    assert doc["by_month_end_pct"] == 90.9 and doc["target_met"] is False
    assert doc["disruption"]["from_month"] == "2025-12"
    result = runner.invoke(app, [*args, "--format", "csv"])
    rows = {r["figure"]: r["value"] for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["within_target_pct"] == "81.8" and rows["third_party_excluded"] == "1"
    annual = runner.invoke(
        app, ["complaints", "annual", "--year", "2026", *AS_OF, "--config", str(cfg)]
    )
    assert annual.exit_code == 0, annual.output
    assert json.loads(annual.stdout)["months"][10]["measured"] == 11


def test_an_operator_holiday_file_moves_the_due_day(tmp_path: Path) -> None:
    cfg = seeded(tmp_path)
    # Ten more days off from 3 Nov: the 2 Nov complaints fall due in December instead
    days = ", ".join(
        f'{{ date = 2026-11-{d:02d}, kind = "cuti_bersama", name = "contoh" }}'
        for d in (3, 4, 5, 6, 9, 10, 11, 12, 13, 16)
    )
    holidays = tmp_path / "2026.toml"
    holidays.write_text(f'year = 2026\nsource = "uji"\nholidays = [{days}]\n', encoding="utf-8")
    runner = CliRunner()
    base = ["complaints", "report", *AS_OF, "--config", str(cfg), "--holidays", str(holidays)]
    november = json.loads(runner.invoke(app, [*base, "--month", "2026-11"]).stdout)
    december = json.loads(runner.invoke(app, [*base, "--month", "2026-12"]).stdout)
    assert november["measured"] == 0 and december["measured"] == 11


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--month", "2026-13"], "YYYY-MM"),
        (["report", "--month", "2026-11", "--as-of", "2026-12-01"], "offset"),
        (["report", "--month", "2026-11", "--holidays", "/nonexistent.toml"], "cannot read"),
    ],
)
def test_bad_input_exits_2_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    cfg = seeded(tmp_path)
    result = CliRunner().invoke(app, ["complaints", *args, "--config", str(cfg)])
    assert result.exit_code == 2 and message in result.stderr
