"""SIM message storage: a fixed number of slots holding PDUs, as `AT+CMGR/CMGL/CMGD` see them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Stat(IntEnum):
    """`<stat>` of PDU mode (TS 27.005 3.1)."""

    REC_UNREAD = 0
    REC_READ = 1
    STO_UNSENT = 2
    STO_SENT = 3
    ALL = 4


@dataclass(slots=True)
class StoredMessage:
    stat: Stat
    pdu_hex: str  # with its SMSC part
    tpdu_length: int


class SimStorage:
    def __init__(self, slots: int = 30) -> None:
        self.slots = slots
        self._messages: dict[int, StoredMessage] = {}

    @property
    def used(self) -> int:
        return len(self._messages)

    @property
    def full(self) -> bool:
        return self.used >= self.slots

    def store(self, message: StoredMessage) -> int | None:
        """Index (1-based) of the slot used, None when full."""
        for index in range(1, self.slots + 1):
            if index not in self._messages:
                self._messages[index] = message
                return index
        return None

    def valid(self, index: int) -> bool:
        return 1 <= index <= self.slots

    def get(self, index: int) -> StoredMessage | None:
        return self._messages.get(index)

    def delete(self, index: int) -> None:
        self._messages.pop(index, None)

    def delete_where(self, stats: set[Stat]) -> None:
        for index in [i for i, m in self._messages.items() if m.stat in stats]:
            del self._messages[index]

    def listing(self, stat: Stat) -> list[tuple[int, StoredMessage]]:
        return sorted(
            (i, m) for i, m in self._messages.items() if stat is Stat.ALL or m.stat is stat
        )
