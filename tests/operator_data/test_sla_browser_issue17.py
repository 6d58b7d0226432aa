"""Issue 17 in a real headless Chromium: the SLA page a helpdesk user reads shows the
percentages `pintar sla report` prints for the same database, and the targets used."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from typer.testing import CliRunner

from operator_data.cli.main import app as cli
from operator_data.sla.dashboard import wib_today
from operator_data.store import utcnow
from tests.operator_data.helpdesk_seed import PASSWORD
from tests.operator_data.helpdesk_server import Running, running_server
from tests.operator_data.test_web_browser import ARGS, CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sla-web")


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[Running]:
    with running_server(data_dir / "pintar.db") as running:  # the file --data-dir opens
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian's chromium is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _cli_month(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    for name in ("PINTAR_CONFIG", "PINTAR_DATA_DIR", "PINTAR_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)
    today = wib_today(utcnow())
    args = ["sla", "report", "--from", today.replace(day=1).isoformat()]
    args += ["--to", (today + timedelta(days=1)).isoformat(), "--group", "month"]
    # In its own thread: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, cli, [*args, "--data-dir", str(data_dir)]).result()
    assert result.exit_code == 0, result.output
    return {s["stage"]: s["total"] for s in json.loads(result.stdout)["stages"]}


def test_the_sla_page_agrees_with_the_cli(
    browser: Browser, server: Running, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page.goto(f"{server.base_url}/login?lang=en")
    page.fill("#username", "hana")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{server.base_url}/")
    page.goto(f"{server.base_url}/sla")
    month = page.locator(".card").nth(1)
    expected = _cli_month(data_dir, monkeypatch)
    # The seed: one purchase answered in 55 s, one whose meter never answered (overdue).
    assert expected["meter_answer"]["percent_within"] == 50.0
    for stage in ("token_to_network", "meter_answer", "report_to_p2apst"):
        row = month.locator(f'tr[data-metric="{stage}"]')
        figures = expected[stage]
        expect(row.locator("td.total")).to_have_text(str(figures["count"]))
        expect(row.locator("td.met")).to_have_text(str(figures["within_target"]))
        percent = figures["percent_within"]
        expect(row.locator("td.percent")).to_have_text("" if percent is None else f"{percent:.1f}")
    expect(month.locator('tr[data-metric="meter_answer"] td.target')).to_have_text("300 s")
    expect(page.locator("#sla-targets")).to_contain_text("[sla]")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "sla-figures.png"), full_page=True)
    page.close()
