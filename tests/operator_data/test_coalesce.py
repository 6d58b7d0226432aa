"""`Coalescer`: what is submitted while a batch is written goes into the next batch; a
failed batch is written one by one, so only the bad item's caller fails."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from operator_data.hub.coalesce import Coalescer


class Writer:
    """Doubles numbers; refuses 13; the first batch waits for `gate` so others queue."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        await self.gate.wait()
        if 13 in items:
            raise ValueError("13 refused")
        return [2 * item for item in items]


async def test_items_submitted_meanwhile_are_written_together_in_order() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.write, limit=3, name="test")
    first = asyncio.create_task(coalescer.submit(1))
    await writer.entered.wait()  # batch [1] is being written
    rest = [asyncio.create_task(coalescer.submit(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    assert coalescer.queued == 5
    writer.gate.set()
    assert await first == 2
    assert [await task for task in rest] == [4, 6, 8, 10, 12]
    assert writer.batches == [[1], [2, 3, 4], [5, 6]]  # bounded by the limit


async def test_a_failed_batch_fails_only_the_bad_items_caller() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.write, limit=10, name="test")
    first = asyncio.create_task(coalescer.submit(1))
    await writer.entered.wait()
    others = [asyncio.create_task(coalescer.submit(n)) for n in (12, 13, 14)]
    await asyncio.sleep(0)
    writer.gate.set()
    assert await first == 2
    assert await others[0] == 24 and await others[2] == 28
    with pytest.raises(ValueError, match="13 refused"):
        await others[1]
    assert writer.batches == [[1], [12, 13, 14], [12], [13], [14]]


async def test_a_write_answering_the_wrong_number_of_results_fails_its_batch() -> None:
    async def short(items: Sequence[int]) -> list[int]:
        return list(items)[:-1]

    coalescer = Coalescer(short, limit=10, name="short")
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await coalescer.submit(1)


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    writer = Writer()
    coalescer = Coalescer(writer.write, limit=10, name="test")
    first = asyncio.create_task(coalescer.submit(1))
    await writer.entered.wait()
    gone = asyncio.create_task(coalescer.submit(2))
    kept = asyncio.create_task(coalescer.submit(3))
    await asyncio.sleep(0)
    gone.cancel()
    writer.gate.set()
    assert await first == 2 and await kept == 6
    assert gone.cancelled()
    assert writer.batches == [[1], [2, 3]]  # its item was written all the same


def test_a_batch_holds_at_least_one_item() -> None:
    async def write(items: Sequence[int]) -> list[int]:
        return list(items)

    with pytest.raises(ValueError):
        Coalescer(write, limit=0, name="none")
