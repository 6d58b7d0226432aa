"""Issue 17 items 5-8 over HTTP (no browser): the message detail (masked, with its
delivery history), the purchase search and its query plans, the outbox view with retry
and cancel (supervisor, audited, cancel only for customer notices), the resend with its
outcome, and the gateway board agreeing with the outbox."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects import sqlite

from operator_data.api.auth import Role
from operator_data.api.message_detail import TransactionSearch, transaction_search_query
from operator_data.store import Flow, schema
from operator_data.store.messages import enqueue_outbound, record_inbound
from tests.operator_data.helpdesk_api_env import Env, Template, build_template, open_env
from tests.operator_data.helpdesk_seed import (
    CLEAR_TOKEN,
    CUSTOMER_ID,
    METER,
    OTHER_TOKEN,
    PASSWORD,
    PHONE,
)

pytestmark = pytest.mark.timeout(60)

PLN_REF = "PLN0000777"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(tmp_path_factory)


@pytest.fixture
async def env(template: Template, tmp_path: Path) -> AsyncIterator[Env]:
    async for opened in open_env(template, tmp_path):
        async with opened.store.begin() as conn:
            await conn.execute(
                update(schema.transactions)
                .where(schema.transactions.c.id == opened.seeded.stuck_txn)
                .values(pln_ref=PLN_REF, switcher_ref=opened.seeded.stuck_txn)
            )
        yield opened


async def _outbox_id(env: Env, message_id: str) -> int:
    async with env.store.read() as conn:
        found = await conn.scalar(
            select(schema.outbox.c.id).where(schema.outbox.c.message_id == message_id)
        )
    assert found is not None
    return int(found)


async def _token_frame(env: Env) -> str:
    async with env.store.read() as conn:
        found = await conn.scalar(
            select(schema.messages.c.id).where(
                schema.messages.c.transaction_id == env.seeded.stuck_txn,
                schema.messages.c.kind == "token_delivery",
            )
        )
    assert found is not None
    return str(found)


async def _notice(env: Env, kind: str, key: str) -> str:
    async with env.store.begin() as conn:
        message, _ = await enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_CUSTOMER,
            idempotency_key=key,
            destination=PHONE,
            payload=b"Pemberitahuan",
            customer_id=CUSTOMER_ID,
            kind=kind,
            body="Pemberitahuan",
            at=env.seeded.now,
        )
    return message.id


async def _login(env: Env, user: str) -> str:
    answer = await env.client.post("/login", data={"username": user, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', (await env.client.get("/find")).text)
    assert found is not None
    return found.group(1)


# -- 5. message detail and purchase search ------------------------------------------------


async def test_message_detail_shows_history_and_masks_the_customer(env: Env) -> None:
    frame = await _token_frame(env)
    answer = await env.client.get(f"/api/v1/messages/{frame}", headers=env.as_(Role.HELPDESK))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["transaction_id"] == env.seeded.stuck_txn
    assert [s["state"] for s in body["states"]] == ["queued"]
    assert body["outbox"] is not None and body["outbox"]["attempts"] == 0
    # A customer's BELI: phone masked for the helpdesk, PDU never shown.
    async with env.store.begin() as conn:
        request, _ = await record_inbound(
            conn,
            flow=Flow.CUSTOMER_TO_HUB,
            idempotency_key="beli-pdu",
            peer_msisdn=PHONE,
            customer_id=CUSTOMER_ID,
            kind="BELI",
            body="BELI 20000 ****",
            raw_pdu=b"BELI 20000 1234",
            at=env.seeded.now,
        )
    beli = (
        await env.client.get(f"/api/v1/messages/{request.id}", headers=env.as_(Role.HELPDESK))
    ).json()
    assert beli["peer_msisdn"] == "+62812*****890"
    assert beli["pdu_masked"] is True and beli["raw_pdu_hex"] is None
    assert "1234" not in str(beli)
    assert [r.subject_id for r in await env.audit("view.message")] == [frame, request.id]


async def test_message_detail_is_404_for_an_unknown_id_and_422_for_a_malformed_one(
    env: Env,
) -> None:
    headers = env.as_(Role.HELPDESK)
    assert (
        await env.client.get("/api/v1/messages/" + "0" * 26, headers=headers)
    ).status_code == 404
    assert (await env.client.get("/api/v1/messages/nope", headers=headers)).status_code == 422
    assert (await env.client.get("/api/v1/messages/" + "0" * 26)).status_code == 401


@pytest.mark.parametrize(
    ("query", "hits"),
    [
        (f"pln_ref={PLN_REF}", 1),
        ("switcher_ref={stuck}", 1),
        (f"token_suffix={OTHER_TOKEN[-4:]}&meter_number={METER}", 1),
        (f"token_suffix={OTHER_TOKEN[-4:]}&customer_id={CUSTOMER_ID}", 1),
        ("pln_ref=UNKNOWN", 0),
    ],
)
async def test_purchases_are_found_by_reference_or_token_suffix(
    env: Env, query: str, hits: int
) -> None:
    url = "/api/v1/transactions?" + query.format(stuck=env.seeded.stuck_txn)
    answer = await env.client.get(url, headers=env.as_(Role.HELPDESK))
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [i["id"] for i in items] == [env.seeded.stuck_txn] * hits
    assert all(i["phone_msisdn"] == "+62812*****890" for i in items)
    assert OTHER_TOKEN not in answer.text and CLEAR_TOKEN not in answer.text


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "exactly one"),
        (f"pln_ref={PLN_REF}&token_suffix=1234", "exactly one"),
        ("token_suffix=1234", "meter_number or customer_id"),
        (f"token_suffix=12a4&meter_number={METER}", "last 4 digits"),
        ("token_suffix=1234&meter_number=123", "meter_number: 11 digits"),
        ("pln_ref=a%20b", "pln_ref"),
    ],
)
async def test_searches_no_index_can_answer_are_refused(env: Env, query: str, says: str) -> None:
    answer = await env.client.get(f"/api/v1/transactions?{query}", headers=env.as_(Role.HELPDESK))
    assert answer.status_code == 422 and says in answer.json()["detail"]
    await _login(env, "hana")
    page = await env.client.get(f"/find?{query}&lang=en") if query else None
    if page is not None:
        assert page.status_code == 422 and 'id="found"' not in page.text


@pytest.mark.parametrize(
    ("search", "index"),
    [
        (TransactionSearch(pln_ref="X"), "ix_transactions_pln_ref"),
        (TransactionSearch(switcher_ref="X"), "ix_transactions_switcher_ref"),
        (
            TransactionSearch(token_suffix="1234", meter_number=METER),
            "ix_transactions_meter_number_created_at",
        ),
        (
            TransactionSearch(token_suffix="1234", customer_id=CUSTOMER_ID),
            "ix_transactions_customer_id_created_at",
        ),
    ],
)
async def test_each_search_reads_through_an_index(
    env: Env, search: TransactionSearch, index: str
) -> None:
    statement = transaction_search_query(search).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    async with env.store.read() as conn:
        plan = " | ".join(
            str(row[-1]) for row in await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
        )
    assert index in plan, plan
    assert not re.search(r"\bSCAN transactions\b(?! USING)", plan), plan


async def test_the_message_log_filters_by_date_and_refuses_bad_dates(env: Env) -> None:
    await _login(env, "hana")
    day = env.seeded.now.strftime("%Y-%m-%d")
    same = await env.client.get(f"/messages?meter_number={METER}&from={day}&until={day}")
    assert same.status_code == 200 and same.text.count('class="st-') > 0
    before = await env.client.get(f"/messages?meter_number={METER}&until=2000-01-01")
    assert before.status_code == 200 and 'class="st-' not in before.text
    bad = await env.client.get(f"/messages?meter_number={METER}&from=2026-13-01&lang=en")
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text and 'class="st-' not in bad.text


# -- 6. outbox ---------------------------------------------------------------------------


async def test_the_outbox_is_for_supervisors_and_says_why_rows_wait(env: Env) -> None:
    assert (
        await env.client.get("/api/v1/outbox", headers=env.as_(Role.HELPDESK))
    ).status_code == 403
    answer = await env.client.get("/api/v1/outbox", headers=env.as_(Role.SUPERVISOR))
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == len(body["items"]) >= 1
    frame = await _token_frame(env)
    row = next(i for i in body["items"] if i["message_id"] == frame)
    assert row["why"] == "due" and row["cancellable"] is False
    await _login(env, "hana")
    assert (await env.client.get("/outbox")).status_code == 403


async def test_a_token_frame_can_be_retried_but_not_cancelled(env: Env) -> None:
    frame = await _token_frame(env)
    oid = await _outbox_id(env, frame)
    sup = env.as_(Role.SUPERVISOR)
    refused = await env.client.post(
        f"/api/v1/outbox/{oid}/cancel", json={"reason": "stuck"}, headers=sup
    )
    assert refused.status_code == 409 and "only customer notices" in refused.json()["detail"]
    assert await _outbox_id(env, frame) == oid  # still there
    retried = await env.client.post(
        f"/api/v1/outbox/{oid}/retry", json={"reason": "modem back"}, headers=sup
    )
    assert retried.status_code == 200 and retried.json()["result"] == "retried"
    results = [(r.subject_id, r.detail["result"]) for r in await env.audit("action.outbox_cancel")]
    assert results == [(str(oid), "refused")]
    assert [r.detail["result"] for r in await env.audit("action.outbox_retry")] == ["retried"]


async def test_a_customer_notice_is_cancelled_into_the_log_not_deleted(env: Env) -> None:
    notice = await _notice(env, "low-credit", "notice-1")
    receipt = await _notice(env, "receipt", "receipt-1")
    csrf = await _login(env, "sari")
    page = await env.client.get("/outbox?lang=en")
    assert page.status_code == 200 and "Cancel is for customer notices only" in page.text
    oid = await _outbox_id(env, notice)
    short = await env.client.post(f"/outbox/{oid}/cancel", data={"csrf": csrf, "reason": "x"})
    assert short.status_code == 422
    done = await env.client.post(
        f"/outbox/{oid}/cancel", data={"csrf": csrf, "reason": "customer asked"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/outbox?done=cancelled"
    async with env.store.read() as conn:
        message = (
            await conn.execute(select(schema.messages).where(schema.messages.c.id == notice))
        ).one()
    assert message.state == "failed" and "customer asked" in message.reject_reason
    rid = await _outbox_id(env, receipt)
    kept = await env.client.post(
        f"/outbox/{rid}/cancel", data={"csrf": csrf, "reason": "customer asked"}
    )
    assert kept.status_code == 409 and 'id="refused"' in kept.text
    assert await _outbox_id(env, receipt) == rid
    wrong = await env.client.post(f"/outbox/{rid}/retry", data={"csrf": "no", "reason": "abc"})
    assert wrong.status_code == 403


# -- 7. resend ---------------------------------------------------------------------------


async def test_resend_outcomes_are_shown_and_audited_with_their_result(env: Env) -> None:
    sup = env.as_(Role.SUPERVISOR)
    done = await env.client.post(
        f"/api/v1/transactions/{env.seeded.stuck_txn}/resend",
        json={"reason": "paid, no token"},
        headers=sup,
    )
    assert done.status_code == 200 and done.json()["outcome"] == "resent"
    finished = await env.client.post(
        f"/api/v1/transactions/{env.seeded.complete_txn}/resend",
        json={"reason": "paid, no token"},
        headers=sup,
    )
    assert finished.status_code == 409 and finished.json()["outcome"] == "not_allowed"
    assert (
        await env.client.post(
            f"/api/v1/transactions/{env.seeded.stuck_txn}/resend",
            json={"reason": "paid, no token"},
            headers=env.as_(Role.HELPDESK),
        )
    ).status_code == 403
    csrf = await _login(env, "sari")
    form = await env.client.get(f"/transactions/{env.seeded.complete_txn}/resend-token?lang=en")
    assert "not offered" in form.text and 'id="resend"' not in form.text
    page = await env.client.post(
        f"/transactions/{env.seeded.stuck_txn}/resend-token",
        data={"csrf": csrf, "reason": "paid, no token"},
    )
    assert page.status_code == 200 and "The token was sent to the meter again" in page.text
    assert 'href="/outbox"' in page.text  # the app's own layout, menu included
    audited = [(r.subject_id, r.detail["result"]) for r in await env.audit("action.resend_token")]
    assert audited == [
        (env.seeded.stuck_txn, "resent"),
        (env.seeded.complete_txn, "not_allowed"),
        (env.seeded.stuck_txn, "resent"),
    ]


# -- 8. gateways -------------------------------------------------------------------------


async def test_the_gateway_board_agrees_with_the_outbox(env: Env) -> None:
    async with env.store.begin() as conn:
        await conn.execute(
            update(schema.messages)
            .where(schema.messages.c.id == await _token_frame(env))
            .values(gateway_id="gw-1", modem_id="m1", state="failed")
        )
        await conn.execute(
            update(schema.outbox)
            .where(schema.outbox.c.message_id == await _token_frame(env))
            .values(gateway_hint="gw-1")
        )
    answer = await env.client.get("/api/v1/gateways", headers=env.as_(Role.HELPDESK))
    assert answer.status_code == 200, answer.text
    board = answer.json()
    outbox = (await env.client.get("/api/v1/outbox", headers=env.as_(Role.SUPERVISOR))).json()
    queues = sum(g["queue"] for g in board["gateways"]) + board["unrouted"] + board["other_queue"]
    assert queues == board["outbox_pending"] == outbox["total"]
    gw = next(g for g in board["gateways"] if g["gateway_id"] == "gw-1")
    assert gw["queue"] == 1 and gw["modems"][0]["failed"] == 1
    await _login(env, "hana")
    page = await env.client.get("/gateways")
    assert '<meta http-equiv="refresh" content="30">' in page.text
    assert "<script" not in page.text
