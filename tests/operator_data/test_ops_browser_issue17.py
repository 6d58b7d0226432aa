"""Issue 17 items 5-8 in a real headless Chromium against a real uvicorn server, acting
out two calls: "paid but no token" (find the purchase by its token's last digits, open its
token frame, read the delivery history, resend) and "no receipt" (the purchase's messages,
then what waits in the outbox and the gateways). Screenshots go to docs/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.operator_data.helpdesk_seed import CLEAR_TOKEN, METER, OTHER_TOKEN, PASSWORD
from tests.operator_data.helpdesk_server import Running, running_server
from tests.operator_data.test_web_browser import ARGS, CHROMIUM, SCREENSHOTS

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_server(tmp_path_factory.mktemp("ops") / "web.db") as running:
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
    page = context.new_page()
    page.goto(f"{base}/login?lang=id")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(f"{base}/")
    return page


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _find(page: Page, base: str, token: str) -> None:
    page.click("#nav-find")
    page.wait_for_url(f"{base}/find")
    page.fill("#token_suffix", token[-4:])
    page.fill("#find_meter", METER)
    page.click("#find")
    expect(page.locator("#found tbody tr")).to_have_count(1)


def test_paid_but_no_token(browser: Browser, server: Running) -> None:
    base = server.base_url
    page = _login(browser, base, "sari")
    _find(page, base, OTHER_TOKEN)
    _shot(page, "find-purchase")
    page.locator("#found").get_by_role("link", name=server.seeded.stuck_txn).click()
    page.wait_for_url(f"{base}/transactions/{server.seeded.stuck_txn}")
    page.locator("a.msg-detail").first.click()
    expect(page.locator("#message-kind")).to_have_text("token_delivery")
    expect(page.locator("#delivery-history tbody tr")).to_have_count(1)
    expect(page.locator("#delivery-history")).to_contain_text("queued")
    expect(page.locator("#message-outbox")).to_contain_text("Menunggu sejak")
    assert OTHER_TOKEN not in page.content()
    _shot(page, "message-detail")
    page.click("#resend-link")
    page.fill("#resend-reason", "Pelanggan sudah bayar, token belum masuk")
    page.click("#resend")
    expect(page.locator("#resend-outcome")).to_contain_text("Token dikirim ulang ke meter.")
    expect(page.locator("#resend-outcome")).to_contain_text("Dicatat di log audit.")
    expect(page.locator("#nav-outbox")).to_be_visible()  # the app's own layout
    _shot(page, "resend-outcome")
    page.context.close()


def test_no_receipt(browser: Browser, server: Running) -> None:
    base = server.base_url
    page = _login(browser, base, "sari")
    _find(page, base, CLEAR_TOKEN)
    page.locator("#found").get_by_role("link", name=server.seeded.complete_txn).click()
    page.wait_for_url(f"{base}/transactions/{server.seeded.complete_txn}")
    # No receipt among its messages: what is still waiting to go out?
    assert "receipt" not in page.locator("main").inner_text()
    page.click("#nav-outbox")
    page.wait_for_url(f"{base}/outbox")
    expect(page.locator("#outbox-intro")).to_contain_text("struk")
    expect(page.locator("#outbox tbody tr").first).to_contain_text("token_delivery")
    expect(page.locator("#outbox tbody tr").first).to_contain_text("tidak dapat dibatalkan")
    _shot(page, "outbox")
    page.click("#nav-gateways")
    page.wait_for_url(f"{base}/gateways")
    total = page.locator("#outbox-pending").inner_text()
    assert int(total) == int(page.locator("#unrouted").inner_text())  # none routed yet
    _shot(page, "gateways")
    page.goto(f"{base}/gateways?lang=en")
    expect(page.locator("h1")).to_have_text("Gateway and modem status")
    page.context.close()
