"""Meter frames have one path: a single event is a batch of one through meter_batch.py
(the event-by-event implementation is gone), and a frame logged before but never acted on
is refused, not acted on late."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import operator_data.hub.hub as hub_module
from firmware_protocol.frames import MeterStatus, Telemetry
from gateway.transport import InboundSms
from operator_data.hub.inbound import apply_event
from operator_data.registry import Identified, SenderMeter
from operator_data.store import Flow, MessageState, Store, schema
from operator_data.store.messages import record_inbound
from tests.operator_data.hub_support import METER, METER_SIM, running_rig


def _telemetry(rig: Any, now: datetime, kwh: int) -> bytes:
    frame: bytes = rig.meter.seal(
        Telemetry(
            request_id=0,
            read_at=now,
            energy_kwh=Decimal(kwh),
            credit_kwh=Decimal("5.00"),
            voltage_v=Decimal("220.0"),
            power_w=300,
            status=MeterStatus(0),
            signal_csq=20,
        )
    )
    return frame


async def test_a_frame_retried_alone_takes_the_batch_path(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        now = datetime.now(UTC).replace(microsecond=0)
        event = InboundSms("alone-1", METER_SIM, now, data=_telemetry(rig, now, 101))
        batches: list[int] = []
        real = hub_module.log_meter_frames  # type: ignore[attr-defined]

        async def counted(ctx: Any, conn: Any, items: Any, checked: Any = None) -> Any:
            batches.append(len(items))
            if len(batches) == 1:
                raise RuntimeError("the first attempt fails")  # the hub retries it alone
            return await real(ctx, conn, items, checked)

        monkeypatch.setattr(hub_module, "log_meter_frames", counted)
        await rig.hub.process_events([event])
        assert batches == [1, 1]
        assert await rig.count(schema.telemetry_readings) == 1


async def test_a_frame_logged_but_never_acted_on_is_refused(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        now = datetime.now(UTC).replace(microsecond=0)
        frame = _telemetry(rig, now, 102)
        async with store.begin() as conn:
            stranded, _ = await record_inbound(
                conn,
                flow=Flow.METER_TO_HUB,
                idempotency_key="sms:stranded-1",
                peer_msisdn=METER_SIM,
                meter_number=METER,
                kind="frame",
                raw_pdu=frame,
                at=now,
            )
        acked: list[str] = []

        async def ack(event_id: str) -> None:
            acked.append(event_id)

        rig.hub.transport.ack = ack  # type: ignore[method-assign]
        await rig.hub.process_events([InboundSms("stranded-1", METER_SIM, now, data=frame)])
        assert acked == ["stranded-1"]
        async with store.read() as conn:
            row = (
                await conn.execute(
                    select(schema.messages).where(schema.messages.c.id == stranded.id)
                )
            ).one()
        assert row.state == MessageState.REJECTED.value
        assert "not acted on" in str(row.reject_reason)
        assert await rig.count(schema.telemetry_readings) == 0


async def test_the_leftover_path_refuses_a_meter_frame(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        now = datetime.now(UTC)
        who = Identified(SenderMeter(METER, "C-1"))
        async with store.begin() as conn:
            with pytest.raises(ValueError, match="meter_batch"):
                await apply_event(
                    rig.hub.ctx, conn, InboundSms("x", METER_SIM, now, data=b"\x01"), who
                )
