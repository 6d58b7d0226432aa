"""Kannel's bearerbox + smsbox (an SMPP client nobody here wrote) against our SMSC simulator,
in Kannel's default mode (a transmitter and a receiver) and in transceiver mode: a message
submitted through smsbox's sendsms interface arrives with its text and destination, the
simulator's delivery receipt comes back to the dlr-url, and an MO deliver_sm reaches the
sms-service, is answered (deliver_sm_resp), and the service's reply goes out as a submit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.smpp import SmscSimulator
from gateway.smpp.message import DataCoding, ReceiptState, decode_content
from gateway.smpp.pdu import Command
from tests.conformance.kannel import DEADLINE, Kannel, WebApp, running, smpp_config, web_app

pytestmark = pytest.mark.timeout(60)

SHORT_CODE = "87000"  # the simulator's default short code
METER = "6281100000001"
CUSTOMER = "6281200000002"
MODES = {"transmitter+receiver": False, "transceiver": True}


@dataclass(frozen=True, slots=True)
class Setup:
    smsc: SmscSimulator
    web: WebApp
    kannel: Kannel
    #: the bind commands Kannel must have sent (one per SMPP session)
    binds: list[Command]


async def _wait(smsc: SmscSimulator, predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(DEADLINE):
            await smsc.wait_until(predicate)
    except TimeoutError:
        pytest.fail(f"the SMSC simulator saw no {what} within {DEADLINE} s")


@pytest.fixture(params=list(MODES), ids=list(MODES))
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    transceiver = MODES[request.param]
    binds = (
        [Command.BIND_TRANSCEIVER]
        if transceiver
        else [Command.BIND_TRANSMITTER, Command.BIND_RECEIVER]
    )
    async with SmscSimulator() as smsc, web_app(reply="Terima kasih") as web:
        config = smpp_config(
            tmp_path, smsc_port=smsc.port, transceiver=transceiver, web_port=web.port
        )
        async with running(config) as kannel:
            await _wait(smsc, lambda: smsc.binds == len(binds), "bind")
            await kannel.wait_for_status(
                lambda page: page.count("(online") == len(binds), "SMSC session online"
            )
            yield Setup(smsc, web, kannel, binds)


async def test_kannel_binds_as_configured_and_unbinds_on_shutdown(setup: Setup) -> None:
    smsc, kannel = setup.smsc, setup.kannel
    bound = sorted(p.command for p in smsc.received if p.command.name.startswith("BIND"))
    assert bound == sorted(setup.binds)
    for pdu in smsc.received:
        if pdu.command in setup.binds:
            assert pdu.text("system_id") == "pintar"
            assert pdu.text("system_type") == "VMA"

    await kannel.stop()  # SIGTERM: each session unbinds, our unbind_resp lets it go
    assert kannel.killed == [], kannel.logs()
    unbinds = [p for p in smsc.received if p.command is Command.UNBIND]
    assert len(unbinds) == len(setup.binds)
    assert [p.returncode for p in kannel.processes] == [0, 0], kannel.logs()


async def test_sendsms_arrives_at_the_smsc_and_its_receipt_reaches_the_dlr_url(
    setup: Setup,
) -> None:
    smsc, web, kannel = setup.smsc, setup.web, setup.kannel
    answer = await kannel.sendsms(
        to=METER,
        text="Token 1234-5678-9012-3456-7890",
        **{
            "from": SHORT_CODE,
            "dlr-mask": "3",  # delivered | failed: the final state only
            "dlr-url": f"http://127.0.0.1:{web.port}/dlr?type=%d&reply=%A&to=%p&smsc=%i",
        },
    )
    assert answer.status_code == 202, answer.text
    assert "Accepted for delivery" in answer.text

    await _wait(smsc, lambda: len(smsc.submitted) == 1, "submit_sm")
    [submitted] = smsc.submitted
    assert submitted.destination_addr == METER
    assert submitted.source_addr == SHORT_CODE
    assert submitted.short_message == b"Token 1234-5678-9012-3456-7890"
    assert submitted.registered_delivery & 0x01  # Kannel asked for the receipt

    receipt = await web.next("/dlr")
    assert receipt.query["type"] == "1", receipt  # 1 = delivered to the phone
    assert f"id:{submitted.message_id}" in receipt.query["reply"]
    assert "stat:DELIVRD" in receipt.query["reply"]
    assert receipt.query["to"] == METER
    assert receipt.query["smsc"] == "pintar-sim"
    await _wait(smsc, lambda: smsc.pending_deliveries() == 0, "deliver_sm_resp for the receipt")


async def test_an_undeliverable_receipt_reaches_the_dlr_url_as_failed(setup: Setup) -> None:
    smsc, web = setup.smsc, setup.web
    smsc.receipt_state = ReceiptState.UNDELIVERABLE
    answer = await setup.kannel.sendsms(
        to=METER,
        text="Token 1234",
        **{
            "from": SHORT_CODE,
            "dlr-mask": "3",
            "dlr-url": f"http://127.0.0.1:{web.port}/dlr?type=%d&reply=%A",
        },
    )
    assert answer.status_code == 202, answer.text

    receipt = await web.next("/dlr")
    assert receipt.query["type"] == "2", receipt  # 2 = delivery failed
    assert "stat:UNDELIV" in receipt.query["reply"]


async def test_a_long_unicode_sendsms_arrives_as_concatenated_ucs2_parts(setup: Setup) -> None:
    smsc = setup.smsc
    text = "Token ✓ 1234-5678-9012-3456-7890 untuk meter 14123456789, sisa kredit Rp 20.000"
    assert 70 < len(text) <= 2 * 67  # two UCS-2 parts
    answer = await setup.kannel.sendsms(
        to=METER, text=text, coding="2", charset="UTF-8", **{"from": SHORT_CODE}
    )
    assert answer.status_code == 202, answer.text

    await _wait(smsc, lambda: len(smsc.submitted) == 2, "two submit_sm")
    parts = [decode_content(s.data_coding, s.esm_class, s.short_message) for s in smsc.submitted]
    assert {s.data_coding for s in smsc.submitted} == {DataCoding.UCS2}
    assert [p.concat[1:] for p in parts if p.concat] == [(2, 1), (2, 2)]
    assert "".join(p.text or "" for p in parts) == text


async def test_an_mo_reaches_the_sms_service_is_answered_and_replied_to(setup: Setup) -> None:
    smsc, web = setup.smsc, setup.web
    # No destination given: the simulator addresses it to its short code, as an SMSC
    # does (Kannel discards an MO whose destination_addr is empty).
    await smsc.inject_mo("+" + CUSTOMER, b"SALDO 12345678901")

    mo = await web.next("/mo")
    assert mo.query == {
        "from": "+" + CUSTOMER,
        "to": SHORT_CODE,
        "text": "SALDO 12345678901",
        "coding": "0",
        "smsc": "pintar-sim",
    }
    await _wait(smsc, lambda: smsc.pending_deliveries() == 0, "deliver_sm_resp")
    answered = [p for p in smsc.received if p.command is Command.DELIVER_SM_RESP]
    assert [p.status for p in answered] == [0]

    # smsbox sends the sms-service's answer back to the sender
    await _wait(smsc, lambda: len(smsc.submitted) == 1, "submit_sm of the reply")
    [reply] = smsc.submitted
    assert reply.destination_addr.removeprefix("+") == CUSTOMER
    assert reply.short_message == b"Terima kasih"


async def test_a_long_unicode_mo_in_two_deliver_sm_reaches_the_service_joined(
    setup: Setup,
) -> None:
    smsc, web = setup.smsc, setup.web
    text = "Saldo ✓ meter 14123456789: kredit Rp 20.000, token terakhir 1234-5678-9012-3456"
    assert 67 < len(text) <= 2 * 67
    for number, chunk in enumerate((text[:67], text[67:]), start=1):
        udh = bytes((5, 0, 3, 0x42, 2, number))
        await smsc.inject_mo(
            "+" + CUSTOMER,
            udh + chunk.encode("utf-16-be"),
            data_coding=DataCoding.UCS2,
            esm_class=0x40,  # UDHI
        )

    mo = await web.next("/mo")
    assert mo.query["coding"] == "2"
    assert mo.text() == text
    await _wait(smsc, lambda: smsc.pending_deliveries() == 0, "deliver_sm_resp for both parts")
