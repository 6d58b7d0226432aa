"""The short code is no reflector (operator_data/hub/reply_budget.py): answers per number
and for the hub are bounded, an unregistered number and a reply-looking SMS are answered
at most once per period, a purchase's acceptance is always sent, and what is not answered
is still processed with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from operator_data.hub.reply_budget import GLOBAL, Ask, Budget, Kind, Silence, decide
from operator_data.hub.reply_budget import looks_like_reply as reply_like
from operator_data.settings import HubSettings
from operator_data.store import Store, schema
from tests.operator_data.hub_support import running_rig

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A, B = "+6281200000001", "+6281200000002"
SETTINGS = HubSettings(
    reply_budget_per_msisdn=3,
    reply_budget_window_s=3600,
    reply_budget_global=5,
    reply_budget_global_window_s=60,
    unregistered_reply_every_s=86_400,
    reply_like_every_s=86_400,
)


def _asks(msisdn: str, count: int, kind: Kind = Kind.ANSWER, tag: str = "") -> list[Ask]:
    return [Ask(f"{tag}{msisdn}-{n}", msisdn, kind) for n in range(count)]


def test_a_number_gets_its_budget_and_no_more() -> None:
    silent, after = decide(_asks(A, 5), {}, NOW, SETTINGS)
    assert silent == {f"{A}-3": Silence.NUMBER_BUDGET, f"{A}-4": Silence.NUMBER_BUDGET}
    assert after[A].replies == 3 and after[GLOBAL].replies == 3


def test_the_window_starts_again() -> None:
    spent = {A: Budget(A, NOW - timedelta(hours=2), 3)}
    silent, after = decide(_asks(A, 1), spent, NOW, SETTINGS)
    assert silent == {} and after[A] == Budget(A, NOW, 1)
    within = {A: Budget(A, NOW - timedelta(minutes=59), 3)}
    assert decide(_asks(A, 1), within, NOW, SETTINGS)[0] == {f"{A}-0": Silence.NUMBER_BUDGET}


def test_the_hub_has_a_budget_of_its_own() -> None:
    silent, after = decide([*_asks(A, 3), *_asks(B, 3)], {}, NOW, SETTINGS)
    assert silent == {f"{B}-2": Silence.GLOBAL_BUDGET}
    assert after[GLOBAL].replies == 5


def test_a_purchase_is_always_answered_and_counts() -> None:
    spent = {A: Budget(A, NOW, 3), GLOBAL: Budget(GLOBAL, NOW, 5)}
    silent, after = decide(_asks(A, 2, Kind.PURCHASE), spent, NOW, SETTINGS)
    assert silent == {} and after[A].replies == 5


def test_an_unregistered_number_is_answered_once_a_period() -> None:
    silent, after = decide(_asks(A, 3, Kind.UNREGISTERED), {}, NOW, SETTINGS)
    assert silent == {f"{A}-1": Silence.UNREGISTERED, f"{A}-2": Silence.UNREGISTERED}
    later = NOW + timedelta(days=1)
    assert decide(_asks(A, 1, Kind.UNREGISTERED), after, later, SETTINGS)[0] == {}
    sooner = NOW + timedelta(hours=23)
    assert decide(_asks(A, 1, Kind.UNREGISTERED), after, sooner, SETTINGS)[0] != {}


def test_a_reply_looking_sms_is_answered_once_a_period_others_still_are() -> None:
    asks = [*_asks(A, 2, Kind.REPLY_LIKE), *_asks(A, 1, Kind.ANSWER, "q")]
    silent, _ = decide(asks, {}, NOW, SETTINGS)
    assert silent == {f"{A}-1": Silence.REPLY_LIKE}


@pytest.mark.parametrize(
    "text",
    [
        "Re: Listrik Pintar: BELI <nominal> <PIN> beli token",
        "[Auto-Reply] I am out of office",
        "Maaf, nomor yang Anda tuju sedang tidak aktif",
        "Ini adalah pesan otomatis",
        "FWD: token anda",
    ],
)
def test_reply_looking_texts(text: str) -> None:
    assert reply_like(text)


@pytest.mark.parametrize("text", ["BELI 100rb 123456", "SALDO", "BANTUAN", "bli 50k 1234", ""])
def test_commands_do_not_look_like_replies(text: str) -> None:
    assert not reply_like(text)


async def test_a_chatty_number_gets_its_budget_and_the_rest_is_processed_unanswered(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(
        store, tmp_path, p2apst=False, hub_changes={"reply_budget_per_msisdn": 2}
    ) as rig:
        m = schema.messages
        for n in range(4):
            rig.phone.text("BANTUAN")

            async def processed(n: int = n) -> bool:
                return await rig.count(m, m.c.body == "BANTUAN", m.c.state == "processed") > n

            await rig.until(processed)
        assert len(rig.phone.inbox) == 2
        async with store.read() as conn:
            details = sorted(
                str(d)
                for d in await conn.scalars(
                    select(schema.message_states.c.detail)
                    .join(m, m.c.id == schema.message_states.c.message_id)
                    .where(m.c.body == "BANTUAN", schema.message_states.c.state == "processed")
                )
            )
        assert details == ["help", "help"] + ["not answered: reply budget of this number spent"] * 2


async def test_repeated_lockouts_open_an_incident(store: Store, tmp_path: Path) -> None:
    """From pin.lockout_alarm_after lock-outs in a row on, each opens a helpdesk incident."""
    async with running_rig(store, tmp_path) as rig:
        for round_ in range(3):
            for n in range(3):
                rig.phone.text(f"BELI 100rb 99999{n}")
                await rig.until(rig.inbox_has(round_ * 3 + n + 1))
            rig.clock.advance(timedelta(days=1))
        items = schema.helpdesk_items
        async with store.read() as conn:
            opened = (
                await conn.execute(select(items.c.category, items.c.msisdn, items.c.subject))
            ).all()
        assert [(r.category, r.msisdn) for r in opened] == [("pin-lockout", rig.phone.msisdn)]
        assert "3 times in a row" in opened[0].subject
