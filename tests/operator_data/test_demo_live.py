"""The demo's live line: modem states in words, and figures that come from memory (no
store query, so the line costs the same however long the demo has run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.at.events import ModemState
from gateway.transport import InboundSms, OutboundSms, SendResult, SendStatus, TransportEvent
from operator_data.demo.live import (
    CountingCarrier,
    LiveFigures,
    format_live,
    format_modems,
    format_phase,
    live_figures,
)

AT = datetime(2026, 1, 5, 3, 4, 5, tzinfo=UTC)  # 10:04:05 WIB


@pytest.mark.parametrize(
    ("states", "shown"),
    [
        ([ModemState.READY] * 4, "4 ready"),
        ([ModemState.STARTING, *[ModemState.READY] * 3], "3 ready, 1 starting"),
        ([ModemState.HUNG, ModemState.OUT_OF_SERVICE, ModemState.READY], "1 ready, 1 hung, 1 out-of-service"),
        (["sim-full", "ready", "zzz-new"], "1 ready, 1 sim-full, 1 zzz-new"),
        ([], "none"),
    ],
)  # fmt: skip
def test_modem_states_are_counted_in_words(states: list[object], shown: str) -> None:
    assert format_modems(states) == shown
    assert "ModemState" not in format_modems(states)


def test_the_live_line_reads_as_a_sentence_in_wib() -> None:
    figures = LiveFigures(AT, 20, 30, 10, 9, 8, 1, ("ready", "ready", "starting"))
    assert format_live(figures) == (
        "[10:04:05] SMS in 20 out 30 | purchases asked 10 paid 9 | tokens applied 8 | "
        "SLA breaches 1 | modems 2 ready, 1 starting"
    )
    assert format_phase(AT, "draining", "5 s of at most 60 s") == (
        "[10:04:05] draining: 5 s of at most 60 s"
    )


class _NoStore:
    """A store that fails the test if the live line touches it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the live line used the store ({name})")


def test_the_live_figures_come_from_memory_not_from_the_store() -> None:
    meters = [SimpleNamespace(credited=[1, 2]), SimpleNamespace(credited=[3])]
    world = SimpleNamespace(
        store=_NoStore(),
        sms=SimpleNamespace(inbound=7, outbound=11),
        counters=SimpleNamespace(purchases_asked=5, sla_breaches=0),
        simulator=SimpleNamespace(ledger=SimpleNamespace(paid_count=4, paid=_NoStore())),
        fleet=SimpleNamespace(meters=meters),
        pool=SimpleNamespace(modems={"modem1": ModemState.READY, "modem2": ModemState.HUNG}),
    )
    figures = live_figures(cast(Any, world), AT)
    assert figures == LiveFigures(AT, 7, 11, 5, 4, 3, 0, ("ready", "hung"))


class _Inner:
    def __init__(self, batches: list[list[TransportEvent]]) -> None:
        self.batches = batches
        self.submitted: list[OutboundSms] = []

    async def submit(self, sms: OutboundSms) -> None:
        self.submitted.append(sms)

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        for batch in self.batches:
            for event in batch:
                yield event

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        for batch in self.batches:
            yield batch


async def test_the_carrier_counts_sms_sent_and_received_as_they_pass() -> None:
    inbound = InboundSms("e1", "+628111", AT, text="SALDO")
    result = SendResult("e2", "m1", SendStatus.SENT, AT)
    inner = _Inner([[inbound, result], [inbound]])
    carrier = CountingCarrier(cast(Any, inner))
    await carrier.submit(OutboundSms("m1", "+628111", text="hello"))
    batches = [batch async for batch in carrier.carrier_event_batches()]
    assert batches == inner.batches  # passed on unchanged
    assert (carrier.outbound, carrier.inbound) == (1, 2)  # a send result is not an SMS in
    assert [event async for event in carrier.carrier_events()] == [inbound, result, inbound]
    assert carrier.inbound == 4 and len(inner.submitted) == 1
