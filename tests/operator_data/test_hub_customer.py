"""Customer commands at the short code over the simulated network: PINs and lock-out,
duplicate purchases, help for anything unknown, consent, balance."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.transport import InboundSms
from operator_data.commands.replies import SMS_LIMIT
from operator_data.store import MessageState, Store, schema
from tests.operator_data.hub_support import PIN, Phone, running_rig

pytestmark = pytest.mark.timeout(60)


async def test_wrong_pins_count_down_then_lock_even_the_right_pin(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        assert rig.simulator is not None
        for n in range(1, 5):
            rig.phone.text(f"BELI 100rb {'999999' if n < 4 else PIN}")
            await rig.until(rig.inbox_has(n))
        wrong_2, wrong_1, locked, still_locked = rig.phone.inbox
        assert wrong_2.startswith("PIN salah. Sisa percobaan: 2.")
        assert wrong_1.startswith("PIN salah. Sisa percobaan: 1.")
        assert locked.startswith("PIN diblokir sampai")
        assert still_locked == locked
        assert rig.simulator.received("2200") == 0
        assert await rig.count(schema.transactions) == 0
        for request in await rig.rows(schema.messages, schema.messages.c.direction == "in"):
            assert "999999" not in request.body and PIN not in request.body


async def test_the_same_purchase_sms_twice_buys_once(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path) as rig:
        assert rig.simulator is not None
        rig.phone.text(f"BELI 100rb {PIN}")
        rig.phone.text(f"BELI 100rb {PIN}")

        async def settled() -> bool:
            return len(rig.phone.inbox) >= 3 and len(rig.meter.applied) == 1

        await rig.until(settled)
        texts = sorted(rig.phone.inbox)
        assert sum(t.startswith("Pembelian ini sudah diterima") for t in texts) == 1
        assert sum(t.startswith("Pembelian Rp100.000") for t in texts) == 1
        assert sum(t.startswith("Token Rp100.000") for t in texts) == 1
        assert rig.simulator.received("2200") == 1
        assert await rig.count(schema.transactions) == 1


async def test_a_redelivered_event_is_logged_and_answered_once(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        event = InboundSms(
            event_id="gw1:redelivered:1",
            sender=rig.phone.msisdn,
            received_at=datetime.now(UTC),
            text="SALDO",
        )
        await rig.hub.process_events([event])
        await rig.until(rig.inbox_has(1))
        await rig.hub.process_events([event])
        await rig.hub.dispatch()
        assert await rig.count(schema.messages, schema.messages.c.direction == "in") == 1
        assert await rig.count(schema.messages, schema.messages.c.kind == "balance") == 1


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("HALO", "Perintah tidak dikenal. Ketik BANTUAN"),
        ("SADLO", "Perintah tidak dikenal. Maksud Anda SALDO?"),
        ("", "Listrik Pintar: BELI <nominal> <PIN>"),
        ("BELI", "Format salah."),
        ("BELI 100rb 12", "PIN harus 4-6 angka."),
        ("BELI 75rb 123456", "Nominal Rp75.000 tidak tersedia. Pilihan: 20rb 50rb"),
        ("BELI 100rb 12345678901 123456", "Meter 12345678901 tidak terdaftar"),
        ("BANTUAN", "Listrik Pintar: BELI <nominal> <PIN>"),
    ],
)
@pytest.mark.parametrize("backend", ["sqlite"])  # the grammar does not depend on the database
async def test_every_message_gets_one_sms_answer_never_silence(
    store: Store, tmp_path: Path, text: str, start: str
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        rig.phone.text(text)
        await rig.until(rig.inbox_has(1))
        (answer,) = rig.phone.inbox
        assert answer.startswith(start)
        assert len(answer) <= SMS_LIMIT
        (request,) = await rig.rows(schema.messages, schema.messages.c.direction == "in")
        assert request.state == MessageState.PROCESSED


async def test_unregistered_phone_is_told_to_register_and_cannot_buy(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        assert rig.simulator is not None
        stranger = Phone(rig.network, "+6281399999999")
        stranger.text(f"BELI 100rb {PIN}")
        await rig.until(lambda: _has(stranger, 1))
        assert stranger.inbox[0].startswith("Nomor HP ini belum terdaftar")
        # Answered once per hub.unregistered_reply_every_s: the short code is no reflector.
        stranger.text("BANTUAN")
        m = schema.messages

        async def processed() -> bool:
            return await rig.count(m, m.c.body == "BANTUAN", m.c.state == "processed") == 1

        await rig.until(processed)
        assert len(stranger.inbox) == 1
        async with store.read() as conn:
            why = await conn.scalar(
                select(schema.message_states.c.detail)
                .join(m, m.c.id == schema.message_states.c.message_id)
                .where(m.c.body == "BANTUAN", schema.message_states.c.state == "processed")
            )
        assert why == "not answered: unregistered number answered recently"
        assert rig.simulator.received("2200") == 0
        assert await rig.count(schema.transactions) == 0


async def _has(phone: Phone, count: int) -> bool:
    return len(phone.inbox) >= count


async def test_stop_and_mulai_record_consent(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        rig.phone.text("STOP")
        await rig.until(rig.inbox_has(1))
        assert (await rig.registry.get_customer("530000000001")).opted_out
        rig.phone.text("MULAI")
        await rig.until(rig.inbox_has(2))
        assert not (await rig.registry.get_customer("530000000001")).opted_out
        assert rig.phone.inbox[0].startswith("Anda tidak akan menerima info lagi")
        assert rig.phone.inbox[1].startswith("Info Listrik Pintar aktif kembali")
