"""Reassembly of concatenated SMS with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.at.events import InboundSms
from gateway.at.multipart import Reassembler
from gateway.pdu import Concat, Deliver, Encoding

WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def part(seq: int, total: int = 3, ref: int = 7, sender: str = "+6281234567890") -> InboundSms:
    deliver = Deliver(sender, Encoding.GSM7, f"<{seq}>", None, Concat(ref, total, seq), WHEN, None)
    return InboundSms("m1", f"PDU{ref}-{seq}", deliver, None, WHEN, "SM", seq, 0)


def test_single_part_passes_straight_through() -> None:
    sms = InboundSms(
        "m1", "X", Deliver("+62811", Encoding.GSM7, "hi", None, None, WHEN, None), None, WHEN
    )
    message = Reassembler(60).add(sms)
    assert message is not None and message.complete and message.text == "hi"


def test_out_of_order_with_last_part_first() -> None:
    reassembler = Reassembler(60, clock=Clock())
    assert reassembler.add(part(3)) is None
    assert reassembler.add(part(1)) is None
    message = reassembler.add(part(2))
    assert message is not None and message.complete
    assert message.text == "<1><2><3>"
    assert (message.sender, message.reference, message.total) == ("+6281234567890", 7, 3)
    assert reassembler.pending == 0


def test_duplicates_are_ignored_even_after_completion() -> None:
    clock = Clock()
    reassembler = Reassembler(60, clock=clock)
    assert reassembler.add(part(1)) is None
    assert reassembler.add(part(1)) is None
    assert reassembler.add(part(2)) is None
    message = reassembler.add(part(3))
    assert message is not None and len(message.parts) == 3
    assert reassembler.add(part(2)) is None  # a late duplicate opens no new group
    clock.now = 120
    assert reassembler.expire() == []


def test_groups_are_keyed_by_sender_reference_and_total() -> None:
    reassembler = Reassembler(60, clock=Clock())
    assert reassembler.add(part(1, ref=1)) is None
    assert reassembler.add(part(2, ref=2)) is None
    assert reassembler.add(part(1, sender="+6289999999999", ref=1)) is None
    assert reassembler.add(part(1, total=2, ref=1)) is None
    assert reassembler.pending == 4


def test_timeout_keeps_the_parts_and_flags_incomplete() -> None:
    clock = Clock()
    reassembler = Reassembler(60, clock=clock)
    reassembler.add(part(3))
    clock.now = 10
    reassembler.add(part(1))
    assert reassembler.next_deadline() == 60
    clock.now = 59.9
    assert reassembler.expire() == []
    clock.now = 60
    (message,) = reassembler.expire()
    assert not message.complete
    assert message.missing == (2,)
    assert [p.pdu for p in message.parts] == ["PDU7-1", "PDU7-3"]
    assert message.text == "<1><3>"
    assert reassembler.pending == 0 and reassembler.next_deadline() is None


@settings(max_examples=100)
@given(st.permutations([1, 2, 3, 4]), st.lists(st.integers(1, 4), max_size=4))
def test_any_order_any_duplicates_one_complete_message(
    order: list[int], duplicates: list[int]
) -> None:
    reassembler = Reassembler(60, clock=Clock())
    results = [reassembler.add(part(seq, total=4)) for seq in [*duplicates, *order]]
    done = [r for r in results if r is not None]
    assert len(done) == 1
    assert done[0].text == "<1><2><3><4>"
