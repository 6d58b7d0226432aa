"""The complaint pages in a real headless Chromium against a real uvicorn server, acting
out two cases: "record and resolve a complaint" (a helpdesk user takes a call) and "the
monthly complaint report" (a supervisor reads a month's figures). Screenshots go to
docs/screenshots/."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from operator_data.complaints import store as cs
from operator_data.complaints.calendar import WIB, default
from operator_data.store import Store
from operator_data.store.types import utcnow
from tests.operator_data.helpdesk_seed import METER, PASSWORD
from tests.operator_data.helpdesk_server import Running, running_server
from tests.operator_data.test_web_browser import ARGS, CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.timeout(120)


def _report_month() -> tuple[int, int]:
    """Two months back: over, so its figures are final."""
    today = utcnow().astimezone(WIB).date()
    y, m0 = divmod(today.year * 12 + today.month - 1 - 2, 12)
    return y, m0 + 1


def _received_due_in(year: int, month: int) -> datetime:
    """A working morning whose 15-working-day due day falls in the month."""
    cal = default()
    day = date(year, month, 1) - timedelta(days=40)
    while True:
        at = datetime.combine(day, time(9), tzinfo=WIB)
        due = cal.due_on(at)
        if (due.year, due.month) == (year, month) and cal.is_working_day(day):
            return at
        day += timedelta(days=1)


async def _seed_month(db: str) -> None:
    """Ten complaints due in the report month: nine resolved the next day, one after its
    due day but by the month's last working day; and one third-party-caused."""
    year, month = _report_month()
    received = _received_due_in(year, month)
    last = default().last_working_day(year, month)
    async with Store(f"sqlite+aiosqlite:///{db}") as store, store.begin() as conn:
        for n in range(11):
            complaint_id = await cs.record(
                conn,
                cs.NewComplaint(
                    channel="call",
                    category="tagihan" if n < 5 else "token",
                    text=f"keluhan {n}",
                    received_at=received + timedelta(minutes=n),
                    opened_by="hana",
                    meter_number=METER,
                ),
            )
            resolved = received + timedelta(days=1)
            if n == 9:
                resolved = datetime.combine(last, time(15), tzinfo=WIB)
            await cs.resolve(
                conn, complaint_id, code="solved", text="selesai", actor="hana", at=resolved
            )
            if n == 10:
                await cs.set_third_party(
                    conn, complaint_id, third_party=True, reason="bank", actor="sari", at=resolved
                )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    db = tmp_path_factory.mktemp("web") / "web.db"
    with running_server(db) as running:
        # Its own thread and loop, as the server's: this thread may already run one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _seed_month(str(db))).result(timeout=60)
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


def _login(browser: Browser, base: str, user: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="id-ID")
    outside: list[str] = []
    context.on(
        "request",
        lambda request: None if request.url.startswith(base) else outside.append(request.url),
    )
    page = context.new_page()
    page.goto(f"{base}/login?lang=id")
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


def test_record_and_resolve_a_complaint(browser: Browser, server: Running) -> None:
    base = server.base_url
    page = _login(browser, base, "hana")
    # A caller: paid yesterday, the token never reached the meter.
    page.click("#nav-complaints")
    page.wait_for_url(f"{base}/complaints")
    page.click("#new-complaint")
    page.fill("#meter_number", METER)
    page.select_option("#category", "token")
    page.fill("#text", "Sudah bayar Rp100.000 kemarin, token belum masuk ke meter")
    page.click("#save-complaint")
    expect(page.locator("#created")).to_contain_text("Pengaduan tercatat")
    ticket = page.locator("#ticket").inner_text()
    assert ticket.startswith("ADU-")
    expect(page.locator("#complaint-state")).to_have_text("Terbuka")
    page.click("#take")
    expect(page.locator("#assigned-to")).to_have_text("hana")
    page.select_option("#link-kind", "transaction")
    page.fill("#link-ref", server.seeded.stuck_txn)
    page.click("#add-link")
    expect(page.locator("#links")).to_contain_text(server.seeded.stuck_txn)
    page.fill("#note", "Transaksi tertahan, token dikirim ulang ke meter")
    page.click("#add-note")
    page.select_option("#resolution-code-select", "token_resent")
    page.fill("#resolution", "Token dikirim ulang, meter menerima, pelanggan dikonfirmasi")
    page.click("#resolve")
    expect(page.locator("#complaint-state")).to_have_text("Selesai")
    expect(page.locator("#resolution-code")).to_have_text("Token dikirim ulang")
    expect(page.locator("#history li")).to_have_count(5)
    _shot(page, "complaint-resolved")
    # the queue shows it among the resolved ones; the working queue no longer
    page.goto(f"{base}/complaints?state=resolved")
    expect(page.locator(f"#complaint-{ticket}")).to_be_visible()
    page.goto(f"{base}/complaints")
    expect(page.locator(f"#complaint-{ticket}")).to_have_count(0)
    # a form with nobody named comes back with the reason and what was typed
    page.goto(f"{base}/complaints/new?lang=en")
    page.select_option("#category", "tagihan")
    page.fill("#text", "charged twice")
    page.click("#save-complaint")
    expect(page.locator("#problem")).to_contain_text("customer ID, the meter number")
    expect(page.locator("#text")).to_have_value("charged twice")
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{base}/complaints/{ticket}")
    _no_horizontal_overflow(page)
    # the report is a supervisor's
    assert page.goto(f"{base}/complaints/report").status == 403  # type: ignore[union-attr]
    assert page.outside_requests == []  # type: ignore[attr-defined]
    page.context.close()


def test_the_monthly_complaint_report(browser: Browser, server: Running) -> None:
    base = server.base_url
    year, month = _report_month()
    page = _login(browser, base, "sari")
    page.goto(f"{base}/complaints")
    page.click("#report-link")
    page.fill("#month", f"{year:04d}-{month:02d}")
    page.locator("#month-form button").click()
    page.wait_for_url(f"{base}/complaints/report?month={year:04d}-{month:02d}")
    expect(page.locator("#measured")).to_have_text("10")
    expect(page.locator("#within-pct")).to_contain_text("90.0 %")
    expect(page.locator("#month-end-pct")).to_contain_text("100.0 %")
    expect(page.locator("#third-party-excluded")).to_have_text("1")
    expect(page.locator("#verdict")).to_have_text("Target tercapai")
    expect(page.locator("#late-tickets")).to_have_count(0)  # none past the month's end
    _shot(page, "complaint-report")
    page.goto(f"{base}/complaints/report?month={year:04d}-{month:02d}&lang=en")
    expect(page.locator("#verdict")).to_have_text("Target met")
    expect(page.locator("#disruption")).to_contain_text("Per 1,000 customers")
    page.goto(f"{base}/complaints/report?month=2026-13")
    expect(page.locator("#error")).to_have_text("The month must be YYYY-MM.")
    page.goto(f"{base}/complaints/annual?year={year}")
    expect(page.locator("#annual tbody tr")).to_have_count(12)
    row = page.locator("#annual tbody tr", has_text=f"{year:04d}-{month:02d}")
    expect(row).to_contain_text("90.0 %")
    expect(row).to_contain_text("Target met")  # the language chosen above stays
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{base}/complaints/report?month={year:04d}-{month:02d}")
    _no_horizontal_overflow(page)
    assert page.outside_requests == []  # type: ignore[attr-defined]
    page.context.close()
