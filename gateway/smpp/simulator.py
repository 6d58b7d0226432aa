"""An SMSC simulator for tests and demos: an asyncio SMPP 3.4 server on 127.0.0.1.

It binds transceivers (checking system_id/password), answers submit_sm with a message id and
then sends a delivery receipt (deliver_sm, esm_class 0x04) when one was asked for, injects
mobile-originated deliver_sm, answers with scripted error statuses (throttling), and drops
connections on demand. Receipts and MO messages not answered by the ESME are kept and sent
again after its next bind, as a real SMSC does.

It can also stand in front of a network (meter_sim.network.smpp_bridge): `forward` is then
given each submit_sm before it is answered, and the receipts are the forwarder's to send
(`send_receipt`) once the network knows the outcome, instead of at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from gateway.smpp.message import (
    ESM_DELIVERY_RECEIPT,
    STATE_OF_RECEIPT,
    ReceiptState,
    receipt_text,
)
from gateway.smpp.pdu import Command, Pdu, SmppError, Status, Tag, UnknownCommand
from gateway.smpp.stream import read_pdu, write_pdu


@dataclass(frozen=True, slots=True)
class Submitted:
    message_id: str
    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    registered_delivery: int
    short_message: bytes
    tlvs: dict[int, bytes]
    source_addr_ton: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0


#: Takes an accepted submit_sm before it is answered; returns the command_status to answer
#: with (ESME_ROK, or an error that refuses the message: nothing is then recorded).
Forward = Callable[[Submitted], int]


@dataclass(slots=True)
class _Client:
    writer: asyncio.StreamWriter
    bound: bool = False
    transmits: bool = False  # bound as transmitter or transceiver: may submit
    receives: bool = False  # bound as receiver or transceiver: gets deliver_sm
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    unanswered: dict[int, Pdu] = field(default_factory=dict)  # our deliver_sm by sequence


class SmscSimulator:
    """`async with SmscSimulator(system_id, password) as smsc:` then connect to `smsc.port`.

    `short_code` is the number MO messages are addressed to unless `inject_mo` says
    otherwise: a real SMSC always fills destination_addr with what the phone texted, and
    ESMEs rely on it (Kannel discards an MO with an empty one, "Malformed destination_addr").
    """

    def __init__(
        self, system_id: str = "pintar", password: str = "secret", short_code: str = "87000"
    ) -> None:
        self.system_id = system_id
        self.password = password
        self.short_code = short_code
        self.port = 0
        self.submitted: list[Submitted] = []
        self.received: list[Pdu] = []  # every PDU from ESMEs, in order
        #: command_status to answer the next submit_sm with, one per submit, before normal ones
        self.script: deque[int] = deque()
        #: drop the connection on the Nth submit_sm from now (1 = the next), without answering
        self.drop_on_submit: int | None = None
        self.receipt_state = ReceiptState.DELIVERED
        #: keep delivery receipts back until `release_receipts()` (a slow handset)
        self.hold_receipts = False
        self._held_receipts: list[Pdu] = []
        #: while this event is unset, submit_sm are taken but answered only once it is set
        self.hold: asyncio.Event | None = None
        #: set: submit_sm go to this forwarder, which also sends their receipts (send_receipt)
        self.forward: Forward | None = None
        self.outstanding = 0  # submit_sm received and not yet answered
        self.max_outstanding = 0
        self.binds = 0
        self._ids = itertools.count(0x1000)
        self._clients: list[_Client] = []
        self._outbox: deque[Pdu] = deque()  # deliver_sm waiting for a bound ESME
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_connections()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- control --------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Closes every connection abruptly (a network failure)."""
        for client in self._clients:
            client.writer.transport.abort()

    async def inject_mo(
        self,
        sender: str,
        short_message: bytes,
        *,
        destination: str | None = None,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: dict[int, bytes] | None = None,
    ) -> None:
        """Queues a mobile-originated deliver_sm (sent to the bound ESME now or on bind),
        addressed to `destination`, by default the simulator's short code."""
        await self._queue_deliver(
            {
                "source_addr_ton": 1 if sender.startswith("+") else 0,
                "source_addr_npi": 1,
                "source_addr": sender.removeprefix("+"),
                "destination_addr": self.short_code if destination is None else destination,
                "esm_class": esm_class,
                "data_coding": data_coding,
                "short_message": short_message,
            },
            tlvs or {},
        )

    async def send_raw(self, frame: bytes) -> None:
        """Writes `frame` as it is to every bound ESME (a PDU this simulator does not
        otherwise send: alert_notification, an unknown command, junk)."""
        for client in self._clients:
            if client.bound:
                client.writer.write(frame)
                await client.writer.drain()

    async def wait_until(self, predicate: object) -> None:
        """Waits until `predicate()` is true; re-checked after every PDU the SMSC handles."""
        assert callable(predicate)
        async with self._changed:
            await self._changed.wait_for(predicate)

    def pending_deliveries(self) -> int:
        """deliver_sm not yet answered by an ESME (queued or in flight)."""
        return len(self._outbox) + sum(len(c.unanswered) for c in self._clients)

    # -- serving --------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        client = _Client(writer)
        self._clients.append(client)
        try:
            while True:
                try:
                    pdu = await read_pdu(reader)
                except UnknownCommand as unknown:  # answered as SMPP 3.4 says, link kept
                    if not unknown.is_response:
                        await write_pdu(
                            writer,
                            Pdu(Command.GENERIC_NACK, unknown.sequence, Status.ESME_RINVCMDID),
                        )
                    continue
                self.received.append(pdu)
                await self._handle(client, pdu)
                async with self._changed:
                    self._changed.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError, SmppError, _Dropped):
            pass
        except asyncio.CancelledError:
            # Closing: end the handler quietly. Re-raised, asyncio's server callback would
            # call exception() on the cancelled task and log a traceback at every shutdown.
            pass
        finally:
            self._clients.remove(client)
            # what the ESME never answered goes back in line for its next bind
            self._outbox.extendleft(reversed(list(client.unanswered.values())))
            writer.transport.abort()
            self._tasks.discard(task)
            async with self._changed:
                self._changed.notify_all()

    async def _handle(self, client: _Client, pdu: Pdu) -> None:
        if pdu.command in _BINDS:
            answer, transmits, receives = _BINDS[pdu.command]
            ok = pdu.text("system_id") == self.system_id and pdu.text("password") == self.password
            if client.bound:
                status = Status.ESME_RALYBND
            else:
                status = Status.ESME_ROK if ok else Status.ESME_RBINDFAIL
            params = {"system_id": "pintar-smsc"} if status == Status.ESME_ROK else {}
            await write_pdu(client.writer, Pdu(answer, pdu.sequence, status, params))
            if status == Status.ESME_ROK:
                self.binds += 1
                client.bound, client.transmits, client.receives = True, transmits, receives
                if receives:
                    await self._flush(client)
        elif not client.bound or (pdu.command is Command.SUBMIT_SM and not client.transmits):
            await write_pdu(
                client.writer, Pdu(Command.GENERIC_NACK, pdu.sequence, Status.ESME_RINVBNDSTS)
            )
        elif pdu.command is Command.QUERY_SM:
            await self._query(client, pdu)
        elif pdu.command is Command.SUBMIT_SM:
            self.outstanding += 1
            self.max_outstanding = max(self.max_outstanding, self.outstanding)
            if self.hold is not None and not self.hold.is_set():
                task = asyncio.create_task(self._held_submit(self.hold, client, pdu))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                await self._answer_submit(client, pdu)
        elif pdu.command is Command.DELIVER_SM_RESP:
            client.unanswered.pop(pdu.sequence, None)
        elif pdu.command is Command.ENQUIRE_LINK:
            await write_pdu(client.writer, Pdu(Command.ENQUIRE_LINK_RESP, pdu.sequence))
        elif pdu.command is Command.UNBIND:
            await write_pdu(client.writer, Pdu(Command.UNBIND_RESP, pdu.sequence))
            raise _Dropped
        elif not pdu.command.is_response:
            await write_pdu(
                client.writer, Pdu(Command.GENERIC_NACK, pdu.sequence, Status.ESME_RINVCMDID)
            )

    async def _query(self, client: _Client, pdu: Pdu) -> None:
        """query_sm: the state of a message this SMSC took (by its id), else ESME_RINVMSGID."""
        message_id = pdu.text("message_id")
        if not any(s.message_id == message_id for s in self.submitted):
            await write_pdu(
                client.writer, Pdu(Command.QUERY_SM_RESP, pdu.sequence, Status.ESME_RINVMSGID)
            )
            return
        final = self.receipt_state is not ReceiptState.ENROUTE
        await write_pdu(
            client.writer,
            Pdu(
                Command.QUERY_SM_RESP,
                pdu.sequence,
                params={
                    "message_id": message_id,
                    "final_date": _smpp_time(datetime.now(UTC)) if final else "",
                    "message_state": STATE_OF_RECEIPT[self.receipt_state],
                    "error_code": 0,
                },
            ),
        )

    async def _held_submit(self, hold: asyncio.Event, client: _Client, pdu: Pdu) -> None:
        await hold.wait()
        with contextlib.suppress(ConnectionError, _Dropped):
            await self._answer_submit(client, pdu)
        async with self._changed:
            self._changed.notify_all()

    async def _answer_submit(self, client: _Client, pdu: Pdu) -> None:
        try:
            await self._submit(client, pdu)
        finally:
            self.outstanding -= 1

    async def _submit(self, client: _Client, pdu: Pdu) -> None:
        if self.drop_on_submit is not None:
            self.drop_on_submit -= 1
            if self.drop_on_submit <= 0:
                self.drop_on_submit = None
                raise _Dropped
        if self.script:
            status = self.script.popleft()
            if status != Status.ESME_ROK:
                await write_pdu(client.writer, Pdu(Command.SUBMIT_SM_RESP, pdu.sequence, status))
                return
        message_id = f"{next(self._ids):08x}"
        submitted = Submitted(
            message_id,
            pdu.text("source_addr"),
            pdu.text("destination_addr"),
            pdu.number("esm_class"),
            pdu.number("data_coding"),
            pdu.number("registered_delivery"),
            pdu.octets("short_message"),
            dict(pdu.tlvs),
            pdu.number("source_addr_ton"),
            pdu.number("dest_addr_ton"),
            pdu.number("dest_addr_npi"),
        )
        if self.forward is not None:
            # Before the answer: a message the forwarder cannot take is refused, not lost.
            status = self.forward(submitted)
            if status != Status.ESME_ROK:
                await write_pdu(client.writer, Pdu(Command.SUBMIT_SM_RESP, pdu.sequence, status))
                return
        self.submitted.append(submitted)
        await write_pdu(
            client.writer,
            Pdu(Command.SUBMIT_SM_RESP, pdu.sequence, params={"message_id": message_id}),
        )
        if self.forward is None and submitted.registered_delivery & 0x03:
            now = datetime.now(UTC)
            await self.send_receipt(submitted, self.receipt_state, submitted_at=now, done_at=now)

    async def send_receipt(
        self,
        submitted: Submitted,
        state: ReceiptState,
        *,
        submitted_at: datetime,
        done_at: datetime,
    ) -> None:
        """Queues the delivery receipt (deliver_sm, esm_class 0x04) of a message this SMSC
        took, from its recipient back to its sender; kept back while `hold_receipts` is set."""
        await (self._hold_receipt if self.hold_receipts else self._queue_deliver)(
            {
                "source_addr_ton": submitted.dest_addr_ton,
                "source_addr_npi": submitted.dest_addr_npi,
                "source_addr": submitted.destination_addr,
                "destination_addr": submitted.source_addr,
                "esm_class": ESM_DELIVERY_RECEIPT,
                "short_message": receipt_text(
                    submitted.message_id, state, submitted_at, done_at
                ).encode(),
            },
            {
                Tag.RECEIPTED_MESSAGE_ID: submitted.message_id.encode() + b"\x00",
                Tag.MESSAGE_STATE: bytes((STATE_OF_RECEIPT[state],)),
            },
        )

    async def _hold_receipt(
        self, params: dict[str, int | str | bytes], tlvs: dict[int, bytes]
    ) -> None:
        self._held_receipts.append(Pdu(Command.DELIVER_SM, 0, params=params, tlvs=tlvs))

    async def release_receipts(self) -> None:
        """Sends the receipts kept back while `hold_receipts` was set."""
        held, self._held_receipts = self._held_receipts, []
        for pdu in held:
            await self._queue_deliver(dict(pdu.params), dict(pdu.tlvs))

    async def _queue_deliver(
        self, params: dict[str, int | str | bytes], tlvs: dict[int, bytes]
    ) -> None:
        self._outbox.append(Pdu(Command.DELIVER_SM, 0, params=params, tlvs=tlvs))
        for client in self._clients:
            if client.bound and client.receives:
                await self._flush(client)
                break

    async def _flush(self, client: _Client) -> None:
        while self._outbox:
            queued = self._outbox.popleft()
            pdu = Pdu(queued.command, next(client.sequence), params=queued.params, tlvs=queued.tlvs)
            client.unanswered[pdu.sequence] = pdu
            with contextlib.suppress(ConnectionError):
                await write_pdu(client.writer, pdu)


class _Dropped(Exception):
    """The simulator closes this connection."""


#: Each bind: its answer, and whether the session may submit / gets deliver_sm.
_BINDS = {
    Command.BIND_TRANSCEIVER: (Command.BIND_TRANSCEIVER_RESP, True, True),
    Command.BIND_TRANSMITTER: (Command.BIND_TRANSMITTER_RESP, True, False),
    Command.BIND_RECEIVER: (Command.BIND_RECEIVER_RESP, False, True),
}


def _smpp_time(moment: datetime) -> str:
    """SMPP 3.4 §7.1.1 absolute time, UTC: YYMMDDhhmmsstnnp."""
    return moment.astimezone(UTC).strftime("%y%m%d%H%M%S") + "000+"
