"""Meter frames over the simulated network: authentic frames are acted on, forged,
replayed and garbage ones are logged as rejected and never acted on; alarms, readings;
token delivery with resends and escalation when the meter stays silent."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from firmware_protocol.frames import (
    Alarm,
    AlarmKind,
    Endpoint,
    MeterStatus,
    Role,
    Telemetry,
    TokenDelivery,
)
from gateway.transport import InboundSms, ModemStateChanged, ModemStatus
from operator_data.hub import Hub, PushedToken
from operator_data.hub.actions import HubActions
from operator_data.hub.sla import Metric
from operator_data.registry.models import Conflict
from operator_data.store import MessageState, Store, TransactionState, schema
from tests.operator_data.hub_support import (
    METER,
    METER_SIM,
    PHONE,
    SHORT_CODE,
    Rig,
    make_token,
    running_rig,
)

pytestmark = pytest.mark.timeout(60)
msgs = schema.messages


def _inbound_done(rig: Rig, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        rows = await rig.rows(msgs, msgs.c.direction == "in")
        return len(rows) >= count and all(r.state != MessageState.RECEIVED for r in rows)

    return check


async def test_forged_replayed_and_garbage_frames_are_rejected_and_not_acted_on(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        genuine = rig.meter.alarm(AlarmKind.TAMPER)
        await rig.until(_inbound_done(rig, 1))
        forger = Endpoint(
            role=Role.METER, meter_number=METER, keys={1: secrets.token_bytes(16)}, key_id=1
        )
        (forged,) = forger.seal(_tamper_alarm(rig), message_id=99)
        rig.meter.send_raw(forged)  # right meter, wrong key
        rig.meter.send_raw(genuine)  # a replay of an accepted frame
        rig.meter.send_raw(b"\x01\x02garbage")
        rig.network.submit("+6281377777777", SHORT_CODE, data=genuine)  # not the meter's SIM
        await rig.until(_inbound_done(rig, 5))

        rows = await rig.rows(msgs, msgs.c.direction == "in")
        (processed,) = [r for r in rows if r.state == MessageState.PROCESSED]
        assert processed.kind == "ALARM" and processed.meter_number == METER
        reasons = sorted(r.reject_reason for r in rows if r.state == MessageState.REJECTED)
        assert any("bad tag" in r for r in reasons)
        assert any("replayed" in r for r in reasons)
        assert any("unknown sender" in r for r in reasons)
        assert len(reasons) == 4
        # Acted on once: one alarm, one helpdesk item.
        assert await rig.count(schema.alarms) == 1
        assert await rig.count(schema.helpdesk_items) == 1
        (item,) = await rig.rows(schema.helpdesk_items)
        assert item.category == "tamper" and item.meter_number == METER


def _tamper_alarm(rig: Rig) -> Alarm:
    return Alarm(
        occurred_at=rig.network.now().replace(microsecond=0),
        kind=AlarmKind.TAMPER,
        credit_kwh=Decimal("1"),
        status=MeterStatus.TAMPER,
    )


async def test_low_credit_alarm_notifies_the_customer_unless_opted_out(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        rig.meter.alarm(AlarmKind.LOW_CREDIT, credit="3.50")
        await rig.until(rig.inbox_has(1))
        assert rig.phone.inbox[0].startswith("Info: sisa kWh meter 14000000001 tinggal 3.5 kWh.")
        (notice,) = await rig.rows(msgs, msgs.c.kind == "low-credit")
        assert notice.flow == "meter_to_customer" and notice.peer_msisdn == PHONE

        rig.phone.text("STOP")
        await rig.until(rig.inbox_has(2))
        rig.meter.alarm(AlarmKind.LOW_CREDIT, credit="2.00")
        await rig.until(_inbound_done(rig, 3))
        await rig.hub.dispatch()
        assert len(rig.phone.inbox) == 2
        assert await rig.count(schema.alarms) == 2
        assert await rig.count(msgs, msgs.c.kind == "low-credit") == 1


async def test_telemetry_keeps_meter_time_and_arrival_time(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        read_at = rig.network.now().replace(microsecond=0) - timedelta(minutes=7)  # drifted
        rig.meter.send(
            Telemetry(
                request_id=0,
                read_at=read_at,
                energy_kwh=Decimal("1234.56"),
                credit_kwh=Decimal("42.10"),
                voltage_v=Decimal("221.5"),
                power_w=640,
                status=MeterStatus(0),
                signal_csq=18,
            )
        )
        await rig.until(_inbound_done(rig, 1))
        (reading,) = await rig.rows(schema.telemetry_readings)
        assert reading.meter_time == read_at
        assert reading.received_at > read_at
        assert (reading.credit_kwh, reading.total_kwh) == ("42.10", "1234.56")
        rig.phone.text("SALDO")
        await rig.until(rig.inbox_has(1))
        assert rig.phone.inbox[0].startswith("Sisa kWh meter 14000000001: 42.1 kWh")


async def test_pushed_token_is_delivered_once_and_receipted(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        token = make_token("20")
        pushed = PushedToken("PLNREF0001", METER, token, 50_000, Decimal("20"))
        first = await rig.hub.push_token(pushed)
        again = await rig.hub.push_token(pushed)
        assert first.created and not again.created
        assert first.transaction_id == again.transaction_id
        await rig.until(rig.inbox_has(1))
        assert rig.meter.applied == [token]
        assert rig.phone.inbox[0].startswith("Token Rp50.000 masuk ke meter 14000000001: +20.0")
        (tx,) = await rig.rows(schema.transactions)
        assert tx.state == TransactionState.APPLIED and tx.pln_ref == "PLNREF0001"


async def test_a_silent_meter_gets_the_same_token_again_then_a_helpdesk_item(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False, meter_answers=False) as rig:
        token = make_token("10")
        await rig.hub.push_token(PushedToken("PLNREF0002", METER, token, 20_000))
        wait = timedelta(seconds=rig.settings.sla.meter_answer_s + 1)
        for attempt in (1, 2, 3):

            async def received(n: int = attempt) -> bool:
                txs = await rig.rows(schema.transactions)
                return len(rig.meter.received) >= n and txs[0].state == "token_sent"

            await rig.until(received)
            assert await rig.count(schema.helpdesk_items) == 0
            rig.clock.advance(wait)
            await rig.hub.sweep()
        await rig.until(rig.inbox_has(1))
        deliveries = rig.meter.received
        assert len(deliveries) == 3
        assert all(isinstance(d, TokenDelivery) and d.token == token for d in deliveries)
        assert len({d.reference for d in deliveries if isinstance(d, TokenDelivery)}) == 1
        assert rig.phone.inbox[0].startswith("Token utk meter 14000000001 ditolak meter")
        assert "meter tidak menjawab" in rig.phone.inbox[0]
        (item,) = await rig.rows(schema.helpdesk_items)
        assert item.category == "token_delivery" and item.meter_number == METER
        (tx,) = await rig.rows(schema.transactions)
        assert tx.state == TransactionState.METER_TIMEOUT
        events = await rig.rows(schema.sla_events)
        assert len(events) == 3 and {e.metric for e in events} == {Metric.METER_ANSWER.value}
        assert all(e.met is False and e.duration_ms > e.target_ms for e in events)
        assert [b.metric for b in rig.breaches] == [Metric.METER_ANSWER] * 3
        # A further sweep changes nothing: the item is not opened twice.
        rig.clock.advance(wait)
        await rig.hub.sweep()
        assert await rig.count(schema.helpdesk_items) == 1
        assert len(rig.meter.received) == 3


async def test_every_altered_copy_of_a_frame_is_rejected_in_one_batch(
    store: Store, tmp_path: Path
) -> None:
    """One bit flipped at every offset of a genuine frame, all in one batch: each copy is
    logged as rejected, none is acted on, and the genuine frame still opens afterwards."""
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        genuine = rig.meter.seal(_tamper_alarm(rig))
        now = rig.network.now()
        altered = [
            InboundSms(
                event_id=f"flip-{offset}-{bit}",
                sender=METER_SIM,
                received_at=now,
                data=genuine[:offset]
                + bytes([genuine[offset] ^ (1 << bit)])
                + genuine[offset + 1 :],
            )
            for offset in range(len(genuine))
            for bit in (0, 7)
        ]
        await rig.hub.process_events(altered)
        rows = await rig.rows(msgs, msgs.c.direction == "in")
        assert len(rows) == len(altered)
        assert all(r.state == MessageState.REJECTED and r.reject_reason for r in rows)
        assert await rig.count(schema.alarms) == 0
        rig.meter.send_raw(genuine)
        await rig.until(_inbound_done(rig, len(altered) + 1))
        assert await rig.count(schema.alarms) == 1


async def test_token_timers_survive_a_restart_of_the_hub(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False, meter_answers=False) as rig:
        await rig.hub.push_token(PushedToken("PLNREF0003", METER, make_token("5"), 20_000))

        async def sent_once() -> bool:
            txs = await rig.rows(schema.transactions)
            return len(rig.meter.received) == 1 and txs[0].state == "token_sent"

        await rig.until(sent_once)
        await rig.hub.__aexit__(None, None, None)  # the process stops; memory is gone
        rig.clock.advance(timedelta(seconds=rig.settings.sla.meter_answer_s + 1))
        fresh = Hub(
            rig.settings, rig.store, rig.registry, rig.hub.transport, clock=rig.clock,
            run_sweeper=False,
        )  # fmt: skip
        async with fresh:
            await fresh.sweep()

            async def resent() -> bool:
                return len(rig.meter.received) == 2

            await rig.until(resent)
        first, second = rig.meter.received
        assert first == second  # the same token, the same reference


async def test_a_supervisor_resends_a_token_the_meter_never_confirmed(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False, meter_answers=False) as rig:
        token = make_token("10")
        outcome = await rig.hub.push_token(PushedToken("PLNREF0003", METER, token, 20_000))

        async def delivered(n: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return len(rig.meter.received) >= n

            return check

        await rig.until(await delivered(1))
        done = await HubActions(rig.hub).resend_token(
            outcome.transaction_id, "supervisor1", "customer called: no credit"
        )
        assert "sent to meter 14000000001 again" in done
        await rig.until(await delivered(2))
        first, second = rig.meter.received[:2]
        assert isinstance(second, TokenDelivery) and isinstance(first, TokenDelivery)
        assert second.token == token and second.reference == first.reference
        (entry,) = await rig.rows(schema.audit_log, schema.audit_log.c.action == "token.resend")
        assert entry.actor == "supervisor1" and entry.subject_id == outcome.transaction_id
        # Once the meter has applied it, a resend is refused.
        rig.meter.answers = True
        await HubActions(rig.hub).resend_token(outcome.transaction_id, "supervisor1", "again")

        async def applied() -> bool:
            (tx,) = await rig.rows(schema.transactions)
            return tx.state in ("applied", "reported")

        await rig.until(applied)
        with pytest.raises(Conflict, match="only a token that was issued"):
            await rig.hub.resend_token(outcome.transaction_id, "supervisor1", "once more")


async def test_the_status_board_follows_the_gateways_events(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        now = rig.network.now()
        await rig.hub.process_events(
            [
                ModemStateChanged("ms-1", "modem1", ModemStatus.READY, now, gateway="gw9"),
                ModemStateChanged("ms-2", "modem2", ModemStatus.HUNG, now, "no answer", "gw9"),
            ]
        )
        (gateway,) = [g for g in await rig.hub.status.gateways() if g.gateway_id == "gw9"]
        assert gateway.connected
        modems = {m.modem_id: m for m in gateway.modems}
        assert modems["modem1"].registered and not modems["modem2"].registered
        assert modems["modem2"].detail == "hung no answer"
