"""The incident queue, the meter-readings page and the charges page in a real headless
Chromium against a real uvicorn server, acting out two calls: "what is my meter's
credit?" and an incident worked from open to resolved. Screenshots go to
docs/screenshots/."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from operator_data.store import Store
from tests.operator_data.helpdesk_extra_seed import Extra, seed_extra
from tests.operator_data.helpdesk_seed import (
    CLEAR_TOKEN,
    CUSTOMER_ID,
    METER,
    OTHER_TOKEN,
    PASSWORD,
    PHONE,
)
from tests.operator_data.helpdesk_server import Running, running_server
from tests.operator_data.test_web_browser import ARGS, CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, Extra]]:
    db = tmp_path_factory.mktemp("web") / "web.db"
    with running_server(db) as running:

        async def add() -> Extra:
            # A second connection to the server's file (WAL): the hub's writes, as they
            # would arrive while the helpdesk works.
            async with Store(f"sqlite+aiosqlite:///{db}") as store:
                return await seed_extra(store, running.seeded)

        # Its own thread and loop, as the server's: this thread may already run one.
        with ThreadPoolExecutor(1) as pool:
            extra = pool.submit(asyncio.run, add()).result(timeout=60)
        yield running, extra


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


def _login(browser: Browser, base: str, user: str, *, lang: str = "id") -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="id-ID")
    outside: list[str] = []
    context.on(
        "request",
        lambda request: None if request.url.startswith(base) else outside.append(request.url),
    )
    page = context.new_page()
    page.goto(f"{base}/login?lang={lang}")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{base}/")
    page.outside_requests = outside  # type: ignore[attr-defined]
    return page


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _no_horizontal_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


def test_what_is_my_meters_credit(browser: Browser, server: tuple[Running, Extra]) -> None:
    running, _ = server
    base = running.base_url
    page = _login(browser, base, "hana")
    # The caller gives the meter number; the helpdesk searches it and opens its readings.
    page.fill("#q", METER)
    page.press("#q", "Enter")
    page.wait_for_url(f"{base}/meters/{METER}")
    page.click("#meter-readings")
    page.wait_for_url(f"{base}/meters/{METER}/readings")
    expect(page.locator("#credit-now")).to_have_text("12.34")
    expect(page.locator("#credit-at")).to_contain_text("Dibaca (WIB)")
    expect(page.locator("svg.chart polyline.line")).to_have_count(1)
    expect(page.locator("#readings tbody tr")).to_have_count(50)
    expect(page.locator("#readings tbody tr").first).to_contain_text("lemah")  # CSQ 7
    expect(page.locator("#meter-alarms tbody tr").first).to_contain_text("Kredit hampir habis")
    expect(page.locator("#purchases tbody tr")).to_have_count(2)
    html = page.content()
    assert CLEAR_TOKEN not in html and OTHER_TOKEN not in html
    _shot(page, "meter-readings")
    page.click("#readings-older")
    expect(page.locator("#readings tbody tr")).to_have_count(10)  # 60 readings, 50 a page
    expect(page.locator("#credit-now")).to_have_text("12.34")  # the answer stays on top
    page.goto(f"{base}/meters/{METER}/readings?lang=en")
    expect(page.locator("#meter-alarms tbody tr").first).to_contain_text("Credit is running low")
    page.set_viewport_size({"width": 390, "height": 800})
    expect(page.locator("#credit-now")).to_be_visible()
    _no_horizontal_overflow(page)
    _shot(page, "meter-readings-mobile")
    assert page.outside_requests == []  # type: ignore[attr-defined]
    page.context.close()


def test_an_incident_worked_from_open_to_resolved(
    browser: Browser, server: tuple[Running, Extra]
) -> None:
    running, extra = server
    base = running.base_url
    page = _login(browser, base, "hana")
    page.click("#nav-incidents")
    page.wait_for_url(f"{base}/incidents")
    row = page.locator(f"#incident-{extra.meter_incident}")
    expect(row).to_contain_text("Terbuka")
    expect(row).to_contain_text("+62812*****890")
    assert PHONE not in page.content()
    _shot(page, "incidents")
    row.get_by_role("link", name="token not acknowledged").click()
    page.wait_for_url(f"{base}/incidents/{extra.meter_incident}")
    expect(page.locator("#links")).to_contain_text(running.seeded.stuck_txn)
    page.click("#take")
    expect(page.locator("#done")).to_have_text("Tersimpan.")
    expect(page.locator("#incident-state")).to_have_text("Ditangani")
    expect(page.locator("#assigned-to")).to_have_text("hana")
    page.fill("#note", "Pelanggan menelepon: layar meter tidak berubah.")
    page.click("#add-note")
    expect(page.locator("#history")).to_contain_text("layar meter tidak berubah")
    # The purchase the hub linked: its page is one click away.
    page.locator("#links").get_by_role("link", name=running.seeded.stuck_txn).click()
    page.wait_for_url(f"{base}/transactions/{running.seeded.stuck_txn}")
    page.go_back()
    page.fill("#resolution", "Token dikirim ulang, meter menerimanya.")
    page.click("#resolve")
    expect(page.locator("#incident-state")).to_have_text("Selesai")
    expect(page.locator("#history li")).to_have_count(3)
    expect(page.locator("#resolve-form")).to_have_count(0)
    _shot(page, "incident")
    page.goto(f"{base}/incidents")
    expect(page.locator(f"#incident-{extra.meter_incident}")).to_have_count(0)
    page.goto(f"{base}/incidents?state=resolved")
    expect(page.locator(f"#incident-{extra.meter_incident}")).to_contain_text("Selesai")
    assert page.outside_requests == []  # type: ignore[attr-defined]
    page.context.close()


def test_supervisor_sees_a_customers_sms_charges(
    browser: Browser, server: tuple[Running, Extra]
) -> None:
    running, extra = server
    base = running.base_url
    page = _login(browser, base, "sari", lang="en")
    page.click("#nav-charges")
    page.fill("#lookup-value", CUSTOMER_ID)
    page.press("#lookup-value", "Enter")
    page.wait_for_url(f"{base}/customers/{CUSTOMER_ID}/charges")
    expect(page.locator("#total-sms")).to_have_text(str(len(extra.charged_messages)))
    expect(page.locator("#export-csv")).to_be_visible()
    _shot(page, "charges")
    assert page.outside_requests == []  # type: ignore[attr-defined]
    page.context.close()
