"""Reassembly of concatenated SMS: parts in any order, duplicates ignored, incomplete on timeout.

Parts are grouped by (sender, concatenation reference, total). A group that is still missing
parts `timeout` seconds after its first part arrived is given up: `expire()` returns it with
the parts that did arrive, flagged incomplete, so nothing received is dropped. The clock is
injected so tests (and a restart-aware owner) control time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.at.events import InboundSms
from gateway.pdu import Deliver

log = logging.getLogger(__name__)

GroupKey = tuple[str, int, int]  # sender, reference, total


@dataclass(frozen=True, slots=True)
class AssembledMessage:
    sender: str
    reference: int | None  # None for a single-part message
    total: int
    parts: tuple[InboundSms, ...]  # those that arrived, in sequence order
    missing: tuple[int, ...]  # sequence numbers that never arrived

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def delivers(self) -> tuple[Deliver, ...]:
        return tuple(p.decoded for p in self.parts if isinstance(p.decoded, Deliver))

    @property
    def text(self) -> str | None:
        """The parts' text joined (an incomplete message has gaps where parts are missing)."""
        texts = [d.text for d in self.delivers]
        return None if any(t is None for t in texts) else "".join(t or "" for t in texts)

    @property
    def data(self) -> bytes | None:
        chunks = [d.data for d in self.delivers]
        return None if any(c is None for c in chunks) else b"".join(c or b"" for c in chunks)


@dataclass(slots=True)
class _Group:
    started: float
    parts: dict[int, InboundSms] = field(default_factory=dict)


class Reassembler:
    def __init__(self, timeout: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._clock = clock
        self._groups: dict[GroupKey, _Group] = {}
        # Groups finished recently: a late duplicate of one of their parts is ignored instead
        # of starting a new group that would later expire as a bogus incomplete message.
        self._finished: dict[GroupKey, float] = {}

    @property
    def pending(self) -> int:
        return len(self._groups)

    def add(self, sms: InboundSms) -> AssembledMessage | None:
        """Add one received SMS; returns the whole message once every part is there."""
        deliver = sms.decoded
        if not isinstance(deliver, Deliver):
            raise ValueError(f"only SMS-DELIVER parts are reassembled, not {type(deliver)}")
        concat = deliver.concat
        if concat is None or concat.total <= 1:
            return AssembledMessage(deliver.sender, None, 1, (sms,), ())
        now = self._clock()
        self._forget_finished(now)
        key = (deliver.sender, concat.ref, concat.total)
        if not 1 <= concat.seq <= concat.total:
            log.warning(
                "part %d of %d from %s (ref %d) is out of range; kept alone",
                concat.seq,
                concat.total,
                deliver.sender,
                concat.ref,
            )
            return AssembledMessage(deliver.sender, concat.ref, concat.total, (sms,), ())
        if key in self._finished:
            return None
        group = self._groups.setdefault(key, _Group(now))
        group.parts.setdefault(concat.seq, sms)  # a duplicate keeps the first copy
        if len(group.parts) < concat.total:
            return None
        del self._groups[key]
        self._finished[key] = now
        return self._message(key, group)

    def expire(self) -> list[AssembledMessage]:
        """Give up on groups older than the timeout; returns them, flagged incomplete."""
        now = self._clock()
        self._forget_finished(now)
        expired = [key for key, g in self._groups.items() if now - g.started >= self._timeout]
        messages = []
        for key in expired:
            messages.append(self._message(key, self._groups.pop(key)))
            self._finished[key] = now
        return messages

    def next_deadline(self) -> float | None:
        """Clock value at which the oldest open group expires (None when none is open)."""
        if not self._groups:
            return None
        return min(g.started for g in self._groups.values()) + self._timeout

    def _forget_finished(self, now: float) -> None:
        for key, at in list(self._finished.items()):
            if now - at >= self._timeout:
                del self._finished[key]

    @staticmethod
    def _message(key: GroupKey, group: _Group) -> AssembledMessage:
        sender, reference, total = key
        parts = tuple(group.parts[seq] for seq in sorted(group.parts))
        missing = tuple(seq for seq in range(1, total + 1) if seq not in group.parts)
        return AssembledMessage(sender, reference, total, parts, missing)
