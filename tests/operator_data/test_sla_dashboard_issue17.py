"""Issue 17: the SLA dashboard (page and /api/v1/sla) shows what `pintar sla report` shows
on the same data, and says which targets it measured against.

The data is the scripted scenario of test_sla_report (known durations on 2 and 3 March
2026 WIB, AP2T acknowledgements); the app's clock stands at 23:00 WIB on 3 March, so
"today" is 3 March and "this month" is 1-3 March. The CLI runs on the same SQLite file
through `--data-dir`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from operator_data.api.app import create_app
from operator_data.api.auth import Accounts, Role
from operator_data.cli.main import app as cli
from operator_data.crypto import MasterKey
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, SlaTargets
from operator_data.store import Store
from tests.operator_data import test_sla_report

pytestmark = pytest.mark.timeout(120)

NOW = datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # 23:00 WIB, 3 March 2026
PASSWORD = "rahasia-sekali-123"
STAGES = (
    "p2apst_response",
    "token_to_network",
    "meter_answer",
    "report_to_p2apst",
    "receipt_to_customer",
    "ap2t_batch_interval",
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory whose pintar.db holds the scenario and a helpdesk login."""
    for name in ("PINTAR_CONFIG", "PINTAR_DATA_DIR", "PINTAR_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)
    where = tmp_path / "data"
    where.mkdir()

    async def seed() -> None:
        async with Store(f"sqlite+aiosqlite:///{where / 'pintar.db'}") as store:
            await store.migrate()
            await test_sla_report.scenario(store)
            await Accounts(store).create_user("hana", Role.HELPDESK, PASSWORD)

    asyncio.run(seed())
    return where


def cli_totals(data_dir: Path, first: str, stop: str) -> dict[str, dict[str, Any]]:
    args = ["sla", "report", "--from", first, "--to", stop, "--group", "month"]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return {s["stage"]: s["total"] for s in json.loads(result.stdout)["stages"]}


class Dashboard:
    """The /api/v1/sla answer and the /sla page of an app over `data_dir` at NOW."""

    def __init__(self, api: dict[str, Any], page: str) -> None:
        self.api = api
        self.page = page

    def page_rows(self, card: int) -> dict[str, dict[str, str]]:
        """The page's rows of table `card` (0: today, 1: this month) by metric."""
        tables = re.findall(r"<tbody>(.*?)</tbody>", self.page, re.S)
        rows = {}
        for metric, cells in re.findall(r'<tr data-metric="(\w+)">(.*?)</tr>', tables[card]):
            found = dict(re.findall(r'<td class="(\w+)">(.*?)</td>', cells))
            rows[metric] = {k: unescape(v) for k, v in found.items()}
        return rows


def dashboard(data_dir: Path, settings: Settings) -> Dashboard:
    async def run() -> Dashboard:
        async with Store(f"sqlite+aiosqlite:///{data_dir / 'pintar.db'}") as store:
            registry = Registry(
                store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=PinPolicy()
            )
            web = create_app(settings, store, registry, clock=lambda: NOW)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=web), base_url="http://hd"
            ) as client:
                login = await client.post("/login", data={"username": "hana", "password": PASSWORD})
                assert login.status_code == 303, login.text
                page = await client.get("/sla?lang=en")
                assert page.status_code == 200
                api = await client.get("/api/v1/sla")
                assert api.status_code == 200, api.text
                return Dashboard(api.json(), page.text)

    return asyncio.run(run())


@pytest.fixture
def default_dashboard(data_dir: Path) -> Iterator[Dashboard]:
    yield dashboard(data_dir, Settings(data_dir=data_dir))


def test_today_and_month_equal_the_cli_report(data_dir: Path, default_dashboard: Dashboard) -> None:
    for key, first in (("today", "2026-03-03"), ("this_month", "2026-03-01")):
        cli_figures = cli_totals(data_dir, first, "2026-03-04")
        shown = {s["metric"]: s for s in default_dashboard.api[key]}
        assert set(shown) == set(STAGES)
        for name in STAGES:
            expected = cli_figures[name]
            got = shown[name]
            assert (got["total"], got["met"], got["pending"], got["percent_met"]) == (
                expected["count"],
                expected["within_target"],
                expected["pending"],
                expected["percent_within"],
            ), (key, name)
            assert got["breached"] == expected["count"] - expected["within_target"]
    # Not 0 % across the board (sla_events, which held only breaches, said so).
    month = {s["metric"]: s for s in default_dashboard.api["this_month"]}
    assert month["meter_answer"]["percent_met"] == 80.0
    assert month["token_to_network"]["percent_met"] == 90.0


def test_page_shows_the_cli_percentages(data_dir: Path, default_dashboard: Dashboard) -> None:
    cli_figures = cli_totals(data_dir, "2026-03-01", "2026-03-04")
    rows = default_dashboard.page_rows(1)
    for name in STAGES:
        expected = cli_figures[name]
        assert rows[name]["total"] == str(expected["count"])
        assert rows[name]["met"] == str(expected["within_target"])
        assert rows[name]["percent"] == f"{expected['percent_within']:.1f}"


def test_daily_series_and_breaches_come_from_the_same_report(
    data_dir: Path, default_dashboard: Dashboard
) -> None:
    by_day = {d["day_start"][:10]: d for d in default_dashboard.api["daily"]}
    assert len(default_dashboard.api["daily"]) == 14
    # day_start is midnight WIB in UTC: 2 March WIB starts on 1 March 17:00 UTC.
    day2 = by_day["2026-03-01"]
    cli_day = cli_totals(data_dir, "2026-03-02", "2026-03-03")
    assert day2["sla_decided"] == sum(f["count"] for f in cli_day.values())
    assert day2["sla_met"] == sum(f["within_target"] for f in cli_day.values())
    args = ["sla", "report", "--from", "2026-03-01", "--to", "2026-03-04"]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(data_dir)])
    expected = {(b["stage"], b["subject_id"]) for b in json.loads(result.stdout)["breaches"]}
    shown = {(b["metric"], b["subject_id"]) for b in default_dashboard.api["breaches"]}
    assert shown == expected and len(shown) >= 4


def test_the_targets_used_are_shown_and_follow_the_settings(data_dir: Path) -> None:
    """The demo's fast profile answers meters within 20 s; `helpdesk serve` with defaults
    300 s. Each app shows the target it measured against, and measures against it."""
    default = dashboard(data_dir, Settings(data_dir=data_dir))
    fast = dashboard(data_dir, Settings(data_dir=data_dir, sla=SlaTargets(meter_answer_s=20.0)))
    assert default.page_rows(1)["meter_answer"]["target"] == "300 s"
    assert fast.page_rows(1)["meter_answer"]["target"] == "20 s"
    assert fast.page_rows(1)["ap2t_batch_interval"]["target"] == "24 h"
    assert default.api["targets_ms"]["meter_answer"] == 300_000
    assert fast.api["targets_ms"]["meter_answer"] == 20_000
    assert "[sla]" in fast.page
    month = {s["metric"]: s for s in fast.api["this_month"]}
    # Answers of 10 and 20 s are within 20 s; 30 s and longer, and the silent meter, are not.
    assert (month["meter_answer"]["met"], month["meter_answer"]["total"]) == (2, 10)
