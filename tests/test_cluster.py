"""Beyond one machine: two `pintar hub` workers and two `pintar gateway` nodes, each its own
process, on the local Mosquitto (a unique topic root) and a scratch PostgreSQL database.

The test process plays the outside world: the SMS network with one emulated modem per
gateway (ptys the gateway processes open), the customers' phones and meters (meter_sim),
and PLN's P2APST (its simulator). It then checks the books from three sides: P2APST's
ledger (what was paid), the meters (what was credited), the phones (what customers were
told), and the hub database (what was stored)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Select, func, select
from sqlalchemy.engine import make_url

from meter_sim.fleet import Fleet, FleetMember, build_members, registry_csv, sim_meters
from meter_sim.meter.state_store import StateStore
from meter_sim.modem_emulator import ModemEmulator, TimingProfile
from meter_sim.network import NetworkProfile, SmsNetwork
from operator_data.registry import Registry
from operator_data.settings import load_settings
from operator_data.store import Store, schema
from p2apst_adapter.simulator import P2apstSimulator

pytestmark = [pytest.mark.services, pytest.mark.timeout(150)]

PINTAR = Path(sys.executable).with_name("pintar")
SHORT_CODE = "87000"
FIRST_LINE = 6281700000001
AMOUNTS = (20_000, 50_000)  # each phone buys each once: no two alike within the window
SETTLED = {"reported", "declined", "applied", "meter_rejected", "meter_timeout"}


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll cross-process state (database, other processes) until `check()` holds."""
    try:
        async with asyncio.timeout(seconds):
            # Polling: the state lives in other processes, nothing here can notify us.
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {seconds} s waiting for {what}") from None


@asynccontextmanager
async def scratch_database(postgres_url: str) -> AsyncIterator[str]:
    url = make_url(postgres_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"pintar_cluster_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def clean_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PINTAR_")}
    environment.update(extra)
    return environment


async def pintar(*args: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        str(PINTAR),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, (args, out, err)
    return out.decode()


@asynccontextmanager
async def service(
    args: list[str], ready: bytes, env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A long-running `pintar` process, yielded once it printed its ready line."""
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            str(PINTAR), *args, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env
        )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = await process.stdout.readline()
        assert ready in line, (args, line, log.read_text()[-2000:])
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def hub_config(tmp: Path, root: str, p2apst_port: int) -> Path:
    key = tmp / "master.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    path = tmp / "hub.toml"
    path.write_text(
        f'data_dir = "{tmp / "hub-data"}"\n'
        f'[service]\nshort_code = "{SHORT_CODE}"\n'
        "[pin]\nlength = 4\n"
        "[sla]\nmeter_answer_s = 20.0\n"
        "[hub]\ndenominations_idr = [20000, 50000, 100000]\n"
        "sweep_interval_s = 1.0\npurchase_restart_after_s = 10.0\n"
        f'[security]\nmaster_key_file = "{key}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = 1883\ntopic_root = "{root}"\nmax_backoff = 1.0\n'
        f'[p2apst]\nhost = "127.0.0.1"\nport = {p2apst_port}\n'
        "response_timeout = 3.0\nadvice_timeout = 3.0\nadvice_interval = 1.0\n"
        "report_retry_interval = 1.0\n"
    )
    return path


def gateway_config(tmp: Path, name: str, root: str, port: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n'
        f'spool_path = "{tmp / name / "spool.db"}"\n'
        'carrier = "modems"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = 1883\ntopic_root = "{root}"\n'
        "redeliver_after = 5.0\nmax_backoff = 1.0\n"
        "[pool]\nmin_interval = 0.0\nretry_delay = 0.5\n"
        f'[[modems]]\nport = "{port}"\nname = "m1"\n'
    )
    return path


async def provision(config: Path, env: dict[str, str], members: list[FleetMember]) -> None:
    """Schema by `pintar db upgrade`, meters by `pintar registry import`, PINs directly
    (customers choose them by SMS in real life; the registry call is that step's effect)."""
    await pintar("db", "upgrade", "--config", str(config), env=env)
    csv = config.parent / "registry.csv"
    csv.write_text(registry_csv(members), encoding="utf-8")
    imported = json.loads(
        await pintar("registry", "import", str(csv), "--config", str(config), env=env)
    )
    assert imported["imported"] is True
    settings = load_settings(config, database={"url": env["PINTAR_DATABASE__URL"]})
    async with Store.from_settings(settings) as store:
        registry = Registry(
            store, master_key=settings.security.load_master_key(), pin_policy=settings.pin
        )
        for member in members:
            await registry.set_pin(member.phone_msisdn, member.pin, actor="test")


async def count(store: Store, query: Select[tuple[int]] | Select[int]) -> int:
    async with store.read() as conn:
        return int(await conn.scalar(query) or 0)


async def test_two_hubs_and_two_gateways_as_processes_settle_every_purchase_once(
    postgres_url: str, mosquitto_url: str, tmp_path: Path
) -> None:
    root = f"pintar-test-{uuid.uuid4().hex[:10]}/v1"
    members = build_members(4, seed=11, hub_msisdn=SHORT_CODE)
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(scratch_database(postgres_url))
        network = await stack.enter_async_context(
            SmsNetwork(NetworkProfile(min_delay=0.0, max_delay=0.0), seed=11)
        )
        modems = [
            await stack.enter_async_context(
                ModemEmulator(
                    network, f"+{FIRST_LINE + n}", timing=TimingProfile.FAST, seed=n, sim_slots=50
                )
            )
            for n in range(2)
        ]
        network.alias(SHORT_CODE, [m.msisdn for m in modems], present_as_alias=True)
        simulator = await stack.enter_async_context(P2apstSimulator(sim_meters(members), seed=11))
        config = hub_config(tmp_path, root, simulator.port)
        env = clean_environment(PINTAR_DATABASE__URL=database)
        await provision(config, env, members)

        for n in range(2):
            await stack.enter_async_context(
                service(
                    ["hub", "--config", str(config), "--worker-id", f"hub-{n}"],
                    b'"status": "ready"',
                    env,
                    tmp_path / f"hub-{n}.log",
                )
            )
        for n, modem in enumerate(modems):
            name = f"gw-{uuid.uuid4().hex[:6]}-{n}"
            gw = gateway_config(tmp_path, name, root, modem.device_path)
            await stack.enter_async_context(
                service(
                    ["gateway", "--config", str(gw)],
                    b'"status": "connected"',
                    env,
                    tmp_path / f"{name}.log",
                )
            )

        state = stack.enter_context(StateStore(tmp_path / "meters.db"))
        fleet = await stack.enter_async_context(
            Fleet(
                members,
                network,
                state,
                clock=lambda: datetime.now(UTC),
                short_code=SHORT_CODE,
                seed=11,
            )
        )
        settings = load_settings(config, database={"url": database})
        store = await stack.enter_async_context(Store.from_settings(settings))

        for amount in AMOUNTS:
            for phone in fleet.phones:
                phone.buy(amount)
        purchases = len(AMOUNTS) * len(fleet.phones)

        async def every_purchase_settled() -> bool:
            states = await _states(store)
            receipts = sum(len(p.receipts()) for p in fleet.phones)
            return (
                len(states) == purchases
                and all(s in SETTLED for s in states.values())
                and receipts >= purchases
            )

        await until(every_purchase_settled, 90, "every purchase to settle")

        paid = simulator.ledger.paid()
        credited = Counter(r.token for meter in fleet.meters for r in meter.credited)
        # Every purchase paid once at PLN, every paid token credited exactly once.
        assert len(paid) == purchases
        assert len({e.switcher_reference for e in paid}) == purchases
        assert credited == Counter(e.token for e in paid), credited  # each exactly once
        # One receipt per purchase, to the phone that paid.
        for phone in fleet.phones:
            assert len(phone.receipts()) == len(AMOUNTS), [s.text for s in phone.inbox]
        # Every customer SMS stored once (inbound rows are keyed by the gateway's event id).
        msgs = schema.messages
        stored = await count(
            store,
            select(func.count())
            .select_from(msgs)
            .where(
                msgs.c.direction == "in",
                msgs.c.peer_msisdn.in_([p.msisdn for p in fleet.phones]),
            ),
        )
        assert stored == sum(len(p.sent) for p in fleet.phones)
        states = await _states(store)
        assert set(states.values()) <= {"reported", "applied"}, states


async def _states(store: Store) -> dict[str, str]:
    txs = schema.transactions
    async with store.read() as conn:
        rows = await conn.execute(select(txs.c.id, txs.c.state))
        return {str(i): str(s) for i, s in rows}
