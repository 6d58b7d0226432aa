"""Issue 17 item 9: the values the pages show (SLA stages, flows, kinds, states, error
pages) are in Bahasa Indonesia or English as the page is, and an error page keeps the
menu of whoever is logged in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from operator_data.api import helpdesk_texts, i18n
from operator_data.registry.models import CustomerStatus
from operator_data.sla.stages import STAGES
from operator_data.store.states import Direction, Flow, MessageState, MeterState, TransactionState
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import METER, PASSWORD

pytestmark = pytest.mark.timeout(90)

GROUPS = {
    "tx": TransactionState,
    "msg": MessageState,
    "meter": MeterState,
    "customer": CustomerStatus,
    "flow": Flow,
    "direction": Direction,
}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_stored_value_has_a_label_in_both_languages(group: str) -> None:
    for value in GROUPS[group]:
        pair = helpdesk_texts.VALUE_LABELS.get((group, value.value))
        assert pair is not None and all(pair), (group, value)


def test_every_sla_stage_has_a_label() -> None:
    for stage in STAGES:
        assert helpdesk_texts.value_label("stage", stage.name, "id") != stage.name
        assert helpdesk_texts.value_label("stage", stage.name, "en") != stage.name


def test_an_unknown_value_is_shown_as_stored() -> None:
    assert helpdesk_texts.value_label("kind", "SOMETHING_NEW", "en") == "SOMETHING_NEW"
    assert helpdesk_texts.value_label("kind", "TOKEN_DELIVERY", "id") == "kirim token"
    assert helpdesk_texts.value_label("tx", None, "id") == ""


def test_the_error_texts_exist_in_both_languages() -> None:
    for code in (400, 401, 403, 404, 405, 409, 422, 503):
        texts = {lang: i18n.texts(lang)[f"error_{code}"] for lang in i18n.LANGUAGES}
        assert all(texts.values()), code
        assert texts["id"] != texts["en"], code


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        yield opened


async def _login(env: Env, user: str = "sari") -> None:
    answer = await env.client.post("/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303


def _cells(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    ]


@pytest.mark.parametrize(
    ("lang", "stage", "flow", "state"),
    [
        ("id", "jawaban meter", "hub → meter", "diterima jaringan"),
        ("en", "meter answer", "hub → meter", "accepted by the network"),
    ],
)
async def test_sla_and_message_log_show_labels(
    env: Env, lang: str, stage: str, flow: str, state: str
) -> None:
    await _login(env)
    sla = await env.client.get(f"/sla?lang={lang}")
    cells = _cells(sla.text)
    assert stage in cells
    assert "meter_answer" not in cells and "p2apst_response" not in cells
    assert 'data-metric="meter_answer"' in sla.text  # the stored name stays for scripts
    log = await env.client.get(f"/messages?lang={lang}")
    cells = _cells(log.text)
    assert flow in cells and "hub_to_meter" not in cells
    assert state in cells and "sent" not in cells


async def test_transaction_page_names_its_state(env: Env) -> None:
    await _login(env)
    page = await env.client.get(f"/transactions/{env.seeded.stuck_txn}?lang=en")
    found = re.search(r'<span class="pill" id="state" data-state="(\w+)">([^<]+)</span>', page.text)
    assert found is not None
    assert found.groups() == ("token_sent", "token sent to the meter")
    assert "Stopped at stage: <b>token sent to the meter</b>" in page.text


@pytest.mark.parametrize(("lang", "heading"), [("id", "Tidak ditemukan."), ("en", "Not found.")])
async def test_a_404_page_keeps_the_menu(env: Env, lang: str, heading: str) -> None:
    await _login(env)
    for url in (f"/meters/99999999999?lang={lang}", f"/no-such-page?lang={lang}"):
        page = await env.client.get(url, headers={"accept": "text/html"})
        assert page.status_code == 404, url
        assert "<nav>" in page.text and 'href="/incidents"' in page.text, url
        assert heading in page.text and f'<html lang="{lang}">' in page.text, url
        assert 'name="csrf" value=""' not in page.text  # the logout form works there too


@pytest.mark.parametrize(
    ("lang", "heading"),
    [
        ("id", "Cara akses ini tidak diizinkan untuk alamat ini."),
        ("en", "This address does not accept this kind of request."),
    ],
)
async def test_a_405_page_is_translated_and_keeps_the_menu(
    env: Env, lang: str, heading: str
) -> None:
    await _login(env)
    page = await env.client.post(f"/sla?lang={lang}", headers={"accept": "text/html"})
    assert page.status_code == 405
    assert heading in page.text and "<nav>" in page.text


async def test_errors_of_the_api_and_scripts_stay_json(env: Env) -> None:
    await _login(env)
    assert (await env.client.get("/no-such-page")).json() == {"detail": "Not Found"}
    api = await env.client.get("/api/v1/no-such", headers={"accept": "text/html"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    wrong = await env.client.post(f"/api/v1/meters/{METER}")
    assert wrong.status_code == 405 and "detail" in wrong.json()


async def test_an_error_page_without_login_has_no_menu(env: Env) -> None:
    page = await env.client.get("/no-such-page?lang=en", headers={"accept": "text/html"})
    assert page.status_code == 404 and "Not found." in page.text
    assert "<nav>" not in page.text
