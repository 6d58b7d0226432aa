"""A batch that fails is applied in halves, down to the event at fault: every other event
is stored and acknowledged in a handful of transactions; the bad one, tried alone three
times, stays unacknowledged so the transport delivers it again (never dropped)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import operator_data.hub.hub as hub_module
from firmware_protocol.frames import MeterStatus, Telemetry
from gateway.transport import InboundSms, ModemStateChanged, ModemStatus, TransportEvent
from operator_data.hub.inbound import apply_event as real_apply_event
from operator_data.store import Store, schema
from tests.operator_data.hub_support import METER_SIM, running_rig


async def test_a_bad_event_costs_a_few_small_batches_and_holds_nothing_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def apply_event(*args: Any) -> Any:
        event = args[2]
        if event.event_id == "poison":  # a fault in one event's own work
            raise RuntimeError("this event cannot be applied")
        return await real_apply_event(*args)

    monkeypatch.setattr(hub_module, "apply_event", apply_event)
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        now = datetime.now(UTC).replace(microsecond=0)
        events: list[TransportEvent] = []
        for n in range(31):
            frame = rig.meter.seal(
                Telemetry(
                    request_id=0,
                    read_at=now,
                    energy_kwh=Decimal(100 + n),
                    credit_kwh=Decimal("5.00"),
                    voltage_v=Decimal("220.0"),
                    power_w=300,
                    status=MeterStatus(0),
                    signal_csq=20,
                )
            )
            events.append(InboundSms(f"t-{n}", METER_SIM, now, data=frame, gateway="gw1"))
        events.insert(17, ModemStateChanged("poison", "m1", ModemStatus.READY, now))
        acked: list[str] = []
        units = 0
        real_apply = rig.hub._apply

        async def counted(*args: Any) -> Any:
            nonlocal units
            units += 1
            return await real_apply(*args)

        async def ack(event_id: str) -> None:
            acked.append(event_id)

        monkeypatch.setattr(rig.hub, "_apply", counted)
        monkeypatch.setattr(rig.hub.transport, "ack", ack)
        await rig.hub.process_events(events)
        assert sorted(acked) == sorted(e.event_id for e in events if e.event_id != "poison")
        assert await rig.count(schema.telemetry_readings) == 31
        # 32 events, one bad: the whole, then halves down to it (2 × 5 levels), then the
        # bad one alone three times (a batch of one) — not 32.
        assert units <= 1 + 2 * 5 + 3
        # A fault that passes (say a deadlock): the re-delivered event is applied then.
        monkeypatch.setattr(hub_module, "apply_event", real_apply_event)
        await rig.hub.process_events([events[17]])
        assert "poison" in acked
