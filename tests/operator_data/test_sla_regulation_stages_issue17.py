"""Issue 17 item 12: the stages the regulation implies beside the existing ones.

0066 art. 4(2) wants the purchase sent to P2APST online and its outcome to the customer
(the receipt SMS) in real time, so the report measures `p2apst_response` (submitted ->
token_issued/declined) and `receipt_to_customer` (applied -> receipt SMS `sent`), with
targets from `[sla]`, and the dashboard shows them from the same computation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.settings import Settings, SlaTargets
from operator_data.sla import sla_report
from operator_data.sla.dashboard import sla_dashboard
from operator_data.store import MessageState, Store, TransactionState
from operator_data.store.messages import enqueue_outbound, set_message_state
from operator_data.store.states import Flow
from operator_data.store.transactions import create_transaction, set_transaction_state
from tests.operator_data.reporting_seed import customer_id, insert_meters, meter_number

pytestmark = pytest.mark.timeout(60)

T = TransactionState
DAY = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 WIB, 2 March
AS_OF = datetime(2026, 3, 6, tzinfo=UTC)
# P2APST answer after submission (s); 4 is declined. Receipt after applied (s, None: never).
ANSWER_S = [1, 2, 3, 40, 5]
RECEIPT_S: list[int | None] = [2, 4, 11, None]


async def _sms(
    conn: AsyncConnection, tx: str, i: int, flow: Flow, kind: str, at: datetime, sent: datetime
) -> None:
    message, _ = await enqueue_outbound(
        conn,
        flow=flow,
        idempotency_key=f"{kind}-{tx}",
        destination="+628112000001",
        payload=b"x",
        meter_number=meter_number(i),
        kind=kind,
        transaction_id=tx,
        at=at,
    )
    await set_message_state(conn, message.id, MessageState.SUBMITTED, at=sent)
    await set_message_state(conn, message.id, MessageState.SENT, at=sent)


async def scenario(store: Store) -> list[str]:
    ids = []
    async with store.begin() as conn:
        await insert_meters(conn, range(5), datetime(2026, 1, 1, tzinfo=UTC))
        for i, answer in enumerate(ANSWER_S):
            submitted = DAY + timedelta(minutes=i)
            tx, _ = await create_transaction(
                conn,
                idempotency_key=f"buy-{i}",
                meter_number=meter_number(i),
                customer_id=customer_id(i),
                amount_idr=20_000,
                at=submitted - timedelta(seconds=1),
            )
            ids.append(tx.id)
            await set_transaction_state(conn, tx.id, T.SUBMITTED, at=submitted)
            answered = submitted + timedelta(seconds=answer)
            if i == 4:
                await set_transaction_state(conn, tx.id, T.DECLINED, at=answered)
                continue
            await set_transaction_state(conn, tx.id, T.TOKEN_ISSUED, at=answered)
            sent = answered + timedelta(seconds=1)
            await _sms(conn, tx.id, i, Flow.HUB_TO_METER, "token", answered, sent)
            await set_transaction_state(conn, tx.id, T.TOKEN_SENT, at=sent)
            applied = sent + timedelta(seconds=30)
            await set_transaction_state(conn, tx.id, T.APPLIED, at=applied)
            receipt = RECEIPT_S[i]
            # A reply to the customer that is not the receipt must not end the stage.
            await _sms(conn, tx.id, i, Flow.HUB_TO_CUSTOMER, "reply", applied, applied)
            if receipt is not None:
                done = applied + timedelta(seconds=receipt)
                await _sms(conn, tx.id, i, Flow.HUB_TO_CUSTOMER, "receipt", applied, done)
    return ids


def _total(report: Any, name: str) -> dict[str, Any]:
    (found,) = [s for s in report.to_dict()["stages"] if s["stage"] == name]
    total: dict[str, Any] = found["total"]
    assert found["target_ms"] > 0
    return total


async def test_p2apst_response_counts_tokens_and_declines(store: Store) -> None:
    ids = await scenario(store)
    rep = await sla_report(store, SlaTargets(), date(2026, 3, 2), date(2026, 3, 3), as_of=AS_OF)
    total = _total(rep, "p2apst_response")
    # Default target 30 s: 1, 2, 3, 5 s within, 40 s breached.
    assert (total["count"], total["within_target"], total["overdue"]) == (5, 4, 0)
    assert (total["p50_ms"], total["p99_ms"]) == (3000, 40_000)
    breached = [(b.subject_id, b.duration_ms) for b in rep.breaches if b.stage == "p2apst_response"]
    assert breached == [(ids[3], 40_000)]


async def test_receipt_to_customer_ends_at_the_receipt_sms_only(store: Store) -> None:
    ids = await scenario(store)
    rep = await sla_report(store, SlaTargets(), date(2026, 3, 2), date(2026, 3, 3), as_of=AS_OF)
    total = _total(rep, "receipt_to_customer")
    # Default target 10 s: 2 and 4 s within, 11 s breached, one receipt never sent (overdue);
    # the instant `reply` SMS to the same customer does not count as a receipt.
    assert (total["count"], total["completed"], total["within_target"]) == (4, 3, 2)
    assert total["overdue"] == 1
    breached = [
        (b.subject_id, b.duration_ms) for b in rep.breaches if b.stage == "receipt_to_customer"
    ]
    assert breached == [(ids[2], 11_000), (ids[3], None)]


async def test_targets_come_from_the_sla_settings(store: Store) -> None:
    await scenario(store)
    targets = SlaTargets(p2apst_response_s=2.5, receipt_to_customer_s=12)
    rep = await sla_report(store, targets, date(2026, 3, 2), date(2026, 3, 3), as_of=AS_OF)
    p2apst = _total(rep, "p2apst_response")
    receipt = _total(rep, "receipt_to_customer")
    assert p2apst["within_target"] == 2  # 1 and 2 s
    assert receipt["within_target"] == 3  # 2, 4 and 11 s
    assert Settings.model_validate({"sla": {"p2apst_response_s": 7}}).sla.p2apst_response_s == 7


def test_a_target_must_be_positive() -> None:
    with pytest.raises(ValueError, match="receipt_to_customer_s"):
        SlaTargets(receipt_to_customer_s=0)


async def test_the_dashboard_shows_the_new_stages_as_the_report_does(store: Store) -> None:
    await scenario(store)
    now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 23:00 WIB, 2 March
    board = await sla_dashboard(store, SlaTargets(), now)
    rep = await sla_report(store, SlaTargets(), date(2026, 3, 2), date(2026, 3, 3), as_of=now)
    today = {s.metric: s for s in board.today}
    for name in ("p2apst_response", "receipt_to_customer"):
        expected = _total(rep, name)
        got = today[name]
        assert (got.total, got.met, got.pending) == (
            expected["count"],
            expected["within_target"],
            expected["pending"],
        )
    assert board.targets_ms["p2apst_response"] == 30_000
    assert board.targets_ms["receipt_to_customer"] == 10_000
