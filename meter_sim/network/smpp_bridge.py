"""`NetworkSmsc`: an SMPP 3.4 SMSC on the simulated network, for a gateway with carrier smpp.

An operator serving a few hundred SMS a second does not use GSM modems (each sends a few
a minute) but an SMSC the service binds to over SMPP. This puts the gateway's own SMSC
simulator (`gateway.smpp.SmscSimulator`: binds, windowing, re-delivery after a rebind) in
front of `SmsNetwork`, attached as the endpoint of the service's numbers (its short code):

- what the network delivers to those numbers (a phone's purchase SMS, a meter's answer)
  goes to the bound ESME as a mobile-originated deliver_sm: text as GSM-7 (data_coding 0,
  unpacked septets) or UCS-2 (8) as the sender encoded it, data as 8-bit (4), a part of a
  long message with its concatenation UDH (esm_class UDHI), as SMSCs pass them on;
- each submit_sm the ESME sends is decoded (data_coding, UDH) and submitted to the network
  toward its destination, binary as `data` and text as `text`, a part as a part; a message
  that does not fit one air-interface SMS (message_payload, or a long short_message) is
  split the way the gateway splits, as an SMSC would;
- when the network reports the outcome of every part of a submit_sm with a receipt asked
  for, its delivery receipt goes back to the ESME with the submit's message id.

Everything is event driven (the network's delivery tasks and status reports): no polling.

    async with SmsNetwork() as network, NetworkSmsc(network, "87000") as smsc:
        ...  # an ESME binds to 127.0.0.1:smsc.port as system_id "pintar", password "secret"
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from gateway.pdu import Concat, Encoding, gsm7
from gateway.smpp.message import (
    ESM_UDHI,
    SHORT_MESSAGE_MAX,
    Content,
    DataCoding,
    ReceiptState,
    decode_content,
    split,
)
from gateway.smpp.pdu import SmppError, Status, Tag
from gateway.smpp.simulator import SmscSimulator, Submitted
from gateway.transport import OutboundSms
from meter_sim.network.messages import NetworkSms, NetworkStatusReport
from meter_sim.network.smsc import STATUS_DELIVERED, STATUS_NOT_DELIVERED, SmsNetwork

TON_INTERNATIONAL = 1
#: registered_delivery (SMPP 3.4 §5.2.17, bits 0-1): 1 a receipt whatever the outcome,
#: 2 only on failure; 3 is reserved and, as the plain simulator does, read like 1.
RECEIPT_ON_FAILURE_ONLY = 2
#: short_message holds at most 254 octets; longer MO bodies travel in message_payload.
SM_LENGTH_MAX = 254


def receipt_state(status: int) -> ReceiptState:
    """The receipt state of a network status (TP-ST, GSM 03.40 §9.2.3.15)."""
    if status == STATUS_DELIVERED:
        return ReceiptState.DELIVERED
    if status == STATUS_NOT_DELIVERED:
        return ReceiptState.EXPIRED  # the network gave up retrying: validity period over
    if 0x40 <= status <= 0x7F:
        return ReceiptState.UNDELIVERABLE  # permanent errors (unknown recipient, ...)
    return ReceiptState.UNKNOWN


def mo_body(sms: NetworkSms) -> tuple[int, int, bytes]:
    """(data_coding, esm_class, short_message) of the deliver_sm for one network SMS."""
    if sms.data is not None:
        coding, body = DataCoding.OCTETS, bytes(sms.data)
    else:
        text = sms.text or ""
        # The sender's alphabet where it has one (a GSM-7 part of a UCS-2 message stays
        # UCS-2); GSM-7 unpacked, one septet an octet, as SMSCs send it over SMPP.
        if sms.encoding is not Encoding.UCS2 and gsm7.can_encode(text):
            coding, body = DataCoding.DEFAULT, bytes(gsm7.encode(text))
        else:
            coding, body = DataCoding.UCS2, text.encode("utf-16-be")
    if sms.concat is None:
        return coding, 0, body
    c = sms.concat
    if c.ref > 0xFF:  # 16-bit reference: IEI 08
        header = bytes((6, 0x08, 4)) + struct.pack(">H", c.ref) + bytes((c.total, c.seq))
    else:
        header = bytes((5, 0x00, 3, c.ref, c.total, c.seq))
    return coding, ESM_UDHI, header + body


@dataclass(slots=True)
class _Outcome:
    """The network's reports for the parts of one submit_sm, until every part has one."""

    submitted: Submitted
    submitted_at: datetime
    parts_left: int
    status: int = STATUS_DELIVERED  # the first failure of any part, else delivered


class NetworkSmsc:
    """`async with NetworkSmsc(network, short_code) as smsc:`, ESMEs bind to `smsc.port`.

    `numbers` (by default just the short code) are the service's addresses: the SMSC is
    their endpoint on the network, and a submit_sm must come from one of them (an empty
    source_addr means the first: the SMSC fills in the account's default)."""

    def __init__(
        self,
        network: SmsNetwork,
        short_code: str,
        *,
        numbers: Sequence[str] = (),
        system_id: str = "pintar",
        password: str = "secret",
    ) -> None:
        self.network = network
        self.numbers = [short_code, *(n for n in numbers if n != short_code)]
        self.smsc = SmscSimulator(system_id, password, short_code)
        self.smsc.forward = self._forward
        # The network passes report references through as they are: no TP-MR wrap needed.
        self._references = itertools.count(1)
        self._concat_refs = itertools.count(1)
        self._outcomes: dict[int, _Outcome] = {}
        self.forwarded = 0  # network SMS submitted for the ESME (parts counted)
        self.refused: list[tuple[Submitted, str]] = []  # submit_sm refused, and why

    @property
    def port(self) -> int:
        return self.smsc.port

    async def __aenter__(self) -> Self:
        await self.smsc.__aenter__()
        for number in self.numbers:
            self.network.attach(number, self)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for number in self.numbers:
            self.network.detach(number)
        await self.smsc.__aexit__(kind, error, tb)

    # -- ESME → network -----------------------------------------------------------------

    def _forward(self, submitted: Submitted) -> int:
        sender = self._address(submitted.source_addr, submitted.source_addr_ton)
        if not sender:
            sender = self.numbers[0]
        if sender not in self.numbers:
            return self._refuse(
                submitted, f"source_addr {sender!r} is not this service's", Status.ESME_RINVSRCADR
            )
        recipient = self._address(submitted.destination_addr, submitted.dest_addr_ton)
        if not recipient:
            return self._refuse(submitted, "empty destination_addr", Status.ESME_RINVDSTADR)
        try:
            parts = self._parts(submitted, recipient)
        except (SmppError, ValueError) as error:
            return self._refuse(submitted, str(error), Status.ESME_RINVMSGLEN)
        outcome = None
        if submitted.registered_delivery & 0x03:
            outcome = _Outcome(submitted, self.network.now(), len(parts))
        for content, encoding in parts:
            reference = None
            if outcome is not None:
                reference = next(self._references)
                self._outcomes[reference] = outcome
            self.network.submit(
                sender,
                recipient,
                text=content.text,
                data=content.data,
                concat=Concat(*content.concat) if content.concat else None,
                report_reference=reference,
                encoding=encoding,
            )
        self.forwarded += len(parts)
        return Status.ESME_ROK

    def _refuse(self, submitted: Submitted, why: str, status: int) -> int:
        self.refused.append((submitted, why))
        return status

    @staticmethod
    def _address(digits: str, ton: int) -> str:
        if ton == TON_INTERNATIONAL and digits.isdigit():
            return "+" + digits
        return digits

    def _parts(self, submitted: Submitted, recipient: str) -> list[tuple[Content, Encoding]]:
        """The air-interface SMS of one submit_sm, each with its alphabet."""
        payload = submitted.tlvs.get(Tag.MESSAGE_PAYLOAD)
        body = payload if payload is not None else submitted.short_message
        content = decode_content(submitted.data_coding, submitted.esm_class, body)
        coding = submitted.data_coding
        if coding & 0xF0 == 0xF0:  # data coding / message class group: the alphabet bits
            coding &= 0x0F
        if content.data is not None:
            coding = DataCoding.OCTETS
        if content.concat is not None or not _too_long(content, coding):
            return [(content, _encoding(coding, content))]
        # Too long for one SMS (message_payload): split as the gateway splits, each part
        # with its concatenation header, as an SMSC does for the air interface.
        whole = OutboundSms(submitted.message_id, recipient, text=content.text, data=content.data)
        return [
            (
                (part := decode_content(p.data_coding, p.esm_class, p.short_message)),
                _encoding(p.data_coding, part),
            )
            for p in split(whole, next(self._concat_refs) & 0xFF)
        ]

    # -- network → ESME -----------------------------------------------------------------

    async def receive_sms(self, sms: NetworkSms) -> bool:
        """A message for the service: queued as an MO deliver_sm (sent at once to a bound
        ESME, else after its bind; the SMSC stores it either way)."""
        coding, esm_class, body = mo_body(sms)
        tlvs: dict[int, bytes] = {}
        if len(body) > SM_LENGTH_MAX:
            body, tlvs = b"", {Tag.MESSAGE_PAYLOAD: body}
        await self.smsc.inject_mo(
            sms.sender,
            body,
            destination=sms.recipient,
            data_coding=coding,
            esm_class=esm_class,
            tlvs=tlvs,
        )
        return True

    async def receive_status_report(self, report: NetworkStatusReport) -> None:
        """The outcome of one part: once every part of its submit_sm has one, the receipt."""
        outcome = self._outcomes.pop(report.message_reference, None)
        if outcome is None:  # not ours (or its receipt already went)
            return
        outcome.parts_left -= 1
        if report.status != STATUS_DELIVERED and outcome.status == STATUS_DELIVERED:
            outcome.status = report.status
        if outcome.parts_left > 0:
            return
        state = receipt_state(outcome.status)
        mode = outcome.submitted.registered_delivery & 0x03
        if mode == RECEIPT_ON_FAILURE_ONLY and state is ReceiptState.DELIVERED:
            return
        await self.smsc.send_receipt(
            outcome.submitted,
            state,
            submitted_at=outcome.submitted_at,
            done_at=report.discharged_at,
        )


def _too_long(content: Content, coding: int) -> bool:
    if content.data is not None:
        return len(content.data) > SHORT_MESSAGE_MAX
    text = content.text or ""
    if coding in (DataCoding.DEFAULT, 0x01) and gsm7.can_encode(text):
        return len(gsm7.encode(text)) > 160
    return len(text.encode("utf-16-be")) > SHORT_MESSAGE_MAX


def _encoding(data_coding: int, content: Content) -> Encoding:
    """The alphabet the recipient's copy travels in (its TP-DCS)."""
    if content.data is not None:
        return Encoding.DATA8
    if data_coding == DataCoding.UCS2 or not gsm7.can_encode(content.text or ""):
        return Encoding.UCS2  # Latin-1 (3) and the like go on the air as UCS-2 if need be
    return Encoding.GSM7
