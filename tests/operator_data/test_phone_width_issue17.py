"""Issue 17 item 10: at a phone's width (390 CSS px) no page scrolls sideways.

Every page of the helpdesk is opened in headless Chromium with a 390 px viewport, logged
in as an admin (who sees every page and form), and must satisfy
`document.scrollingElement.scrollWidth <= innerWidth`: wide tables scroll inside their
own box, long codes wrap. The failures of all pages are reported together."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.operator_data.helpdesk_seed import CUSTOMER_ID, METER, PASSWORD
from tests.operator_data.helpdesk_server import Running, running_server

pytestmark = pytest.mark.timeout(180)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
OVERFLOW = "() => [document.scrollingElement.scrollWidth, window.innerWidth]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_server(
        tmp_path_factory.mktemp("phone") / "web.db", extra_messages=12, spacing=timedelta(hours=9)
    ) as running:
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


def _pages(server: Running) -> list[str]:
    s = server.seeded
    return [
        "/",
        "/messages",
        f"/messages?meter_number={METER}",
        "/sla",
        "/alarms",
        "/status",
        "/incidents",
        "/readings",
        "/charges",
        f"/meters/{METER}",
        f"/meters/{METER}/readings",
        f"/customers/{CUSTOMER_ID}?reason=customer%20called",
        f"/transactions/{s.stuck_txn}",
        f"/transactions/{s.complete_txn}",
        "/users",
        "/account/password",
        "/sim-swaps",
        "/sim-swaps?state=nonsense",  # the refusal, too
        "/find",
        "/gateways",
        "/outbox",
        "/complaints",
        "/no-such-page",  # the 404 page
        "/search?q=xyz",
    ]


def _width(page: Page) -> tuple[int, int]:
    scroll, inner = page.evaluate(OVERFLOW)
    return int(scroll), int(inner)


def _logged_in(browser: Browser, server: Running, lang: str) -> Page:
    # Not is_mobile: a mobile viewport zooms out to fit a too-wide page, which would hide
    # the overflow this test looks for.
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(f"{server.base_url}/login?lang={lang}")
    assert _width(page)[0] <= PHONE["width"], "the login page scrolls sideways"
    page.fill("#username", "ade")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{server.base_url}/")
    return page


@pytest.mark.parametrize("lang", ["id", "en"])
def test_no_page_scrolls_sideways_at_390_px(browser: Browser, server: Running, lang: str) -> None:
    page = _logged_in(browser, server, lang)
    wide = []
    for path in _pages(server):
        page.goto(f"{server.base_url}{path}")
        scroll, inner = _width(page)
        assert inner == PHONE["width"]
        if scroll > inner:
            wide.append(f"{path}: {scroll} px")
    page.context.close()
    assert wide == [], f"pages wider than {PHONE['width']} px ({lang})"
