"""Simulated phones: their texts against the hub's real command grammar, their behaviour,
and their reading of the hub's real reply templates."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_sim.clock import SimClock
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.phones import Behaviour, NoticeKind, SimulatedPhone, read_notice, texts
from operator_data.commands import grammar
from operator_data.commands.replies import LONGEST_VALUES, Lang, Reply, render

pytestmark = pytest.mark.timeout(20)

SHORT_CODE = "81234"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class ShortCode:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.changed = asyncio.Condition()

    async def receive_sms(self, sms: NetworkSms) -> bool:
        self.texts.append(sms.text or "")
        async with self.changed:
            self.changed.notify_all()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None


@pytest.fixture
async def net() -> AsyncIterator[tuple[SmsNetwork, ShortCode, SimClock]]:
    clock = SimClock(START)
    async with SmsNetwork(seed=3, clock=clock, sleep=clock.sleep) as network:
        desk = ShortCode()
        network.attach(SHORT_CODE, desk)
        yield network, desk, clock


def phone(network: SmsNetwork, clock: SimClock, behaviour: Behaviour) -> SimulatedPhone:
    p = SimulatedPhone(
        "+6281234567890",
        network,
        short_code=SHORT_CODE,
        pin="2468",
        meter_number="14000000001",
        behaviour=behaviour,
        clock=clock,
    )
    p.attach()
    return p


@given(
    amount=st.sampled_from([20_000, 50_000, 100_000, 250_000, 1_000_000, 12_345]),
    style=st.sampled_from(["plain", "dots", "rb", "k"]),
    meter=st.one_of(st.none(), st.just("14000000001")),
    pin=st.from_regex(r"[0-9]{4,6}", fullmatch=True),
)
def test_buy_texts_mean_what_the_phone_intends(
    amount: int, style: str, meter: str | None, pin: str
) -> None:
    command = grammar.parse(texts.buy_text(amount, pin, meter, style))
    assert command == grammar.Buy(amount_rp=amount, meter=meter, pin=pin)


@given(
    seed=st.integers(0, 10_000),
    keyword=st.sampled_from(["BELI", "SALDO", "STATUS", "BANTUAN", "STOP", "MULAI"]),
)
def test_a_typo_is_never_a_command(seed: int, keyword: str) -> None:
    misspelt = texts.typo(keyword, random.Random(seed))
    assert misspelt != keyword
    with pytest.raises(grammar.CommandError) as caught:
        grammar.parse(f"{misspelt} 100rb 1234" if keyword == "BELI" else misspelt)
    assert caught.value.problem is grammar.Problem.UNKNOWN


async def test_a_careful_customer_sends_valid_commands(
    net: tuple[SmsNetwork, ShortCode, SimClock],
) -> None:
    network, _desk, clock = net
    p = phone(network, clock, Behaviour())
    p.buy(100_000)
    p.balance()
    p.status("14000000001")
    p.help()
    p.stop()
    p.start()
    assert [c.valid_purchase for c in p.sent] == [True] + [False] * 5
    parsed = [grammar.parse(c.text) for c in p.sent]
    assert parsed == [
        grammar.Buy(100_000, None, "2468"),
        grammar.Balance(None),
        grammar.Status("14000000001"),
        grammar.Help(),
        grammar.Stop(),
        grammar.Start(),
    ]


async def test_typos_wrong_pins_and_repeats(net: tuple[SmsNetwork, ShortCode, SimClock]) -> None:
    network, desk, clock = net
    typist = phone(network, clock, Behaviour(typo_rate=1.0, seed=1))
    (sent,) = typist.buy(50_000)
    assert sent.typo and not sent.valid_purchase
    with pytest.raises(grammar.CommandError) as caught:
        grammar.parse(sent.text)
    assert caught.value.problem is grammar.Problem.UNKNOWN

    forgetful = phone(network, clock, Behaviour(wrong_pin_rate=1.0, seed=1))
    (sent,) = forgetful.buy(50_000)
    command = grammar.parse(sent.text)
    assert isinstance(command, grammar.Buy) and command.pin != "2468" and len(command.pin) == 4
    assert sent.wrong_pin and not sent.valid_purchase

    impatient = phone(network, clock, Behaviour(repeat_rate=1.0, seed=1, name_meter_rate=1.0))
    first, second = impatient.buy(20_000)
    assert first.text == second.text and (first.repeated, second.repeated) == (False, True)
    assert grammar.parse(first.text) == grammar.Buy(20_000, "14000000001", "2468")
    async with desk.changed:
        await desk.changed.wait_for(lambda: len(desk.texts) == 4)
    assert sorted(desk.texts) == sorted(
        c.text for p in (typist, forgetful, impatient) for c in p.sent
    )


async def test_the_inbox_keeps_replies_with_their_time(
    net: tuple[SmsNetwork, ShortCode, SimClock],
) -> None:
    network, _, clock = net
    p = phone(network, clock, Behaviour())
    clock.advance(timedelta(minutes=5))
    network.submit(SHORT_CODE, p.msisdn, text="Info Listrik Pintar aktif kembali.")
    await p.wait_for(lambda: len(p.inbox) == 1)
    (sms,) = p.inbox
    assert (sms.sender, sms.received_at) == (SHORT_CODE, START + timedelta(minutes=5))
    assert p.notices() == [read_notice(sms.text)] and p.notices()[0].kind is NoticeKind.OTHER


@pytest.mark.parametrize("lang", list(Lang))
@pytest.mark.parametrize(
    "values",
    [
        LONGEST_VALUES,
        {**LONGEST_VALUES, "ref": "P00042", "kwh": "25.6", "token": "26456622012185850752"},
    ],
)
def test_the_phone_reads_the_hubs_real_replies(lang: Lang, values: dict[str, str]) -> None:
    receipt = read_notice(render(Reply.RECEIPT, lang, **values))
    assert receipt.kind is NoticeKind.RECEIPT
    assert receipt.ref == values["ref"] and receipt.meter == values["meter"]
    assert receipt.token == values["token"].replace("-", "")
    assert receipt.kwh == Decimal(values["kwh"])
    expected = {
        Reply.PURCHASE_ACCEPTED: (NoticeKind.PURCHASE_ACCEPTED, values["ref"]),
        Reply.PURCHASE_DUPLICATE: (NoticeKind.PURCHASE_DUPLICATE, values["ref"]),
        Reply.PURCHASE_FAILED: (NoticeKind.PURCHASE_FAILED, None),
        Reply.TOKEN_REJECTED: (NoticeKind.TOKEN_REJECTED, values["ref"]),
        Reply.WRONG_PIN: (NoticeKind.WRONG_PIN, None),
        Reply.HELP: (NoticeKind.OTHER, None),
        Reply.BALANCE: (NoticeKind.OTHER, None),
        Reply.STATUS: (NoticeKind.OTHER, None),
    }
    for reply, (kind, ref) in expected.items():
        notice = read_notice(render(reply, lang, **values))
        assert (notice.kind, notice.ref) == (kind, ref), reply
