"""Store-then-send: the pool with a send journal (the gateway's spool) over scripted modems.

Each part is written to the modem (AT+CMGW), journalled, sent from storage (AT+CMSS),
journalled as sent, then deleted. What the tests pin down: a send cut short — by a crash
(a journal row left from an earlier process) or by a modem that hangs mid-send — is settled
from the stored copy's status, so the SMS goes out exactly once.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.at.config import ModemConfig
from gateway.pdu import encode_deliver, encode_submit
from gateway.pool import ModemPool, PoolConfig
from gateway.pool.journal import same_submit
from gateway.pool.pool import _concat_ref
from gateway.spool import OutboundState, Spool
from gateway.transport import (
    ModemStateChanged,
    ModemStatus,
    OutboundSms,
    SendResult,
    SendStatus,
)
from tests.gateway.at_device import AtDevice, ReplyItem, tpdu_length
from tests.gateway.test_at_modem import fast_config
from tests.gateway.test_pool import FAST, METER, WHEN, Rig, Stored, sms

pytestmark = pytest.mark.timeout(20)

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
CMSS = r"AT\+CMSS=\d+"


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
async def spool(tmp_path: Path, stack: AsyncExitStack) -> Spool:
    return await stack.enter_async_context(Spool(tmp_path / "spool.db"))


async def devices(stack: AsyncExitStack, count: int) -> list[AtDevice]:
    return [await stack.enter_async_context(AtDevice()) for _ in range(count)]


async def pool_over(
    stack: AsyncExitStack,
    found: list[AtDevice],
    journal: Spool,
    config: PoolConfig = FAST,
    **modem: object,
) -> Rig:
    configs: list[ModemConfig] = [
        fast_config(d, name=f"m{i}", **modem) for i, d in enumerate(found)
    ]
    pool = await stack.enter_async_context(
        ModemPool(configs, persist=Stored(), journal=journal, config=config)
    )
    for device in found:
        await device.wait_for(r"AT\+CMGL=4")
    return Rig(found, pool)


def pdu_of(message: OutboundSms) -> str:
    (part,) = encode_submit(message.to, text=message.text, status_report=message.status_report)
    return part.hex


def outgoing(device: AtDevice) -> dict[int, int]:
    """Stored outgoing messages left on the device: slot → stat."""
    return {i: m.stat for i, m in device.storage.items() if m.stat in (2, 3)}


async def test_each_part_is_stored_journalled_sent_from_storage_then_deleted(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    rig = await pool_over(stack, [device], spool)
    assert await rig.pool.send(sms(1, "x" * 200))  # two parts
    result = await rig.result("msg-1")
    assert (result.status, result.message_references) == (SendStatus.SENT, (0, 1))
    dialogue = [
        re.sub(r"=\d+", "=n", c) if c.startswith("AT+CM") else "<pdu>"
        for c in device.commands
        if re.match(r"AT\+CM(GW|SS|GD|GR)|[0-9A-F]+\x1a", c)
    ]
    # The first send is read back once (does this modem mark it STO SENT?).
    assert dialogue == [
        *["AT+CMGW=n", "<pdu>", "AT+CMSS=n", "AT+CMGR=n", "AT+CMGD=n"],
        *["AT+CMGW=n", "<pdu>", "AT+CMSS=n", "AT+CMGD=n"],
    ]
    assert len(device.sent_pdus) == 2 and outgoing(device) == {}
    journalled = await spool.parts_of("msg-1")
    assert [(p.sent, p.reference) for _, p in sorted(journalled.items())] == [
        (True, 0),
        (True, 1),
    ]


async def test_a_part_stored_and_sent_before_a_crash_is_not_sent_again(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    message = sms(1)
    slot = device.store(pdu_of(message), stat=3)  # the modem sent it; the process died
    await spool.part_stored(message.message_id, 0, "m0", slot, pdu_of(message))
    rig = await pool_over(stack, [device], spool)
    assert await rig.pool.send(message)
    result = await rig.result("msg-1")
    # Sent, its reference lost with the crashed process: no report can be matched to it.
    assert (result.status, result.message_references) == (SendStatus.SENT, ())
    assert device.sent_pdus == [] and outgoing(device) == {}
    assert device.matching(r"AT\+CMGW=\d+") == []


async def test_a_part_stored_but_not_sent_before_a_crash_is_sent_once(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    message = sms(1)
    slot = device.store(pdu_of(message), stat=2)
    await spool.part_stored(message.message_id, 0, "m0", slot, pdu_of(message))
    rig = await pool_over(stack, [device], spool)
    assert await rig.pool.send(message)
    result = await rig.result("msg-1")
    assert result.status is SendStatus.SENT and len(result.message_references) == 1
    assert [same_submit(p, pdu_of(message)) for p in device.sent_pdus] == [True]
    assert outgoing(device) == {}


async def test_leftover_stored_messages_nobody_waits_for_are_deleted_unsent(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    # Written by AT+CMGW just before a crash, before the journal heard of it; and one sent
    # whose slot was not yet freed.
    device.store(pdu_of(sms(1)), stat=2)
    device.store(pdu_of(sms(2)), stat=3)
    await pool_over(stack, [device], spool)
    await device.wait_for(r"AT\+CMGD=2")
    assert outgoing(device) == {}
    assert device.sent_pdus == []


async def test_a_slot_that_no_longer_holds_the_part_means_it_is_sent_again(
    stack: AsyncExitStack, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    (device,) = await devices(stack, 1)
    message = sms(1)
    slot = device.store(pdu_of(sms(9)), stat=3)  # someone else's message in that slot
    await spool.part_stored(message.message_id, 0, "m0", slot, pdu_of(message))
    with caplog.at_level(logging.WARNING):
        rig = await pool_over(stack, [device], spool)
        assert await rig.pool.send(message)
        assert (await rig.result("msg-1")).status is SendStatus.SENT
    assert [same_submit(p, pdu_of(message)) for p in device.sent_pdus] == [True]
    assert "no longer holds part 1 of msg-1" in caplog.text


def sends_then_hangs(device: AtDevice, *, transmit: bool) -> None:
    """The next AT+CMSS: the modem sends the SMS (or not) and then answers nothing."""

    def reply(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
        stored = device.storage[int(match.group(1))]
        if transmit:
            device.transmit(stored.pdu)
            stored.stat = 3
        device.hang()
        return []

    device.on(r"AT\+CMSS=(\d+)", reply, once=True)


@pytest.mark.parametrize("transmitted", [True, False])
async def test_a_modem_that_hangs_mid_send_keeps_the_message_until_it_says_what_it_did(
    stack: AsyncExitStack, spool: Spool, transmitted: bool
) -> None:
    (first,) = await devices(stack, 1)
    rig = await pool_over(stack, [first], spool, send_timeout=0.3)
    sends_then_hangs(first, transmit=transmitted)
    assert await rig.pool.send(sms(1))
    await rig.next(ModemStateChanged, lambda e: e.modem == "m0" and e.status is ModemStatus.HUNG)
    result = await rig.result("msg-1")  # after the reset, from the stored copy's status
    assert result.status is SendStatus.SENT and result.modem == "m0"
    assert len(first.sent_pdus) == 1 and first.resets == 1
    # Sent before the hang: its reference died with the answer. Not sent: sent now, once.
    assert result.message_references == (() if transmitted else (0,))
    assert outgoing(first) == {}


async def test_while_the_modem_holding_a_part_is_down_no_other_modem_sends_it(
    stack: AsyncExitStack, spool: Spool
) -> None:
    found = await devices(stack, 2)
    rig = await pool_over(stack, found, spool, send_timeout=0.3)
    # Whichever modem takes the message sends it and hangs; the other must not send it.
    for device in found:
        sends_then_hangs(device, transmit=True)
    assert await rig.pool.send(sms(1))
    hung = await rig.next(ModemStateChanged, lambda e: e.status is ModemStatus.HUNG)
    holder = found[int(hung.modem[-1])]
    other = found[1 - int(hung.modem[-1])]
    result = await rig.result("msg-1")
    assert (result.status, result.modem) == (SendStatus.SENT, hung.modem)
    assert len(holder.sent_pdus) == 1 and other.sent_pdus == []
    assert other.matching(CMSS) == []


async def test_after_stored_wait_another_modem_sends_what_a_dead_modem_holds(
    stack: AsyncExitStack, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    dead, alive = await devices(stack, 2)
    message = sms(1)
    slot = dead.store(pdu_of(message), stat=2)
    await spool.part_stored(message.message_id, 0, "m0", slot, pdu_of(message))
    dead.on(r"AT", [])  # never answers: out of service for good
    config = dataclasses.replace(FAST, stored_wait=0.0, reprobe_initial=3600)
    configs = [
        fast_config(d, name=f"m{i}", probe_attempts=1, probe_timeout=0.1)
        for i, d in enumerate([dead, alive])
    ]
    pool = await stack.enter_async_context(
        ModemPool(configs, persist=Stored(), journal=spool, config=config)
    )
    rig = Rig([dead, alive], pool)
    with caplog.at_level(logging.WARNING):
        assert await pool.send(message)
        result = await rig.result("msg-1")
    assert (result.status, result.modem) == (SendStatus.SENT, "m1")
    assert len(alive.sent_pdus) == 1
    assert "stored on m0, which has not come back" in caplog.text


async def test_a_send_refused_by_the_modem_frees_the_slot_and_is_retried(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    rig = await pool_over(stack, [device], spool)
    device.on(CMSS, ["+CMS ERROR: 512"], once=True)  # busy: retried
    assert await rig.pool.send(sms(1))
    result = await rig.result("msg-1")
    assert (result.status, result.attempts) == (SendStatus.SENT, 2)
    assert len(device.sent_pdus) == 1 and outgoing(device) == {}


async def test_a_modem_that_does_not_mark_sent_messages_is_reported(
    stack: AsyncExitStack, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    (device,) = await devices(stack, 1)
    device.marks_sent = False
    rig = await pool_over(stack, [device], spool)
    with caplog.at_level(logging.WARNING):
        for n in range(2):
            assert await rig.pool.send(sms(n))
            await rig.result(f"msg-{n}")
    assert caplog.text.count("leaves messages sent with AT+CMSS as stored-unsent") == 1


async def test_a_modem_configured_without_store_then_send_uses_cmgs(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    rig = await pool_over(stack, [device], spool, store_then_send=False)
    assert await rig.pool.send(sms(1))
    assert (await rig.result("msg-1")).status is SendStatus.SENT
    assert device.matching(r"AT\+CMGS=\d+") and not device.matching(r"AT\+CMGW=\d+")


async def test_the_outcome_recorded_in_the_spool_clears_the_journal(spool: Spool) -> None:
    message = sms(1)
    assert await spool.accept(message, NOW)
    await spool.part_stored(message.message_id, 0, "m0", 4, pdu_of(message))
    await spool.part_sent(message.message_id, 0, 17, modem="m0", slot=4)
    assert (await spool.parts_of(message.message_id))[0].reference == 17
    assert [p.slot for p in await spool.stored_on("m0")] == []  # sent: nothing to settle
    result = SendResult(
        event_id="send:msg-1",
        message_id="msg-1",
        status=SendStatus.SENT,
        at=NOW,
        message_references=(17,),
        recipient=message.to,
        modem="m0",
    )
    await spool.record_outcome(
        result,
        "msg-1",
        OutboundState.SENT,
        NOW,
        modem="m0",
        references=(17,),
        recipient=message.to,
    )
    assert await spool.parts_of(message.message_id) == {}


def test_same_submit_ignores_the_smsc_part_and_the_message_reference() -> None:
    (part,) = encode_submit("+6281234567890", text="token 1")
    tpdu = part.hex[2:]
    with_smsc = "07912618485400F9" + tpdu
    new_reference = tpdu[:2] + "2A" + tpdu[4:]
    assert same_submit(with_smsc, part.hex)
    assert same_submit("00" + new_reference, part.hex)
    other_text = tpdu[:-2] + ("00" if tpdu.endswith("FF") else "FF")
    assert not same_submit("00" + other_text, part.hex)
    assert not same_submit("zz", part.hex) and not same_submit("", part.hex)
    assert tpdu_length(part.hex) == len(tpdu) // 2


# -- found in review ----------------------------------------------------------------------


async def two_modems(
    stack: AsyncExitStack,
    spool: Spool,
    found: list[AtDevice],
    config: PoolConfig = FAST,
    **first: object,
) -> Rig:
    configs = [
        fast_config(found[0], name="m0", probe_attempts=1, probe_timeout=0.1, **first),
        fast_config(found[1], name="m1", probe_attempts=1, probe_timeout=0.1),
    ]
    pool = await stack.enter_async_context(
        ModemPool(configs, persist=Stored(), journal=spool, config=config)
    )
    return Rig(found, pool)


async def test_a_second_send_cut_short_on_the_same_modem_waits_anew(
    stack: AsyncExitStack, spool: Spool
) -> None:
    m0, m1 = await devices(stack, 2)
    m1.on(r"AT", [])  # m1 is down while m0 sends
    # The first wait runs out at once; the second cut must start a wait of its own.
    config = dataclasses.replace(FAST, stored_wait=0.0)
    rig = await two_modems(stack, spool, [m0, m1], config, send_timeout=0.3)

    def hangs(transmit: bool) -> ReplyItem:
        def reply(match: re.Match[str], device: AtDevice) -> list[ReplyItem]:
            stored = device.storage[int(match.group(1))]
            if transmit:
                device.transmit(stored.pdu)
                stored.stat = 3
                device.on(r"AT", [])  # and m0 stays down
                rig.pool.config = dataclasses.replace(config, stored_wait=3600.0)
            device.hang()
            return []

        return reply

    # Cut short (not sent), settled; then cut short again after it went out.
    m0.on(r"AT\+CMSS=(\d+)", hangs(True), once=True)
    m0.on(r"AT\+CMSS=(\d+)", hangs(False), once=True)
    assert await rig.pool.send(sms(1))
    await m0.wait_for(r"AT\+CMSS=\d+", 2)
    m1.on(r"AT", ["OK"])
    await rig.next(ModemStateChanged, lambda e: e.modem == "m1" and e.status is ModemStatus.READY)
    m0.on(r"AT", ["OK"])  # m0 is back: it tells, from its SIM, that the SMS went out
    result = await rig.result("msg-1")
    assert (result.status, result.modem) == (SendStatus.SENT, "m0")
    assert len(m0.sent_pdus) == 1 and m1.matching(r"AT\+CMGW=\d+") == []


async def test_an_error_reading_back_a_stored_part_neither_fails_nor_resends_it(
    stack: AsyncExitStack, spool: Spool
) -> None:
    (device,) = await devices(stack, 1)
    message = sms(1)
    slot = device.store(pdu_of(message), stat=3)  # sent before the crash
    await spool.part_stored(message.message_id, 0, "m0", slot, pdu_of(message))
    for _ in range(2):  # the SIM is still starting after the restart (not in the table)
        device.on(rf"AT\+CMGR={slot}", ["+CMS ERROR: 310"], once=True)
    rig = await pool_over(stack, [device], spool)
    assert await rig.pool.send(message)
    result = await rig.result("msg-1")
    assert result.status is SendStatus.SENT and device.sent_pdus == []
    assert len(device.matching(rf"AT\+CMGR={slot}")) == 3


async def test_a_long_message_half_sent_goes_on_from_the_same_modem(
    stack: AsyncExitStack, spool: Spool
) -> None:
    message = sms(1, "x" * 200)
    first, second = (
        p.hex
        for p in encode_submit(
            message.to,
            text=message.text,
            status_report=True,
            concat_ref=_concat_ref(message.message_id),
        )
    )
    m0, m1 = await devices(stack, 2)
    m0.on(r"AT", [])  # part 1 went out from m0 before the crash; m0 is slow to come back
    await spool.part_stored(message.message_id, 0, "m0", 1, first)
    await spool.part_sent(message.message_id, 0, 5, modem="m0", slot=1)
    rig = await two_modems(stack, spool, [m0, m1])
    assert await rig.pool.send(message)
    await rig.next(ModemStateChanged, lambda e: e.modem == "m1" and e.status is ModemStatus.READY)
    m0.on(r"AT", ["OK"])
    result = await rig.result("msg-1")
    assert (result.status, result.modem) == (SendStatus.SENT, "m0")
    assert result.message_references[0] == 5 and len(result.message_references) == 2
    assert [same_submit(p, second) for p in m0.sent_pdus] == [True]
    assert m1.sent_pdus == []


async def test_a_full_storage_sends_with_cmgs_instead_of_failing(
    stack: AsyncExitStack, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    async def refuse(item: object) -> None:
        raise RuntimeError("hub store down")  # inbound cannot be taken: the SIM stays full

    device = await stack.enter_async_context(AtDevice(storage_total=2))
    for n in range(2):
        device.store(encode_deliver(METER, text=f"reading {n}", timestamp=WHEN), stat=1)
    pool = await stack.enter_async_context(
        ModemPool([fast_config(device, name="m0")], persist=refuse, journal=spool, config=FAST)
    )
    rig = Rig([device], pool)
    with caplog.at_level(logging.WARNING):
        assert await pool.send(sms(1))
        result = await rig.result("msg-1")
    assert result.status is SendStatus.SENT and len(device.sent_pdus) == 1
    assert device.matching(r"AT\+CMGS=\d+") and "storage full" in caplog.text


def test_a_long_message_keeps_its_concatenation_reference_and_two_differ() -> None:
    assert _concat_ref("msg-1") == _concat_ref("msg-1")
    assert len({_concat_ref(f"msg-{n}") for n in range(20)}) > 10


async def test_a_modem_settling_late_cannot_touch_the_row_of_a_part_stored_again_elsewhere(
    spool: Spool,
) -> None:
    message = sms(1)
    await spool.part_stored(message.message_id, 0, "m0", 3, pdu_of(message))
    # m0 was given up on; m1 stored the part again in its slot 7.
    await spool.part_stored(message.message_id, 0, "m1", 7, pdu_of(message))
    await spool.part_sent(message.message_id, 0, None, modem="m0", slot=3)
    await spool.part_dropped(message.message_id, 0, modem="m0", slot=3)
    [row] = (await spool.parts_of(message.message_id)).values()
    assert (row.modem, row.slot, row.sent) == ("m1", 7, False)
    await spool.part_sent(message.message_id, 0, 9, modem="m1", slot=7)
    assert (await spool.parts_of(message.message_id))[0].reference == 9
