"""The demo's live line: what it has done so far, every few seconds, from memory only.

Every figure is a counter kept as the demo goes (SMS the modems took and brought in,
purchases the phones asked, the P2APST simulator's paid count, SLA breaches) or a walk of
a fixed-size set (the fleet's meters, the pool's modems): nothing that reads the store, so
the line costs the same after an hour as after a minute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.transport import InboundSms, OutboundSms, TransportEvent

if TYPE_CHECKING:
    from gateway.inbound_journal import JournalledPool
    from operator_data.demo.run import World

WIB = ZoneInfo("Asia/Jakarta")
#: How modem states are listed: the good news first, then start-up, then trouble.
_STATE_ORDER = (
    "ready",
    "busy",
    "starting",
    "resetting",
    "hung",
    "sim-full",
    "out-of-service",
    "closed",
)


@dataclass(frozen=True, slots=True)
class LiveFigures:
    at: datetime
    sms_in: int
    sms_out: int
    purchases_asked: int
    purchases_paid: int
    tokens_applied: int
    sla_breaches: int
    modems: tuple[str, ...]  # each modem's state, e.g. "ready"


def state_name(state: object) -> str:
    """`ModemState.READY` → "ready" (an enum's value, not its repr)."""
    return str(state.value) if isinstance(state, Enum) else str(state)


def format_modems(states: Iterable[object]) -> str:
    """ "4 ready", "3 ready, 1 starting", "none" — counted by state, in a fixed order."""
    counts = Counter(state_name(s) for s in states)
    if not counts:
        return "none"
    known = [s for s in _STATE_ORDER if s in counts]
    others = sorted(s for s in counts if s not in _STATE_ORDER)
    return ", ".join(f"{counts[s]} {s}" for s in known + others)


def format_figures(figures: LiveFigures) -> str:
    return (
        f"SMS in {figures.sms_in} out {figures.sms_out} | "
        f"purchases asked {figures.purchases_asked} paid {figures.purchases_paid} | "
        f"tokens applied {figures.tokens_applied} | SLA breaches {figures.sla_breaches} | "
        f"modems {format_modems(figures.modems)}"
    )


def format_live(figures: LiveFigures) -> str:
    return f"[{figures.at.astimezone(WIB):%H:%M:%S}] {format_figures(figures)}"


def format_phase(at: datetime, phase: str, detail: str) -> str:
    """A line for the parts of a run with no traffic to count: start-up, the drain."""
    return f"[{at.astimezone(WIB):%H:%M:%S}] {phase}: {detail}"


def live_figures(world: World, at: datetime) -> LiveFigures:
    return LiveFigures(
        at=at,
        sms_in=world.sms.inbound,
        sms_out=world.sms.outbound,
        purchases_asked=world.counters.purchases_asked,
        purchases_paid=world.simulator.ledger.paid_count,
        # A meter keeps its token records in memory; one pass over a fleet of fixed size.
        tokens_applied=sum(len(meter.credited) for meter in world.fleet.meters),
        sla_breaches=world.counters.sla_breaches,
        modems=tuple(state_name(s) for s in world.pool.modems.values()),
    )


class CountingCarrier:
    """The pool as the gateway's carrier, counting SMS as they pass: those handed to the
    modems to send and those the modems brought in."""

    def __init__(self, inner: JournalledPool) -> None:
        self._inner = inner
        self.outbound = 0
        self.inbound = 0

    async def submit(self, sms: OutboundSms) -> None:
        await self._inner.submit(sms)
        self.outbound += 1

    def _count(self, events: Sequence[TransportEvent]) -> None:
        self.inbound += sum(1 for event in events if isinstance(event, InboundSms))

    async def carrier_events(self) -> AsyncIterator[TransportEvent]:
        async for event in self._inner.carrier_events():
            self._count((event,))
            yield event

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        async for batch in self._inner.carrier_event_batches():
            self._count(batch)
            yield batch
