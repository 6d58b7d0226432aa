"""The spool's group commit: concurrent writes share transactions, each caller still waits
for its own commit and gets its own answer, and nothing is left waiting at close.

Writes gathered in one go are all queued before the writer runs (asyncio runs ready tasks
in order, the writer's wake-up comes after them), so they form one batch.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.group_commit import BatchFailed, WriterClosed
from gateway.spool import OutboundState, Spool
from gateway.spooled import SpooledGateway
from gateway.transport import (
    DeliveryReport,
    InboundSms,
    OutboundSms,
    SendResult,
    SendStatus,
    TransportEvent,
)
from tests.gateway.loopback import LoopbackCarrier

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
METER = "+6281234567890"


def sms(name: str) -> OutboundSms:
    return OutboundSms(name, METER, text=f"Token {name}")


def inbound(n: int) -> InboundSms:
    return InboundSms(f"in-{n}", METER, NOW, data=bytes([n]), modem="m1")


class BatchingLoopback(LoopbackCarrier):
    """Hands over every ready event at once (as the SMPP link and the modem pool do)."""

    def __init__(self) -> None:
        super().__init__(report_sends=False)
        self.batches: list[list[str]] = []

    async def carrier_event_batches(self) -> AsyncIterator[list[TransportEvent]]:
        while True:
            ready = [await self._events.get()]
            while not self._events.empty():
                ready.append(self._events.get_nowait())
            self.batches.append([event.event_id for event in ready])
            yield ready


async def test_concurrent_sends_are_committed_in_fewer_transactions_than_sends(
    tmp_path: Path,
) -> None:
    carrier = LoopbackCarrier(report_sends=False)
    async with (
        Spool(tmp_path / "s.db") as spool,
        SpooledGateway("gw1", carrier, spool) as gateway,
    ):
        before = spool.commits
        messages = [sms(f"msg-{n}") for n in range(50)]
        assert await asyncio.gather(*(gateway.send(m) for m in messages)) == [True] * 50
        assert spool.commits - before < len(messages)
        for message in messages:  # every one is in the spool, on its way to the carrier
            state = await spool.outbound_state(message.message_id)
            assert state is not None and state.state is OutboundState.SENDING
        assert [m.message_id for m in carrier.submitted] == [m.message_id for m in messages]


async def test_every_kind_of_write_shares_one_transaction(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        assert await spool.accept(sms("queued"), NOW)
        assert await spool.accept(sms("done"), NOW)
        await spool.part_stored("done", 1, "m1", 4, "00")
        await spool.record_event(inbound(1), NOW)
        before = spool.commits
        result = SendResult("sr-done", "done", SendStatus.SENT, NOW, (7,), METER, modem="m1")
        await asyncio.gather(
            spool.accept(sms("new"), NOW),
            spool.mark("queued", OutboundState.SENDING, NOW, count_attempt=True),
            spool.record_event(inbound(2), NOW),
            spool.record_outcome(
                result, "done", OutboundState.SENT, NOW, modem="m1", references=(7,),
                recipient=METER,
            ),
            spool.ack_many(["in-1"]),
            spool.part_stored("queued", 0, "m1", 3, "0011"),
            spool.part_sent("done", 1, 9, modem="m1", slot=4),
            spool.record_sent_parts("queued", "m2", [200], METER, NOW),
        )  # fmt: skip
        assert spool.commits - before == 1
        queued = await spool.outbound_state("queued")
        assert queued is not None and queued.state is OutboundState.SENDING
        assert queued.attempts == 1
        done = await spool.outbound_state("done")
        assert done is not None and done.state is OutboundState.SENT
        assert await spool.outbound_state("new") is not None
        assert [e.event_id for _, e in await spool.unacknowledged()] == ["in-2", "sr-done"]
        assert await spool.parts_of("done") == {}  # gone with the outcome
        assert list(await spool.parts_of("queued")) == [0]
        assert await spool.match_report("m1", 7, METER, NOW, timedelta(hours=1)) == "done"
        assert await spool.match_report("m2", 200, METER, NOW, timedelta(hours=1)) == "queued"


async def test_a_duplicate_inside_a_batch_is_already_accepted_and_the_rest_are_stored(
    tmp_path: Path,
) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        assert await spool.accept(sms("old"), NOW)
        before = spool.commits
        answers = await asyncio.gather(
            spool.accept(sms("a"), NOW),
            spool.accept(sms("b"), NOW),
            spool.accept(sms("a"), NOW),  # the same message_id, earlier in this transaction
            spool.accept(sms("old"), NOW),  # committed before
            spool.accept(sms("c"), NOW),
        )
        assert answers == [True, True, False, False, True]
        assert spool.commits - before == 1
        assert len(await spool.pending()) == 4  # old, a, b, c: each once


async def test_a_write_that_fails_fails_alone_and_its_batch_commits(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        assert await spool.accept(sms("stuck"), NOW)
        await spool.db.executescript(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON outbound "
            "WHEN NEW.message_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;"
            "CREATE TEMP TRIGGER refuse_outcome BEFORE UPDATE ON outbound "
            "WHEN NEW.message_id = 'stuck' "
            "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;"
        )
        stuck = SendResult("sr-stuck", "stuck", SendStatus.SENT, NOW, (1,), METER, modem="m1")
        before = spool.commits
        answers = await asyncio.gather(
            spool.accept(sms("ok-1"), NOW),
            spool.accept(sms("poison"), NOW),
            spool.record_event(inbound(1), NOW),
            # Its event is written, then its state move is refused: the event goes too.
            spool.record_outcome(stuck, "stuck", OutboundState.SENT, NOW, references=(1,)),
            spool.accept(sms("ok-2"), NOW),
            return_exceptions=True,
        )
        assert answers[0] is True and answers[2] is not None and answers[4] is True
        for refused in (answers[1], answers[3]):
            assert isinstance(refused, sqlite3.IntegrityError), refused
            assert "simulated write failure" in str(refused)
        assert spool.commits - before == 1
        assert [p.sms.message_id for p in await spool.pending()] == ["stuck", "ok-1", "ok-2"]
        assert [e.event_id for _, e in await spool.unacknowledged()] == ["in-1"]
        assert await spool.next_reference("m1") is None  # no sent part of 'stuck' either


async def test_a_failed_transaction_fails_exactly_its_callers_and_the_next_one_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with Spool(path) as spool:
        # A real SQLite failure at COMMIT: a deferred foreign key the 'doomed' row breaks.
        await spool.db.execute("PRAGMA foreign_keys = ON")
        await spool.db.executescript(
            "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);"
            "CREATE TEMP TABLE child (parent INTEGER "
            "  REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);"
            "CREATE TEMP TRIGGER doom AFTER INSERT ON outbound "
            "WHEN NEW.message_id = 'doomed' BEGIN INSERT INTO child VALUES (1); END;"
        )
        await spool.record_event(inbound(1), NOW)
        failed = await asyncio.gather(
            spool.accept(sms("a"), NOW),
            spool.accept(sms("doomed"), NOW),
            spool.record_event(inbound(2), NOW),
            spool.ack_many(["in-1"]),
            return_exceptions=True,
        )
        assert all(isinstance(answer, BatchFailed) for answer in failed), failed
        assert len({id(answer) for answer in failed}) == len(failed)  # each its own error
        assert spool.writer.failed_batches == 1
        # Nothing of that batch was kept; the next batch works.
        committed = spool.commits
        assert await asyncio.gather(spool.accept(sms("a"), NOW), spool.accept(sms("b"), NOW)) == [
            True,
            True,
        ]
        assert spool.commits == committed + 1
        assert [e.event_id for _, e in await spool.unacknowledged()] == ["in-1"]
    async with Spool(path) as spool:
        assert [p.sms.message_id for p in await spool.pending()] == ["a", "b"]


_CRASHING_SENDER = """
import asyncio, os, signal, sys
from gateway.spool import Spool
from gateway.spooled import SpooledGateway
from gateway.transport import OutboundSms

class Silent:  # takes every SMS, reports nothing
    async def submit(self, sms):
        pass
    async def carrier_events(self):
        await asyncio.Event().wait()
        yield

async def main():
    spool = await Spool(sys.argv[1]).__aenter__()
    gateway = await SpooledGateway("gw1", Silent(), spool).__aenter__()
    sends = [OutboundSms(f"msg-{n}", "+6281234567890", text=f"Token {n}") for n in range(20)]
    assert await asyncio.gather(*(gateway.send(sms) for sms in sends)) == [True] * 20
    # Every send() has returned: die at once, with nothing closed or flushed.
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_a_send_that_returned_is_in_the_spool_after_the_process_is_killed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(_CRASHING_SENDER),
        str(path),
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == -signal.SIGKILL, stderr.decode()
    async with Spool(path) as spool:
        pending = await spool.pending()
    assert sorted(p.sms.message_id for p in pending) == sorted(f"msg-{n}" for n in range(20))
    assert all(p.state is OutboundState.QUEUED for p in pending)  # to be handed over again


async def test_close_commits_writes_queued_before_it_and_refuses_those_after(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    spool = await Spool(path).__aenter__()
    early = [asyncio.create_task(spool.accept(sms(f"early-{n}"), NOW)) for n in range(30)]
    closing = asyncio.create_task(spool.__aexit__(None, None, None))
    late = [asyncio.create_task(spool.accept(sms(f"late-{n}"), NOW)) for n in range(5)]
    await closing
    # No caller is left waiting: each has its answer, committed or refused.
    assert await asyncio.gather(*early) == [True] * 30
    for task in late:
        with pytest.raises(WriterClosed):
            await task
    with pytest.raises(WriterClosed):
        await spool.record_event(inbound(1), NOW)
    async with Spool(path) as spool:
        names = {p.sms.message_id for p in await spool.pending()}
    assert names == {f"early-{n}" for n in range(30)}


async def test_a_close_cut_short_leaves_no_caller_waiting(tmp_path: Path) -> None:
    gate = threading.Event()
    spool = await Spool(tmp_path / "s.db").__aenter__()
    try:
        # The connection's thread is held, so the batch below cannot commit yet.
        held = asyncio.create_task(spool.run(lambda _: gate.wait()))
        writes = [asyncio.create_task(spool.accept(sms(f"m-{n}"), NOW)) for n in range(3)]
        # The gate stays shut: this close cannot finish, whatever the timing; when the
        # timeout cancels it, it cancels the writer.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(spool.writer.close(), 0.2)
        answers = await asyncio.gather(*writes, return_exceptions=True)
        assert all(isinstance(a, BatchFailed) for a in answers), answers
        assert "may or may not be durable" in str(answers[0])
    finally:
        gate.set()
        await held
        await spool.__aexit__(None, None, None)


async def test_a_burst_from_a_batching_carrier_is_stored_in_one_commit_and_in_order(
    tmp_path: Path,
) -> None:
    carrier = BatchingLoopback()
    async with (
        Spool(tmp_path / "s.db") as spool,
        SpooledGateway("gw1", carrier, spool, clock=lambda: NOW) as gateway,
    ):
        assert await gateway.send(sms("earlier"))
        await spool.record_sent_parts("earlier", "m1", [41], METER, NOW)
        stream = gateway.events()
        before = spool.commits
        burst: list[TransportEvent] = [
            inbound(1),
            SendResult("sr-1", "msg-1", SendStatus.SENT, NOW, (42,), METER, modem="m1"),
            # Its own send result is in the same batch, not yet written: still matched.
            DeliveryReport("dr-1", None, METER, 42, 0, NOW, NOW, modem="m1"),
            # Its message was sent before the batch: matched through the spool.
            DeliveryReport("dr-0", None, METER, 41, 0, NOW, NOW, modem="m1"),
            inbound(2),
        ]
        for event in burst:
            carrier.inject(event)
        got = [await anext(stream) for _ in burst]
        assert carrier.batches[-1] == [e.event_id for e in burst]
        assert spool.commits - before == 1
        assert [e.event_id for e in got] == [e.event_id for e in burst]
        reports = {e.event_id: e for e in got if isinstance(e, DeliveryReport)}
        assert reports["dr-1"].message_id == "msg-1"
        assert reports["dr-0"].message_id == "earlier"
        assert all(e.gateway == "gw1" for e in got)


async def test_acks_of_a_batch_and_new_events_share_a_commit(tmp_path: Path) -> None:
    async with Spool(tmp_path / "s.db") as spool:
        for n in range(5):
            await spool.record_event(inbound(n), NOW)
        before = spool.commits
        await asyncio.gather(
            spool.ack_many(["in-0", "in-1"]),
            spool.ack("in-2"),
            spool.record_event(inbound(9), NOW),
        )
        assert spool.commits - before == 1
        assert [e.event_id for _, e in await spool.unacknowledged()] == ["in-3", "in-4", "in-9"]
