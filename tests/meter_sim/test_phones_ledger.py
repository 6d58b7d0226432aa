"""Phones, meters and a stand-in hub desk (the real grammar and reply texts, the real STS
codec and frames): every paid purchase gives exactly one receipt and one credit, and the
ledger check finds duplicates and losses when they are planted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from firmware_protocol import sts
from firmware_protocol.frames import TokenDelivery, TokenOutcome, TokenResult
from meter_sim.clock import SimClock
from meter_sim.fleet import (
    DEFAULT_HUB_MSISDN,
    DEFAULT_SHORT_CODE,
    Fleet,
    FleetMember,
    build_members,
)
from meter_sim.meter.state_store import StateStore
from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.phones import Behaviour, NoticeKind, check_ledger, read_notice
from operator_data.commands import grammar
from operator_data.commands.replies import Lang, Reply, render, reply_for_error
from tests.meter_sim.sim_hub import SimHub

pytestmark = pytest.mark.timeout(30)
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PRICE_PER_KWH = 1500


@dataclass
class Desk:
    """Just enough of the hub's customer desk to drive phones and meters end to end."""

    network: SmsNetwork
    hub: SimHub
    members: dict[str, FleetMember]  # by phone
    clock: SimClock
    purchases: dict[int, tuple[str, int, str]] = field(
        default_factory=dict
    )  # ref → phone, Rp, token
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    receipted: set[int] = field(default_factory=set)

    def reply(self, phone: str, text: str) -> None:
        self.network.submit(DEFAULT_SHORT_CODE, phone, text=text)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        member = self.members[sms.sender]
        try:
            command = grammar.parse(sms.text or "")
        except grammar.CommandError as error:
            self.reply(sms.sender, reply_for_error(error, Lang.ID, "20rb 50rb 100rb"))
            return True
        if not isinstance(command, grammar.Buy):
            self.reply(sms.sender, render(Reply.HELP))
            return True
        if command.pin != member.pin:
            self.reply(sms.sender, render(Reply.WRONG_PIN, attempts_left=2))
            return True
        if (sms.sender, sms.text or "") in self.seen:
            ref = self.seen[(sms.sender, sms.text or "")]
            self.reply(sms.sender, render(Reply.PURCHASE_DUPLICATE, ref=f"P{ref:05d}"))
            return True
        ref = len(self.purchases) + 1
        self.seen[(sms.sender, sms.text or "")] = ref
        kwh = Decimal(command.amount_rp) / PRICE_PER_KWH
        ident = member.identity
        fields = sts.credit(0, ref % 16, START + timedelta(minutes=ref), kwh, ident.base_date)
        token = sts.encode(fields, ident.decoder_key())
        self.purchases[ref] = (sms.sender, command.amount_rp, token)
        self.reply(
            sms.sender,
            render(Reply.PURCHASE_ACCEPTED, amount=command.amount_rp, meter=ident.meter_number,
                   ref=f"P{ref:05d}"),
        )  # fmt: skip
        self.hub.send(ident.meter_number, TokenDelivery(ref, token))
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        return None

    def issue_receipts(self) -> None:
        for message in self.hub.messages(TokenResult):
            assert isinstance(message, TokenResult)
            if message.outcome is not TokenOutcome.ACCEPTED or message.reference in self.receipted:
                continue
            self.receipted.add(message.reference)
            phone, amount, token = self.purchases[message.reference]
            grouped = "-".join(token[i : i + 4] for i in range(0, 20, 4))
            self.reply(
                phone,
                render(Reply.RECEIPT, amount=amount, meter=self.members[phone].meter_number,
                       kwh=message.added_kwh, credit=message.credit_kwh,
                       ref=f"P{message.reference:05d}", token=grouped),
            )  # fmt: skip


async def test_every_paid_purchase_gives_one_receipt_and_one_credit() -> None:
    clock = SimClock(START)
    members = build_members(6, seed=21)
    behaviour = Behaviour(typo_rate=0.2, wrong_pin_rate=0.2, repeat_rate=0.4, seed=5)
    async with SmsNetwork(seed=2, clock=clock, sleep=clock.sleep) as network:
        hub = SimHub(network, DEFAULT_HUB_MSISDN)
        for m in members:
            hub.add(m.identity)
        desk = Desk(network, hub, {m.phone_msisdn: m for m in members}, clock)
        network.attach(DEFAULT_SHORT_CODE, desk)
        with StateStore(":memory:") as store:
            async with Fleet(members, network, store, clock=clock, behaviour=behaviour) as fleet:
                for phone in fleet.phones:
                    phone.buy(50_000)
                    phone.buy(100_000)
                sent = sum(len(p.sent) for p in fleet.phones)
                await _replies(fleet, sent)
                paid = len(desk.purchases)
                valid = sum(
                    1 for p in fleet.phones for c in p.sent if c.valid_purchase and not c.repeated
                )
                assert paid == valid > 0
                assert any(c.typo for p in fleet.phones for c in p.sent)
                assert any(c.wrong_pin for p in fleet.phones for c in p.sent)
                assert any(c.repeated and c.valid_purchase for p in fleet.phones for c in p.sent)
                await hub.wait_for(lambda: len(hub.messages(TokenResult)) == paid)
                desk.issue_receipts()
                await _receipts(fleet, paid)
                report = fleet.ledger()
                assert report.ok, report.as_dict()
                assert len(report.confirmed) == len(report.receipts) == len(report.credits) == paid
                assert report.purchases_sent == paid

                # planted faults: the ledger must see each of them
                phone = next(p for p in fleet.phones if p.receipts())
                before = len(phone.inbox)
                receipt_sms = next(s for s in phone.inbox if s.text.startswith("Token Rp"))
                network.submit(DEFAULT_SHORT_CODE, phone.msisdn, text=receipt_sms.text)
                network.submit(DEFAULT_SHORT_CODE, phone.msisdn,
                               text=render(Reply.PURCHASE_ACCEPTED, amount=20000,
                                           meter=members[0].meter_number, ref="P99999"))  # fmt: skip
                await phone.wait_for(lambda: len(phone.inbox) == before + 2)
                ident = members[1].identity
                stray = sts.encode(
                    sts.credit(0, 0, START + timedelta(days=1), Decimal(5), ident.base_date),
                    ident.decoder_key(),
                )
                hub.send(ident.meter_number, TokenDelivery(4242, stray))
                await hub.wait_for(lambda: len(hub.messages(TokenResult)) == paid + 1)
                report = check_ledger(fleet.phones, fleet.meters)
                assert not report.ok
                assert report.duplicate_receipts == (receipt_sms_token(receipt_sms.text),)
                assert report.confirmed_without_outcome == ("P99999",)
                assert report.credits_without_receipt == (stray,)
                assert report.double_credits == () and report.receipts_without_credit == ()


def receipt_sms_token(text: str) -> str:
    notice = read_notice(text)
    assert notice.kind is NoticeKind.RECEIPT and notice.token
    return notice.token


async def _replies(fleet: Fleet, count: int) -> None:
    async def total() -> int:
        return sum(len(p.inbox) for p in fleet.phones)

    for phone in fleet.phones:
        await phone.wait_for(lambda p=phone: len(p.inbox) >= len(p.sent))  # type: ignore[misc]
    assert await total() == count


async def _receipts(fleet: Fleet, count: int) -> None:
    for phone in fleet.phones:
        expected = sum(1 for c in phone.sent if c.valid_purchase and not c.repeated)
        await phone.wait_for(lambda p=phone, n=expected: len(p.receipts()) >= n)  # type: ignore[misc]
    assert sum(len(p.receipts()) for p in fleet.phones) == count
