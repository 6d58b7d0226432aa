"""AES-GCM nonce reuse (issue 16): a meter's comms key is never installed twice, and the
hub's frame counters stay above every counter used under a key, even after the database is
restored from a backup (the counter ledger outside the database)."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from firmware_protocol.frames import Endpoint, FrameError, Ping, Pong, Reason, Role, peek
from operator_data.cli.main import app
from operator_data.crypto import MasterKey
from operator_data.hub.meter_link import open_inbound, seal_outbound
from operator_data.hub.service import running_hub
from operator_data.registry import Registry, RegistryError
from operator_data.registry.counter_ledger import CounterLedger, fingerprint
from operator_data.settings import PinPolicy, load_settings
from operator_data.store import Store, schema
from tests.operator_data.helpers import registered_meter

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[CounterLedger]:
    # Elsewhere than the database: a restore of the database leaves it alone.
    opened = CounterLedger(tmp_path / "ledger" / "counter-ledger.db", block=16)
    yield opened
    opened.close()


def _registry(
    store: Store, master_key: MasterKey, pin_policy: PinPolicy, ledger: CounterLedger | None = None
) -> Registry:
    return Registry(store, master_key=master_key, pin_policy=pin_policy, ledger=ledger)


async def _frame_to_meter(store: Store, registry: Registry, meter: str) -> bytes:
    key = await registry.comms_key(meter)
    async with store.begin() as conn:
        frame, _ = await seal_outbound(conn, registry, key, Ping())
    return frame


async def test_same_key_is_refused_and_counters_kept(
    store: Store, master_key: MasterKey, pin_policy: PinPolicy
) -> None:
    registry = _registry(store, master_key, pin_policy)  # no ledger: the check still holds
    key = secrets.token_bytes(16)
    meter = await registered_meter(registry, key=key)
    first = await _frame_to_meter(store, registry, meter)
    with pytest.raises(RegistryError, match="already has this comms key"):
        await registry.set_comms_key(meter, key, "k1", actor="ops")
    # Nothing was reset: the next frame has the next counter, never the same bytes again.
    second = await _frame_to_meter(store, registry, meter)
    assert peek(first).counter == 0 and peek(second).counter == 1 and second != first
    async with store.read() as conn:
        actions = list(await conn.scalars(select(schema.audit_log.c.action)))
    assert "meter.comms_key.set" not in actions
    # A different key is taken, and its counters start afresh (new key, new IVs).
    await registry.set_comms_key(meter, secrets.token_bytes(16), "k2", actor="ops")
    assert (await registry.frame_counters(meter)).tx_counter == 0


async def test_a_key_the_meter_had_before_is_refused(
    store: Store, master_key: MasterKey, pin_policy: PinPolicy, ledger: CounterLedger
) -> None:
    registry = _registry(store, master_key, pin_policy, ledger=ledger)
    old, new = secrets.token_bytes(16), secrets.token_bytes(16)
    meter = await registered_meter(registry, key=old)
    await _frame_to_meter(store, registry, meter)  # the first reservation records `old`
    await registry.set_comms_key(meter, new, "k2", actor="ops")
    with pytest.raises(RegistryError, match="has had this comms key before"):
        await registry.set_comms_key(meter, old, "k3", actor="ops")
    assert (await registry.comms_key(meter)).key == new
    # The same key on another meter is another (meter, key): fingerprints are per meter.
    other = await registered_meter(registry, 2)
    await registry.set_comms_key(other, old, "k1", actor="ops")
    # The ledger holds fingerprints only, never a key.
    raw = ledger.path.read_bytes() + Path(f"{ledger.path}-wal").read_bytes()
    assert old not in raw and new not in raw
    assert {c.fingerprint for c in ledger.all()} == {
        fingerprint(meter, old),
        fingerprint(meter, new),
        fingerprint(other, old),
    }


async def test_old_meter_frames_are_refused_after_a_new_key(
    store: Store, master_key: MasterKey, pin_policy: PinPolicy, ledger: CounterLedger
) -> None:
    """The meter's frames under its previous key must not open once it has a new key, even
    though the replay window restarts with the new key; and the previous key cannot be put
    back (its restarted window would take the old frames again)."""
    registry = _registry(store, master_key, pin_policy, ledger=ledger)
    old, new = secrets.token_bytes(16), secrets.token_bytes(16)
    meter = await registered_meter(registry, key=old)
    device = Endpoint(role=Role.METER, meter_number=meter, keys={1: old}, key_id=1)
    pong = Pong(
        request_id=0, meter_time=datetime(2026, 12, 3, tzinfo=UTC), signal_csq=20, firmware=1
    )
    captured = device.seal(pong, message_id=1)[0]
    async with store.begin() as conn:
        await open_inbound(conn, registry, await registry.comms_key(meter), captured)
    await registry.set_comms_key(meter, new, "k2", actor="ops")
    assert (await registry.frame_counters(meter)).replay_window == b""  # restarted
    # Replayed under a new key id (k2), and under the old id reused (k1): both refused.
    for expected in (Reason.UNKNOWN_KEY, Reason.BAD_TAG):
        async with store.begin() as conn:
            with pytest.raises(FrameError) as refused:
                await open_inbound(conn, registry, await registry.comms_key(meter), captured)
        assert refused.value.reason is expected
        assert (await registry.frame_counters(meter)).replay_window == b""  # never moved
        async with store.begin() as conn:
            await conn.execute(
                schema.meters.update()
                .where(schema.meters.c.meter_number == meter)
                .values(comms_key_id="k1")
            )
    # The meter under its new key starts its counters afresh: its first frame is taken.
    fresh = Endpoint(role=Role.METER, meter_number=meter, keys={1: new}, key_id=1)
    async with store.begin() as conn:
        got = await open_inbound(
            conn, registry, await registry.comms_key(meter), fresh.seal(pong, message_id=1)[0]
        )
    assert got.header.counter == 0
    with pytest.raises(RegistryError, match="before"):
        await registry.set_comms_key(meter, old, "k3", actor="ops")


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


async def test_counters_stay_above_every_used_one_after_a_restore(
    tmp_path: Path, master_key: MasterKey, pin_policy: PinPolicy
) -> None:
    db, backup = tmp_path / "pintar.db", tmp_path / "backup.db"
    ledger_path = tmp_path / "elsewhere" / "counter-ledger.db"
    url = f"sqlite+aiosqlite:///{db}"
    used: set[int] = set()
    frames: set[bytes] = set()

    meter = f"{14000000001:011d}"

    async def run(reserve: int) -> int:
        """One hub process: start (apply the ledger), `reserve` frames, one batch of 40."""
        ledger = CounterLedger(ledger_path, block=16)
        try:
            async with Store(url) as store:
                await store.migrate()
                registry = _registry(store, master_key, pin_policy, ledger=ledger)
                await registry.apply_counter_ledger()  # what every hub start does
                if (await registry.counts())["meters"] == 0:
                    await registered_meter(registry, key=secrets.token_bytes(16))
                first = None
                for _ in range(reserve):
                    frame = await _frame_to_meter(store, registry, meter)
                    counter = peek(frame).counter
                    assert counter not in used and frame not in frames
                    used.add(counter)
                    frames.add(frame)
                    first = counter if first is None else first
                async with store.begin() as conn:  # a batch, as token issue reserves
                    start = (await registry.reserve_tx_counters(conn, {meter: 40}))[meter]
                assert not used & set(range(start, start + 40))
                used.update(range(start, start + 40))
                return -1 if first is None else first
        finally:
            ledger.close()

    await run(3)
    _backup(db, backup)  # the nightly backup: counters 0–42 used so far
    await run(30)  # more frames after the backup, across several blocks
    used_before = set(used)
    _restore(backup, db)
    first_after = await run(1)
    assert first_after > max(used_before)

    # Without the ledger the restored database hands out counters from 43 again, some of
    # them used after the backup: the failure the ledger exists for (same key and counter,
    # the same IV).
    _restore(backup, db)
    async with Store(url) as store:
        registry = _registry(store, master_key, pin_policy)
        async with store.begin() as conn:
            start = (await registry.reserve_tx_counters(conn, {meter: 40}))[meter]
    assert start == 43 and used_before & set(range(start, start + 40))


def test_cli_set_comms_key_refuses_the_same_key(tmp_path: Path) -> None:
    master = secrets.token_bytes(32).hex()
    env = {"PINTAR_DATA_DIR": str(tmp_path), "PINTAR_SECURITY__MASTER_KEY": master}
    key = secrets.token_bytes(16)

    async def seed() -> str:
        async with Store(f"sqlite+aiosqlite:///{tmp_path / 'pintar.db'}") as store:
            await store.migrate()
            registry = Registry(
                store, master_key=MasterKey(bytes.fromhex(master)), pin_policy=PinPolicy()
            )
            return await registered_meter(registry, key=key)

    meter = asyncio.run(seed())
    args = ["registry", "set-comms-key", meter, "--key-id", "k1"]
    same = runner.invoke(app, args, input=key.hex() + "\n", env=env)
    assert same.exit_code == 2
    assert "already has this comms key" in same.stderr and key.hex() not in same.stderr
    bad = runner.invoke(app, args, input="not hex\n", env=env)
    assert bad.exit_code == 2 and "32 hex digits" in bad.stderr
    new = secrets.token_bytes(16)
    args[-1] = "k2"
    done = runner.invoke(app, args, input=new.hex() + "\n", env=env)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {"meter_number": meter, "comms_key_id": "k2"}
    # The default ledger under data_dir remembered the replaced key too: it cannot come back.
    args[-1] = "k3"
    again = runner.invoke(app, args, input=key.hex() + "\n", env=env)
    assert again.exit_code == 2 and "has had this comms key before" in again.stderr
    moved = runner.invoke(app, ["registry", "apply-ledger"], env=env)
    assert moved.exit_code == 0, moved.stderr
    assert json.loads(moved.stdout)["meters_moved"] == 0


async def test_a_hub_worker_applies_its_ledger_when_it_starts(
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
    assert ledger_path == tmp_path / "counter-ledger.db"
    async with Store.from_settings(settings) as store:
        await store.migrate()
        ledger = CounterLedger(ledger_path)
        try:
            registry = _registry(store, master, settings.pin, ledger)
            meter = await registered_meter(registry, key=secrets.token_bytes(16))
            async with store.begin() as conn:
                await registry.reserve_tx_counters(conn, {meter: 40})  # counters 0–39
        finally:
            ledger.close()
        async with store.begin() as conn:  # a restore to when only 0–2 were used
            await conn.execute(
                schema.meters.update()
                .where(schema.meters.c.meter_number == meter)
                .values(tx_counter=3)
            )
    async with running_hub(settings, worker_id="ledger-test") as node:
        counters = await node.registry.frame_counters(meter)
    assert counters.tx_counter == 40 + 1024  # the rest of the reserved block skipped
