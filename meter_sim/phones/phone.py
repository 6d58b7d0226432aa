"""A customer's phone on the simulated network: sends commands to the short code, keeps an
inbox with timestamps, and remembers what it meant by each SMS it sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from types import TracebackType

from meter_sim.network import NetworkSms, NetworkStatusReport, SmsNetwork
from meter_sim.phones import texts
from meter_sim.phones.behaviour import Behaviour
from meter_sim.phones.inbox import InboxSms, Notice, NoticeKind, read_notice

Clock = Callable[[], datetime]


class Intent(Enum):
    BUY = "buy"
    BALANCE = "balance"
    STATUS = "status"
    HELP = "help"
    STOP = "stop"
    START = "start"
    RAW = "raw"  # whatever text the caller gave


@dataclass(frozen=True, slots=True)
class SentCommand:
    sent_at: datetime
    text: str
    intent: Intent
    amount_rp: int | None = None
    meter: str | None = None
    typo: bool = False
    wrong_pin: bool = False
    repeated: bool = False  # this SMS is the second copy of the one before it

    @property
    def valid_purchase(self) -> bool:
        """A purchase the hub should accept (and charge) exactly once."""
        return self.intent is Intent.BUY and not self.typo and not self.wrong_pin


class SimulatedPhone:
    """Attach with `async with SimulatedPhone(...)` or `attach()`; every method that sends
    returns the SentCommand(s) it produced (two when the behaviour repeats an SMS)."""

    def __init__(
        self,
        msisdn: str,
        network: SmsNetwork,
        *,
        short_code: str,
        pin: str,
        meter_number: str | None = None,
        behaviour: Behaviour | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.msisdn = msisdn
        self.network = network
        self.short_code = short_code
        self.pin = pin
        self.meter_number = meter_number
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self._clock = clock
        self._rng = self.behaviour.rng(msisdn)
        self.inbox: list[InboxSms] = []
        self.sent: list[SentCommand] = []
        self.reports: list[NetworkStatusReport] = []
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> SimulatedPhone:
        self.attach()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.detach()

    def attach(self) -> None:
        self.network.attach(self.msisdn, self)

    def detach(self) -> None:
        self.network.detach(self.msisdn)

    # commands

    def buy(self, amount_rp: int, meter: str | None = None) -> list[SentCommand]:
        b = self.behaviour
        if meter is None and self._rng.random() < b.name_meter_rate:
            meter = self.meter_number
        wrong = self._rng.random() < b.wrong_pin_rate
        pin = texts.wrong_pin(self.pin, self._rng) if wrong else self.pin
        style = texts.random_style(self._rng)
        text = texts.buy_text(amount_rp, pin, meter, style)
        return self._send(text, Intent.BUY, amount_rp=amount_rp, meter=meter, wrong_pin=wrong)

    def balance(self, meter: str | None = None) -> list[SentCommand]:
        return self._send(texts.with_meter(texts.BALANCE, meter), Intent.BALANCE, meter=meter)

    def status(self, meter: str | None = None) -> list[SentCommand]:
        return self._send(texts.with_meter(texts.STATUS, meter), Intent.STATUS, meter=meter)

    def help(self) -> list[SentCommand]:
        return self._send(texts.HELP, Intent.HELP)

    def stop(self) -> list[SentCommand]:
        return self._send(texts.STOP, Intent.STOP)

    def start(self) -> list[SentCommand]:
        return self._send(texts.START, Intent.START)

    def send_text(self, text: str) -> list[SentCommand]:
        """Exactly this text, once: no behaviour applied."""
        return [self._submit(SentCommand(self._clock(), text, Intent.RAW))]

    def _send(
        self,
        text: str,
        intent: Intent,
        *,
        amount_rp: int | None = None,
        meter: str | None = None,
        wrong_pin: bool = False,
    ) -> list[SentCommand]:
        misspelt = self._rng.random() < self.behaviour.typo_rate
        if misspelt:
            keyword, _, rest = text.partition(" ")
            text = " ".join(filter(None, (texts.typo(keyword, self._rng), rest)))
        command = SentCommand(
            self._clock(), text, intent, amount_rp, meter, misspelt, wrong_pin, False
        )
        out = [self._submit(command)]
        if self._rng.random() < self.behaviour.repeat_rate:
            again = SentCommand(
                self._clock(), text, intent, amount_rp, meter, misspelt, wrong_pin, True
            )
            out.append(self._submit(again))
        return out

    def _submit(self, command: SentCommand) -> SentCommand:
        self.sent.append(command)
        self.network.submit(self.msisdn, self.short_code, text=command.text)
        return command

    # what came back

    def notices(self, kind: NoticeKind | None = None) -> list[Notice]:
        read = [read_notice(sms.text) for sms in self.inbox]
        return [n for n in read if kind is None or n.kind is kind]

    def receipts(self) -> list[Notice]:
        return self.notices(NoticeKind.RECEIPT)

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` holds; re-checked whenever an SMS arrives."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def receive_sms(self, sms: NetworkSms) -> bool:
        text = sms.text if sms.text is not None else (sms.data or b"").hex()
        self.inbox.append(InboxSms(self._clock(), sms.sender, text))
        async with self._changed:
            self._changed.notify_all()
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        self.reports.append(report)
