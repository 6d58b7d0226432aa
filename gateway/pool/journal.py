"""What the pool writes down around each store-then-send, so no SMS is sent twice.

A part goes out in three steps: `AT+CMGW` stores it on the modem (STO UNSENT), `AT+CMSS`
sends it (the modem marks it STO SENT), `AT+CMGD` frees the slot. The journal holds, durably,
where each part was stored before it is sent and its reference once it was sent. After a
crash or a hang between the steps, the stored copy's status answers what the driver could
not otherwise know — did the modem send it? — and a part journalled as sent is never sent
again, even when the send result never reached anyone.

The gateway's spool implements this (its rows go in the same transaction as the message's
outcome); a pool without a journal sends with `AT+CMGS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class JournalledPart:
    message_id: str
    part: int  # 0-based position in the message
    modem: str
    slot: int  # the storage index AT+CMGW answered
    pdu: str  # the hex written (SMSC part included)
    sent: bool
    reference: int | None  # once sent; None when the modem's answer was lost


class SendJournal(Protocol):
    async def part_stored(
        self, message_id: str, part: int, modem: str, slot: int, pdu: str
    ) -> None:
        """The part is on `modem` at `slot`, not known to be sent: written before AT+CMSS."""
        ...

    async def part_sent(
        self, message_id: str, part: int, reference: int | None, *, modem: str, slot: int
    ) -> None:
        """The part stored on `modem` at `slot` went out. Matched on modem and slot too, so
        that a modem settling late cannot touch the row of a part sent again elsewhere."""
        ...

    async def part_dropped(self, message_id: str, part: int, *, modem: str, slot: int) -> None:
        """The stored copy was not sent (or is gone): the part is to be sent again."""
        ...

    async def parts_of(self, message_id: str) -> dict[int, JournalledPart]: ...

    async def stored_on(self, modem: str) -> list[JournalledPart]:
        """Parts stored on `modem` whose sending is not known to have happened."""
        ...


def same_submit(stored: str, written: str, *, length: int | None = None) -> bool:
    """Whether the PDU a modem lists is the one written: compared without the SMSC part
    (a modem may fill in its own) and the message reference (a modem may set it when it
    sends), and only over the `length` octets its listing header gives (a SIM record may
    come padded with FF)."""
    a, b = _tpdu(stored), _tpdu(written)
    if a is not None and length is not None:
        a = a[: 2 * length]
    return a is not None and b is not None and len(a) == len(b) and a[:2] + a[4:] == b[:2] + b[4:]


def _tpdu(pdu: str) -> str | None:
    text = pdu.strip().upper()
    try:
        smsc_octets = int(text[:2], 16)
    except ValueError:
        return None
    tpdu = text[2 + 2 * smsc_octets :]
    return tpdu if len(tpdu) >= 4 else None
