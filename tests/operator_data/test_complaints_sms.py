"""ADUAN through the hub: an SMS in, a ticket number back, and the complaint row written
with the answer (PIN-like digits masked); a bare ADUAN gets the usage text and no row;
the grammar and the reply texts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from operator_data.commands import CommandError, Complain, Problem, mask_secrets, parse
from operator_data.commands.replies import Lang, Reply, render
from operator_data.complaints.calendar import default
from operator_data.complaints.sms import guess_category
from operator_data.complaints.tables import complaint_events, complaints
from operator_data.store import Store, schema
from tests.operator_data.hub_support import CUSTOMER, PHONE, Phone, running_rig

pytestmark = pytest.mark.timeout(60)

TICKET = re.compile(r"ADU-[0-9A-HJKMNP-TV-Z]{10}")


def test_aduan_keeps_the_customers_words_and_masks_pin_like_digits() -> None:
    command = parse("aduan#Token 100rb tidak masuk, PIN 123456 meter 14000000001")
    assert command == Complain("Token 100rb tidak masuk, PIN ****** meter 14000000001")
    assert parse("KELUHAN pulsa terpotong") == Complain("pulsa terpotong")
    with pytest.raises(CommandError) as bare:
        parse("ADUAN   ")
    assert bare.value.problem is Problem.MISSING_TEXT and bare.value.keyword == "ADUAN"
    # the message log masks the same way
    assert mask_secrets("ADUAN beli 100rb 1234 gagal") == "ADUAN beli 100rb **** gagal"


def test_the_ticket_reply_fits_one_sms_in_both_languages() -> None:
    for lang in Lang:
        text = render(Reply.COMPLAINT_OPENED, lang, ticket="ADU-ABCDEFGHJK", due="31-12-2026")
        assert "ADU-ABCDEFGHJK" in text and "31-12-2026" in text


def test_category_is_guessed_from_the_words() -> None:
    assert guess_category("token tidak masuk") == "token"
    assert guess_category("pulsa saya terpotong dua kali") == "tagihan"
    assert guess_category("listrik padam sejak pagi") == "gangguan"
    assert guess_category("petugas tidak ramah") == "lainnya"


async def test_aduan_sms_is_answered_with_a_ticket_and_recorded(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        rig.phone.text("ADUAN token 100rb tidak masuk, PIN 4321 sudah benar")
        await rig.until(rig.inbox_has(1))
        reply = rig.phone.inbox[0]
        assert reply.startswith("Aduan Anda diterima, no tiket ADU-")
        ticket = TICKET.search(reply)
        assert ticket is not None
        rows = await rig.rows(complaints)
        assert len(rows) == 1
        row = rows[0]
        assert row.ticket == ticket[0] and row.channel == "sms" and row.state == "open"
        assert row.customer_id == CUSTOMER and row.msisdn == PHONE
        assert row.text == "token 100rb tidak masuk, PIN **** sudah benar"
        assert row.category == "token" and row.opened_by == "sms"
        # the reply quotes the due day the clock gives for the SMS's arrival
        assert default().due_on(row.received_at).strftime("%d-%m-%Y") in reply
        # written with the answer: the row names the SMS, which is processed
        inbound = await rig.rows(schema.messages, schema.messages.c.id == row.source_message_id)
        assert inbound[0].state == "processed" and "4321" not in inbound[0].body
        events = await rig.rows(complaint_events)
        assert [(e.action, e.actor) for e in events] == [("open", "sms")]


async def test_bare_aduan_gets_the_usage_text_and_opens_nothing(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        rig.phone.text("ADUAN")
        await rig.until(rig.inbox_has(1))
        assert rig.phone.inbox[0].startswith("Tulis aduan setelah kata ADUAN")
        assert await rig.count(complaints) == 0


async def test_an_unregistered_phone_can_complain(store: Store, tmp_path: Path) -> None:
    async with running_rig(store, tmp_path) as rig:
        stranger = Phone(rig.network, "+6281399999999")
        stranger.text("ADUAN tidak bisa daftar Listrik Pintar")

        async def answered() -> bool:
            return len(stranger.inbox) >= 1

        await rig.until(answered)
        assert TICKET.search(stranger.inbox[0]) is not None
        (row,) = await rig.rows(complaints)
        assert row.customer_id is None and row.msisdn == "+6281399999999"
