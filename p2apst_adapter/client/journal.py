"""What the client needs from durable storage; the hub implements these on its own store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from p2apst_adapter.model import PurchaseRequest, PurchaseResult, PurchaseState, TokenReport


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """A purchase as recorded before its 2200 was written.

    `stan` and `sent_at` are those of the 2200 (bits 11 and 12), so every advice can name
    the original in bit 56 even after a restart.
    """

    request: PurchaseRequest
    stan: str
    sent_at: datetime
    result: PurchaseResult | None = None

    @property
    def key(self) -> str:
        return self.request.switcher_reference

    @property
    def state(self) -> PurchaseState:
        return PurchaseState.PENDING if self.result is None else self.result.state


class PurchaseJournal(Protocol):
    async def begin(self, entry: JournalEntry) -> JournalEntry:
        """Records `entry` as PENDING unless its key exists; returns what is stored.

        Must be durable when it returns: the 2200 goes out right after.
        """
        ...

    async def complete(self, key: str, result: PurchaseResult) -> None:
        """Records the final answer; a completed entry never changes again."""
        ...

    async def advising(self, key: str) -> None:
        """The 2200 of `key` went unanswered (or was never sent by this process): its
        outcome is now asked for with advices. Informational; the entry stays PENDING."""
        ...

    async def get(self, key: str) -> JournalEntry | None: ...

    async def pending(self) -> Sequence[JournalEntry]:
        """Every entry without a result, oldest first."""
        ...


class ReportOutbox(Protocol):
    async def add(self, report: TokenReport) -> bool:
        """Stores the report unless its `report_id` exists; True if it was new."""
        ...

    async def unacknowledged(self) -> Sequence[TokenReport]:
        """Reports not yet acknowledged by P2APST, oldest first."""
        ...

    async def acknowledge(self, report_id: str) -> None: ...

    async def acknowledge_many(self, report_ids: Sequence[str]) -> None:
        """Acknowledges several at once (one write, where the storage allows)."""
        ...
