"""`--format json|table|csv` on the CLI's listings and reports (operator_data/cli/output.py),
and its one time-zone convention: WIB with the offset said in tables, ISO 8601 with the
offset in JSON and CSV. JSON stays the default: scripts read it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from operator_data.api.present import WIB as WEB_WIB
from operator_data.api.present import wib as web_wib
from operator_data.cli.main import app
from operator_data.cli.output import WIB, LineCounter, neutralise, wib_text, write_csv
from operator_data.settings import load_settings
from operator_data.sla import sla_report
from operator_data.store import Store
from tests.operator_data.test_sla_cli import seeded

pytestmark = pytest.mark.timeout(60)

# Wide enough that rich never folds a cell: the assertions read whole values.
WIDE = {"COLUMNS": "250"}


def _users_env(tmp_path: Path) -> dict[str, str]:
    return {"PINTAR_DATA_DIR": str(tmp_path), **WIDE}


def _add_user(runner: CliRunner, env: dict[str, str], name: str, role: str) -> None:
    args = ["users", "add", "--role", role, "--password-stdin", name]
    added = runner.invoke(app, args, input="kata-sandi-panjang\n", env=env)
    assert added.exit_code == 0, added.output


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+62 812-3456-7890", "'+62 812-3456-7890"),
        ("+6281234567890", "+6281234567890"),  # a number to a spreadsheet, not a formula
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("'=1", "''=1"),  # one more quote, so one stripped gives back what was written
        ("-5", "-5"),  # a number, not a formula
        ("BUDI SANTOSO", "BUDI SANTOSO"),
        ("", ""),
    ],
)
def test_neutralise(cell: str, written: str) -> None:
    assert neutralise(cell) == written


def test_csv_cells() -> None:
    out = io.StringIO()
    at = datetime(2026, 3, 2, 7, 5, tzinfo=UTC)
    write_csv(
        [{"name": "=1+1", "n": -3, "ok": True, "at": at, "none": None}],
        ["name", "n", "ok", "at", "none", "absent"],
        out,
    )
    assert out.getvalue() == (
        "name,n,ok,at,none,absent\n'=1+1,-3,true,2026-03-02T07:05:00+00:00,,\n"
    )


def test_wib_text_is_the_web_apps_time_with_its_offset() -> None:
    assert WIB.utcoffset(None) == WEB_WIB.utcoffset(None)
    moment = datetime(2026, 3, 2, 20, 30, 15, tzinfo=UTC)
    assert wib_text(moment) == "2026-03-03 03:30:15 +07:00"
    assert wib_text(moment) == f"{web_wib(moment)} +07:00"
    assert wib_text(moment.replace(tzinfo=None)) == wib_text(moment)  # naive = UTC, as the web


def test_users_list_in_every_format(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _users_env(tmp_path)
    _add_user(runner, env, "ade", "admin")
    _add_user(runner, env, "budi", "helpdesk")
    as_json = runner.invoke(app, ["users", "list"], env=env)
    assert as_json.exit_code == 0, as_json.output
    # The default is the JSON scripts already read, unchanged.
    assert json.loads(as_json.stdout) == [
        {"username": "ade", "role": "admin", "active": True, "locked_until": None},
        {"username": "budi", "role": "helpdesk", "active": True, "locked_until": None},
    ]
    explicit = runner.invoke(app, ["users", "list", "--format", "json"], env=env)
    assert explicit.stdout == as_json.stdout
    as_csv = runner.invoke(app, ["users", "list", "--format", "csv"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    assert list(csv.DictReader(io.StringIO(as_csv.stdout))) == [
        {"username": "ade", "role": "admin", "active": "true", "locked_until": ""},
        {"username": "budi", "role": "helpdesk", "active": "true", "locked_until": ""},
    ]
    table = runner.invoke(app, ["users", "list", "--format", "table"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert any("username" in line and "locked_until" in line for line in lines)
    assert any("ade" in line and "admin" in line and "yes" in line for line in lines)
    with pytest.raises(json.JSONDecodeError):
        json.loads(table.stdout)


def test_api_keys_table_shows_wib_times_with_the_offset(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _users_env(tmp_path)
    _add_user(runner, env, "ade", "admin")
    assert (
        runner.invoke(app, ["users", "api-key", "ade", "--label", "grafana"], env=env).exit_code
        == 0
    )
    listed = json.loads(runner.invoke(app, ["users", "api-keys", "ade"], env=env).stdout)
    created = datetime.fromisoformat(listed[0]["created_at"])
    assert created.utcoffset() is not None  # JSON: ISO 8601 with its offset, as before
    table = runner.invoke(app, ["users", "api-keys", "ade", "--format", "table"], env=env)
    assert table.exit_code == 0, table.output
    assert wib_text(created) in table.stdout
    assert listed[0]["created_at"] not in table.stdout  # not the UTC form
    as_csv = runner.invoke(app, ["users", "api-keys", "ade", "--format", "csv"], env=env)
    row = next(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert row["created_at"] == listed[0]["created_at"] and row["label"] == "grafana"


@pytest.mark.parametrize("command", [["users", "list"], ["users", "api-keys", "ade"]])
def test_unknown_format_exits_2_naming_the_formats(tmp_path: Path, command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--format", "xml"], env=_users_env(tmp_path))
    assert result.exit_code == 2
    assert "error: --format 'xml': expected one of json, table, csv" in result.stderr


def test_sla_report_csv_is_the_reports_csv_and_table_shows_breaches_in_wib(
    tmp_path: Path,
) -> None:
    cfg = seeded(tmp_path, sla=True)
    runner = CliRunner()
    args = ["sla", "report", "--from", "2026-03-02", "--to", "2026-03-04", "--config", str(cfg)]

    async def expected() -> str:
        settings = load_settings(cfg)
        async with Store.from_settings(settings) as store:
            report = await sla_report(store, settings.sla, date(2026, 3, 2), date(2026, 3, 4))
        return report.to_csv()

    as_csv = runner.invoke(app, [*args, "--format", "csv"], env=WIDE)
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout == asyncio.run(expected())  # the CSV scripts read did not change
    document = json.loads(runner.invoke(app, args, env=WIDE).stdout)
    table = runner.invoke(app, [*args, "--format", "table"], env=WIDE)
    assert table.exit_code == 0, table.output
    # 5 of test_sla_report + 8 receipts never sent (the scenario has no receipt SMS)
    assert "token_to_network" in table.stdout and "Breaches (13)" in table.stdout
    for breach in document["breaches"]:
        assert wib_text(datetime.fromisoformat(breach["started_at"])) in table.stdout


def test_retention_purge_formats(tmp_path: Path) -> None:
    cfg = seeded(tmp_path, sla=True)
    runner = CliRunner()
    args = ["retention", "purge", "--dry-run", "--config", str(cfg)]
    document = json.loads(runner.invoke(app, args, env=WIDE).stdout)
    assert document["dry_run"] is True and "counts" in document  # the JSON as before
    as_csv = runner.invoke(app, [*args, "--format", "csv"], env=WIDE)
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {r["table"]: int(r["rows"]) for r in rows} == document["counts"]
    table = runner.invoke(app, [*args, "--format", "table"], env=WIDE)
    assert table.exit_code == 0 and "would delete (dry run)" in table.stdout


def test_bench_list_formats() -> None:
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["bench", "list"], env=WIDE).stdout)
    as_csv = runner.invoke(app, ["bench", "list", "--format", "csv"], env=WIDE)
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["name"] for r in rows] == [b["name"] for b in listed]
    assert [int(r["smoke_size"]) for r in rows] == [b["smoke_size"] for b in listed]
    table = runner.invoke(app, ["bench", "list", "--format", "table"], env=WIDE)
    assert table.exit_code == 0 and all(b["name"] in table.stdout for b in listed)


def test_line_counter_counts_what_passes_through_unchanged() -> None:
    seen: list[int] = []
    text = "".join(f"line {n}\n" for n in range(250))
    reader = LineCounter(io.StringIO(text), seen.append)
    assert "".join(reader) == text
    assert reader.lines == 250 and seen == [100, 200, 250]
    out, written = io.StringIO(), list[int]()
    writer = LineCounter(out, written.append)
    for n in range(250):
        writer.write(f"line {n}\n")
    assert out.getvalue() == text
    assert writer.lines == 250 and written == [100, 200]
