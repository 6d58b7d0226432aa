"""Meter -> hub replay protection survives a database restore (issue 16): the counter ledger
outside the database keeps an inbound high-water mark per (meter, key), raised in blocks on
the hot path, and a hub start raises each meter's replay window to it, so a meter frame
accepted after the backup is refused when replayed after the restore."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from firmware_protocol.frames import Endpoint, MeterStatus, ReplayWindow, Role, Telemetry
from gateway.transport import InboundSms
from operator_data.crypto import MasterKey
from operator_data.hub.context import HubContext
from operator_data.hub.meter_batch import log_meter_frames
from operator_data.hub.service import running_hub
from operator_data.hub.sla import SlaMonitor
from operator_data.registry import CommsKey, Identified, Registry, SenderMeter
from operator_data.registry.counter_ledger import CounterLedger, fingerprint
from operator_data.settings import PinPolicy, Settings, load_settings
from operator_data.store import Store, schema
from tests.operator_data.helpers import customer, registered_meter

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
RX_BLOCK = 4  # small, so a handful of frames crosses several blocks


class Meter:
    """A meter's side: frames under its key, with the counters it chooses."""

    def __init__(self, number: str, key: bytes) -> None:
        self.number, self.key = number, key
        self.device = Endpoint(role=Role.METER, meter_number=number, keys={1: key}, key_id=1)
        self.sent: dict[int, bytes] = {}  # counter -> frame, as captured off the air

    def telemetry(self, n: int) -> tuple[int, bytes]:
        counter = self.device.next_counter
        frame = self.device.seal(
            Telemetry(
                request_id=0,
                read_at=NOW,
                energy_kwh=Decimal(100 + n),
                credit_kwh=Decimal("5.00"),
                voltage_v=Decimal("220.0"),
                power_w=300,
                status=MeterStatus(0),
                signal_csq=20,
            ),
            message_id=counter + 1,
        )[0]
        self.sent[counter] = frame
        return counter, frame


class Hub:
    """The part of a hub worker this is about: a registry on the ledger, its session (as
    `running_hub` opens and closes it) and the inbound batch path."""

    def __init__(self, store: Store, master: MasterKey, ledger: CounterLedger | None) -> None:
        self.store = store
        self.registry = Registry(store, master_key=master, pin_policy=PinPolicy(), ledger=ledger)
        self.ctx = HubContext(
            settings=Settings(),
            store=store,
            registry=self.registry,
            master=master,
            clock=lambda: NOW,
            sla=SlaMonitor(Settings().sla),
            p2apst=None,
        )

    async def take(self, meter: Meter, frames: Sequence[bytes]) -> list[str | None]:
        """One inbound batch; each frame's reject reason (None: taken)."""
        who = Identified(SenderMeter(meter.number, customer(1).customer_id),
                         CommsKey(meter.number, "k1", meter.key))  # fmt: skip
        events = [
            InboundSms(f"ev-{secrets.token_hex(6)}", "+6281100000001", NOW, data=frame)
            for frame in frames
        ]
        async with self.store.begin() as conn:
            await log_meter_frames(self.ctx, conn, [(event, who) for event in events])
        async with self.store.read() as conn:
            rows = {
                row.idempotency_key: row.reject_reason
                for row in await conn.execute(
                    select(schema.messages.c.idempotency_key, schema.messages.c.reject_reason)
                )
            }
        return [rows[f"sms:{event.event_id}"] for event in events]

    async def window(self, meter: Meter) -> ReplayWindow:
        stored = (await self.registry.frame_counters(meter.number)).replay_window
        return ReplayWindow.from_bytes(stored) if stored else ReplayWindow()


def _backup(db: Path, to: Path) -> None:
    source, target = sqlite3.connect(db), sqlite3.connect(to)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def _restore(backup: Path, db: Path) -> None:
    for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink(missing_ok=True)
    db.write_bytes(backup.read_bytes())


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "elsewhere" / "counter-ledger.db"  # not restored with the database


@pytest.fixture
def opened_ledgers(ledger_path: Path) -> Iterator[list[CounterLedger]]:
    opened: list[CounterLedger] = []
    yield opened
    for ledger in opened:
        ledger.close()


class Machine:
    """A hub machine: the database file, its backups, the ledger file; `start` is one hub
    worker process (its ledger session begun; `stop` ends it cleanly)."""

    def __init__(self, tmp_path: Path, ledger_path: Path, opened: list[CounterLedger]) -> None:
        self.db = tmp_path / "pintar.db"
        self.url = f"sqlite+aiosqlite:///{self.db}"
        self.ledger_path = ledger_path
        self.opened = opened
        self.master = MasterKey(secrets.token_bytes(32))
        self.meter: Meter  # registered by setup()

    def ledger(self) -> CounterLedger:
        ledger = CounterLedger(self.ledger_path, block=16, rx_block=RX_BLOCK)
        self.opened.append(ledger)
        return ledger

    async def setup(self) -> None:
        async with Store(self.url) as store:
            await store.migrate()
            registry = Registry(store, master_key=self.master, pin_policy=PinPolicy())
            key = secrets.token_bytes(16)
            self.meter = Meter(await registered_meter(registry, key=key), key)


async def test_an_old_meter_frame_is_refused_after_a_restore(
    tmp_path: Path, ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    machine = Machine(tmp_path, ledger_path, opened_ledgers)
    await machine.setup()
    meter, backup = machine.meter, tmp_path / "backup.db"
    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, machine.ledger())
        await hub.registry.start_ledger_session()
        assert await hub.take(meter, [meter.telemetry(n)[1] for n in range(3)]) == [None] * 3
        _backup(machine.db, backup)  # the nightly backup: counters 0-2 taken
        for n in range(3, 10):  # taken one batch at a time, across blocks of the ledger
            assert await hub.take(meter, [meter.telemetry(n)[1]]) == [None]
        assert await hub.registry.end_ledger_session()  # a clean stop
    _restore(backup, machine.db)

    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, machine.ledger())
        assert (await hub.window(meter)).highest == 2  # the restore rolled the window back
        assert await hub.registry.start_ledger_session() == 1  # what every hub start does
        replayed = await hub.take(meter, [meter.sent[5], meter.sent[9]])
        assert all(reason is not None and "frame" in reason for reason in replayed), replayed
        # The meter's next frame is taken: the clean stop recorded the exact mark, so no
        # new frame is lost to the restore.
        counter, fresh = meter.telemetry(10)
        assert counter == 10 and await hub.take(meter, [fresh]) == [None]
        await hub.registry.end_ledger_session()

    # Without the ledger the restored window takes the replayed frame again: the failure
    # the inbound ceiling exists for.
    _restore(backup, machine.db)
    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, None)
        assert await hub.take(meter, [meter.sent[5]]) == [None]


async def test_after_a_crash_the_floor_is_the_ceiling_a_block_ahead(
    tmp_path: Path, ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    machine = Machine(tmp_path, ledger_path, opened_ledgers)
    await machine.setup()
    meter, backup = machine.meter, tmp_path / "backup.db"
    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, machine.ledger())
        await hub.registry.start_ledger_session()
        _backup(machine.db, backup)
        for n in range(6):
            assert await hub.take(meter, [meter.telemetry(n)[1]]) == [None]
        # No end_ledger_session: the worker crashed, no exact mark was recorded.
    raw = sqlite3.connect(ledger_path)  # and its process is gone
    try:
        with raw:
            raw.execute("UPDATE sessions SET pid = ?", (_dead_pid(),))
    finally:
        raw.close()
    _restore(backup, machine.db)
    ledger = machine.ledger()
    (mark,) = ledger.all_rx()
    assert mark.clean is None and 6 <= mark.ceiling <= 6 + RX_BLOCK
    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, ledger)
        assert await hub.registry.start_ledger_session() == 1
        assert (await hub.window(meter)).highest == mark.ceiling - 1
        replayed = await hub.take(meter, list(meter.sent.values()))
        assert all(reason is not None for reason in replayed)
        # Frames the meter sends next are refused up to the ceiling (at most a block), then
        # taken again: nothing old is ever taken twice.
        outcomes = [await hub.take(meter, [meter.telemetry(n)[1]]) for n in range(6, 6 + 8)]
        refused = [n for n, outcome in zip(range(6, 14), outcomes, strict=True) if outcome[0]]
        assert refused == list(range(6, mark.ceiling))
        assert outcomes[-1] == [None]


async def test_the_hot_path_writes_the_ledger_once_a_block(
    tmp_path: Path, ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    machine = Machine(tmp_path, ledger_path, opened_ledgers)
    await machine.setup()
    meter = machine.meter
    ledger = machine.ledger()
    writes: list[int] = []
    real = ledger.raise_rx

    def counted(ceilings: Mapping[tuple[str, bytes], int]) -> None:
        writes.extend(ceilings.values())
        real(ceilings)

    ledger.raise_rx = counted  # type: ignore[method-assign]
    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, ledger)
        await hub.registry.start_ledger_session()
        for n in range(4 * RX_BLOCK):
            assert await hub.take(meter, [meter.telemetry(n)[1]]) == [None]
    # One durable write per block of counters, each a block ahead of the highest taken.
    assert writes == [1 + RX_BLOCK, 2 + 2 * RX_BLOCK, 3 + 3 * RX_BLOCK, 4 + 4 * RX_BLOCK]
    # The file names the key by its fingerprint only.
    (mark,) = ledger.all_rx()
    assert mark.fingerprint == fingerprint(meter.number, meter.key)
    raw = ledger_path.read_bytes() + Path(f"{ledger_path}-wal").read_bytes()
    assert meter.key not in raw


async def test_a_worker_starting_beside_a_live_one_leaves_the_windows_alone(
    tmp_path: Path, ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    machine = Machine(tmp_path, ledger_path, opened_ledgers)
    await machine.setup()
    meter = machine.meter
    ledger = machine.ledger()
    async with Store(machine.url) as store:
        first = Hub(store, machine.master, ledger)
        await first.registry.start_ledger_session()
        assert await first.take(meter, [meter.telemetry(0)[1]]) == [None]  # ceiling 1 + 4
        # A second worker (here in the same process, as in the demo) while the first runs:
        # the database is live, so the window stays where it is.
        second = Hub(store, machine.master, ledger)
        assert await second.registry.start_ledger_session() == 0
        assert (await second.window(meter)).highest == 0  # the meter's next frame is taken
        assert await second.take(meter, [meter.telemetry(1)[1]]) == [None]
        # The live worker's frames may pass any mark read now: no clean mark is recorded.
        assert not await first.registry.end_ledger_session()
        (mark,) = ledger.all_rx()
        assert mark.clean is None
        # The last worker's clean stop records the exact mark.
        assert await second.registry.end_ledger_session()
        (mark,) = ledger.all_rx()
        assert mark.clean == 2 and not ledger.others_live()
        # The next worker's first frame from the meter clears it again (its frames are no
        # longer covered by it) in the write that raises the ceiling.
        third = Hub(store, machine.master, ledger)
        assert await third.registry.start_ledger_session() == 0  # the window is at the mark
        assert await third.take(meter, [meter.telemetry(2)[1]]) == [None]
        (mark,) = ledger.all_rx()
        assert mark.clean is None and mark.ceiling == 3 + RX_BLOCK


def _dead_pid() -> int:
    pid = os.getpid()
    while True:  # a process id no process has
        pid += 1
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue


async def test_a_crashed_worker_does_not_count_as_live(
    ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    ledger = CounterLedger(ledger_path)
    opened_ledgers.append(ledger)
    ledger.begin_session(pid=_dead_pid())
    mine = ledger.begin_session()
    assert not mine.others_live
    assert not ledger.others_live(mine.session)
    assert ledger.others_live()  # this worker itself, to anyone else (the CLI)


async def test_apply_ledger_raises_the_windows_after_a_restore(
    tmp_path: Path, ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    """`pintar registry apply-ledger FILE` (another machine's ledger, after a restore) raises
    the inbound floors as well as the outbound counters."""
    machine = Machine(tmp_path, ledger_path, opened_ledgers)
    await machine.setup()
    meter, backup = machine.meter, tmp_path / "backup.db"
    _backup(machine.db, backup)
    async with Store(machine.url) as store:
        hub = Hub(store, machine.master, machine.ledger())
        await hub.registry.start_ledger_session()
        assert await hub.take(meter, [meter.telemetry(n)[1] for n in range(3)]) == [None] * 3
        await hub.registry.end_ledger_session()
    _restore(backup, machine.db)
    async with Store(machine.url) as store:
        registry = Registry(
            store, master_key=machine.master, pin_policy=PinPolicy(), ledger=machine.ledger()
        )
        assert await registry.apply_counter_ledger() == 1
        hub = Hub(store, machine.master, None)
        assert (await hub.window(meter)).highest == 2
        assert await hub.take(meter, [meter.sent[1]]) != [None]


async def test_a_hub_worker_raises_windows_at_start_and_records_marks_at_stop(
    tmp_path: Path, mosquitto_url: str
) -> None:
    broker = urlsplit(mosquitto_url)
    master = MasterKey(secrets.token_bytes(32))
    settings = load_settings(
        data_dir=tmp_path,
        security={"master_key": master.key.hex()},
        mqtt={
            "host": broker.hostname,
            "port": broker.port,
            "topic_root": f"pintar-test-{secrets.token_hex(4)}",
        },
    )
    ledger_path = settings.hub.counter_ledger_path(tmp_path)
    assert ledger_path is not None
    key = secrets.token_bytes(16)
    async with Store.from_settings(settings) as store:
        await store.migrate()
        registry = Registry(store, master_key=master, pin_policy=settings.pin)
        meter = await registered_meter(registry, key=key)
    ledger = CounterLedger(ledger_path)
    try:  # a worker before took counters up to 30 and crashed (no clean mark)
        ledger.raise_rx({(meter, fingerprint(meter, key)): 31})
    finally:
        ledger.close()
    async with running_hub(settings, worker_id="rx-ledger-test") as node:
        counters = await node.registry.frame_counters(meter)
        assert ReplayWindow.from_bytes(counters.replay_window).highest == 30
    ledger = CounterLedger(ledger_path)
    try:
        (mark,) = ledger.all_rx()
        assert mark.clean == 31  # the clean stop: the next start refuses no new frame
        assert not ledger.others_live()
    finally:
        ledger.close()


async def test_a_reused_process_id_is_not_taken_for_the_dead_worker(
    ledger_path: Path, opened_ledgers: list[CounterLedger]
) -> None:
    """A worker killed outright leaves its row; a process that later gets its id (here: our
    parent, which is alive) must not pass for it, or no start would raise the windows."""
    if not Path(f"/proc/{os.getppid()}/stat").exists():
        pytest.skip("process start times are read from /proc")
    ledger = CounterLedger(ledger_path)
    opened_ledgers.append(ledger)
    ledger.begin_session(pid=os.getppid())
    raw = sqlite3.connect(ledger_path)
    try:
        with raw:  # the dead worker had started at another time
            raw.execute("UPDATE sessions SET started = 'earlier'")
    finally:
        raw.close()
    assert not ledger.begin_session().others_live
    # The same process id with its real start is a live worker.
    ledger.begin_session(pid=os.getppid())
    assert ledger.begin_session().others_live
