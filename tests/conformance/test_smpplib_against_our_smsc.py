"""An independent SMPP client (`smpplib`, PyPI) against our SMSC simulator, bound the way
Kannel binds by default: a transmitter for submits and a receiver for what the SMSC
delivers. It must bind both, take a submit, answer query_sm, deliver the receipt on the
receiver, and unbind cleanly."""

from __future__ import annotations

import asyncio

import pytest
import smpplib.client
import smpplib.consts
import smpplib.smpp

from gateway.smpp import SmscSimulator
from gateway.smpp.pdu import Command

pytestmark = pytest.mark.timeout(30)


class Peer:
    """One smpplib connection, driven in a thread of its own (smpplib is blocking)."""

    def __init__(self, port: int, bind: str) -> None:
        self.client = smpplib.client.Client(
            "127.0.0.1", port, timeout=10, allow_unknown_opt_params=True
        )
        self.bind = bind
        self.sent: list[str] = []  # SMSC message ids of our submits
        self.received: list[bytes] = []  # short_message of every deliver_sm
        self.queried: list[tuple[str, int]] = []  # (message_id, message_state)
        self.client.set_message_sent_handler(lambda pdu: self.sent.append(pdu.message_id.decode()))
        self.client.set_message_received_handler(
            lambda pdu: self.received.append(bytes(pdu.short_message))
        )
        self.client.set_query_resp_handler(
            lambda pdu: self.queried.append((pdu.message_id.decode(), int(pdu.message_state)))
        )

    def open(self) -> None:
        self.client.connect()
        getattr(self.client, f"bind_{self.bind}")(system_id="pintar", password="secret")

    def read(self, count: int = 1) -> None:
        for _ in range(count):
            self.client.read_once()

    def close(self) -> None:
        self.client.unbind()
        self.client.disconnect()


async def test_kannel_style_transmitter_and_receiver_bind_submit_query_and_get_the_receipt() -> (
    None
):
    async with SmscSimulator() as smsc:
        tx, rx = Peer(smsc.port, "transmitter"), Peer(smsc.port, "receiver")
        await asyncio.to_thread(tx.open)
        await asyncio.to_thread(rx.open)
        assert smsc.binds == 2

        def submit() -> None:
            tx.client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_INTL,
                source_addr="87000",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                destination_addr="6281100000001",
                short_message=b"Token 1234-5678",
                registered_delivery=True,
            )
            tx.read()  # submit_sm_resp

        await asyncio.to_thread(submit)
        [message_id] = tx.sent
        assert [s.message_id for s in smsc.submitted] == [message_id]

        # query_sm goes over a transceiver: smpplib 2.2 allows it only when bound as
        # receiver or transceiver (its COMMAND_STATES), though SMPP 3.4 §4.8 has ESMEs
        # bound as transmitter issue it; Kannel can bind either way.
        trx = Peer(smsc.port, "transceiver")
        await asyncio.to_thread(trx.open)

        def query() -> None:
            trx.client.query_message(
                message_id=message_id,
                source_addr_ton=smpplib.consts.SMPP_TON_INTL,
                source_addr="87000",
            )
            trx.read()  # query_sm_resp

        await asyncio.to_thread(query)
        assert trx.queried == [(message_id, smpplib.consts.SMPP_MESSAGE_STATE_DELIVERED)]
        await asyncio.to_thread(trx.close)

        await asyncio.to_thread(rx.read)  # the receipt, on the receiver only
        [receipt] = rx.received
        assert f"id:{message_id}".encode() in receipt and b"stat:DELIVRD" in receipt
        assert tx.received == []

        await asyncio.to_thread(tx.close)
        await asyncio.to_thread(rx.close)
        assert [p.command for p in smsc.received].count(Command.UNBIND) == 3


async def test_a_receiver_may_not_submit() -> None:
    """smpplib refuses that itself, so its PDU is written past its state check: the SMSC
    answers generic_nack ESME_RINVBNDSTS and keeps the session."""
    async with SmscSimulator() as smsc:
        rx = Peer(smsc.port, "receiver")
        await asyncio.to_thread(rx.open)

        def submit() -> smpplib.smpp.PDU:
            pdu = smpplib.smpp.make_pdu(
                "submit_sm", client=rx.client, destination_addr="6281100000001", short_message=b"x"
            )
            rx.client._socket.sendall(pdu.generate())
            return rx.client.read_pdu()

        answer = await asyncio.to_thread(submit)
        assert answer.command == "generic_nack"
        assert int(answer.status) == smpplib.consts.SMPP_ESME_RINVBNDSTS
        assert smsc.submitted == []
        await asyncio.to_thread(rx.close)
