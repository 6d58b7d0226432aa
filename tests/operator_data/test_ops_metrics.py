"""GET /metrics: the gauges the operations alerts need (operator_data/api/ops_metrics.py).

From the database, on both backends: the AP2T duty (first acknowledgement per day, as
`pintar ap2t overdue` measures it) and the age of the outbox's oldest SMS, read through
the primary key (its plan checked). From a hub worker's memory (its ModemBoard, fed the
transport events a worker gets): modem states, the worker's real P2APST client, the
gateways' spool reports."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, insert, select, text, update

from gateway.at.errors import Reaction, StartupError
from gateway.mqtt.topics import SpoolReport
from gateway.transport import ModemStateChanged, ModemStatus, SendResult, SendStatus
from operator_data.api.app import create_app
from operator_data.api.ops_metrics import OLDEST_QUEUED, WorkerView
from operator_data.crypto import MasterKey
from operator_data.hub.journal import HubPurchaseJournal
from operator_data.hub.status import ModemBoard
from operator_data.registry import Registry
from operator_data.settings import PinPolicy, Settings, SlaTargets, WebSettings
from operator_data.store import Flow, Store, schema
from operator_data.store.messages import enqueue_outbound
from operator_data.store.reporting_schema import ap2t_batches
from p2apst_adapter.client import P2apstClient
from p2apst_adapter.simulator import P2apstSimulator, demo_meters
from tests.p2apst_adapter.test_link import FAST

pytestmark = pytest.mark.timeout(60)

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
_OPEN = Settings(web=WebSettings(docs="public"))  # /metrics without credentials
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(body: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def _of(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


@dataclass
class _Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _app(
    store: Store, clock: _Clock, *, status: ModemBoard | None = None, settings: Settings = _OPEN
) -> FastAPI:
    registry = Registry(store, master_key=None, pin_policy=PinPolicy())
    return create_app(settings, store, registry, status_provider=status, clock=clock)


async def _read(app: FastAPI) -> Samples:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hub"
    ) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return _samples(response.text)


async def _scrape(
    store: Store, clock: _Clock, *, status: ModemBoard | None = None, settings: Settings = _OPEN
) -> Samples:
    return await _read(_app(store, clock, status=status, settings=settings))


# -- from the database -------------------------------------------------------------------


async def _acknowledged(store: Store, day: date, revision: int, at: datetime | None) -> None:
    async with store.begin() as conn:
        await conn.execute(
            insert(ap2t_batches).values(
                day=day,
                revision=revision,
                supersedes=None if revision == 1 else revision - 1,
                generated_at=T0,
                exported_at=T0,
                file=f"ap2t-{day:%Y%m%d}-r{revision}.csv",
                sha256=f"{revision}" * 64,
                record_count=1,
                corrections=0,
                acknowledged_at=at,
                receipt=None if at is None else f"R{revision}",
            )
        )


async def test_ap2t_overdue_and_last_acknowledgement_follow_the_batches(store: Store) -> None:
    clock = _Clock(T0)
    nothing = await _scrape(store, clock)
    # Never acknowledged: overdue from the start (as `pintar ap2t overdue` says).
    assert nothing[("pintar_ap2t_overdue", ())] == 1
    assert nothing[("pintar_ap2t_last_acknowledged_timestamp_seconds", ())] == 0

    first = T0 + timedelta(hours=1)
    await _acknowledged(store, date(2026, 11, 20), 1, first)
    # A correction of the same day acknowledged later is no new data; an unacknowledged
    # revision of the next day is none either.
    await _acknowledged(store, date(2026, 11, 20), 2, first + timedelta(hours=5))
    await _acknowledged(store, date(2026, 11, 21), 1, None)
    clock.now = first + timedelta(hours=23)
    fresh = await _scrape(store, clock)
    assert fresh[("pintar_ap2t_overdue", ())] == 0
    assert fresh[("pintar_ap2t_last_acknowledged_timestamp_seconds", ())] == first.timestamp()

    clock.now = first + timedelta(hours=24, seconds=1)
    late = await _scrape(store, clock)
    assert late[("pintar_ap2t_overdue", ())] == 1
    assert late[("pintar_ap2t_last_acknowledged_timestamp_seconds", ())] == first.timestamp()


async def test_the_ap2t_interval_setting_is_the_one_measured(store: Store) -> None:
    first = T0
    await _acknowledged(store, date(2026, 11, 20), 1, first)
    settings = _OPEN.model_copy(update={"sla": SlaTargets(ap2t_batch_interval_h=6)})
    clock = _Clock(first + timedelta(hours=7))
    assert (await _scrape(store, clock, settings=settings))[("pintar_ap2t_overdue", ())] == 1
    assert (await _scrape(store, clock))[("pintar_ap2t_overdue", ())] == 0  # 24 h default


async def _queue(store: Store, key: str, at: datetime) -> None:
    async with store.begin() as conn:
        await enqueue_outbound(
            conn,
            flow=Flow.HUB_TO_METER,
            idempotency_key=key,
            destination="+6281100000001",
            payload=b"\x01",
            at=at,
        )


async def test_outbox_age_is_the_oldest_sms_waiting_however_often_it_was_retried(
    store: Store,
) -> None:
    clock = _Clock(T0)
    assert (await _scrape(store, clock))[("pintar_outbox_oldest_age_seconds", ())] == 0
    await _queue(store, "first", T0)
    await _queue(store, "second", T0 + timedelta(minutes=10))
    o = schema.outbox
    # Offered again and again: available_at moves on, the SMS's wait does not start over.
    async with store.begin() as conn:
        await conn.execute(update(o).values(available_at=T0 + timedelta(minutes=19)))
    clock.now = T0 + timedelta(minutes=20)
    assert (await _scrape(store, clock))[("pintar_outbox_oldest_age_seconds", ())] == 1200
    # The first one leaves: the next is the one waited on.
    async with store.begin() as conn:
        first = await conn.scalar(select(o.c.id).order_by(o.c.id).limit(1))
        await conn.execute(delete(o).where(o.c.id == first))
    assert (await _scrape(store, clock))[("pintar_outbox_oldest_age_seconds", ())] == 600


async def test_the_outbox_age_reads_one_primary_key_entry(store: Store, backend: str) -> None:
    # However long the outbox grows (a backlog is when this metric matters), the read
    # takes the first entry of the primary key: no sort, no scan of the table.
    for n in range(50):
        await _queue(store, f"m-{n}", T0 + timedelta(seconds=n))
    sql = str(OLDEST_QUEUED.compile(store.engine, compile_kwargs={"literal_binds": True}))
    async with store.read() as conn:
        if backend == "sqlite":
            plan = " | ".join(
                str(r[-1]) for r in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
            # rowid order (the primary key is the rowid), stopped by LIMIT 1
            assert plan == "SCAN outbox", plan
        else:
            # Sequential scans priced out: on a table this small one is cheapest even
            # where an index serves; with it priced out, a plan needing one still shows it.
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " | ".join(str(r[0]) for r in await conn.execute(text(f"EXPLAIN {sql}")))
            assert "Index Scan using pk_outbox on outbox" in plan, plan
            assert "Sort" not in plan and "Seq Scan" not in plan, plan


# -- from the worker's memory ------------------------------------------------------------


@dataclass
class _Bus:
    """The hub worker's transport as the board reads it: each gateway's last spool report,
    as gateway.mqtt.MqttTransport keeps them (over Mosquitto: tests/gateway/
    test_spool_report.py)."""

    spool_reports: Mapping[str, SpoolReport] = field(default_factory=dict)


def _state(
    gateway: str, modem: str, status: ModemStatus, at: datetime, detail: str = ""
) -> ModemStateChanged:
    return ModemStateChanged(f"modem:{secrets.token_hex(4)}", modem, status, at, detail, gateway)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}") as opened:
        await opened.migrate()
        yield opened


async def test_modem_states_as_the_worker_heard_them(sqlite_store: Store) -> None:
    board = ModemBoard(worker="hub-a")
    assert isinstance(board, WorkerView)
    # The detail the modem pool sends for a modem that found no network at start-up.
    no_network = str(StartupError("registration", "not registered (SEARCHING)", Reaction.NETWORK))
    no_sim = str(StartupError("SIM", "SIM not inserted", Reaction.NO_SIM))
    at = T0 + timedelta(minutes=1)
    for event in (
        _state("gw-a", "m1", ModemStatus.READY, T0),
        _state("gw-a", "m2", ModemStatus.OUT_OF_SERVICE, T0, no_network),
        _state("gw-a", "m3", ModemStatus.OUT_OF_SERVICE, T0, no_sim),
        _state("gw-a", "m4", ModemStatus.SIM_FULL, T0, "storage full"),
        _state("gw-b", "m1", ModemStatus.BUSY, T0),
        _state("gw-a", "m1", ModemStatus.HUNG, at, "AT+CMGS timed out"),  # m1's newest
        # Any event proves its gateway alive, but only a modem state says what a modem does.
        SendResult("sr-1", "msg-1", SendStatus.SENT, T0, (1,), "+62811", "gw-c", "m9"),
    ):
        board.seen(event, T0)
    samples = await _scrape(sqlite_store, _Clock(T0), status=board)

    def per_modem(name: str) -> dict[str, float]:
        return {
            f"{dict(k)['gateway']}/{dict(k)['modem']}": v for k, v in _of(samples, name).items()
        }

    assert per_modem("pintar_modem_up") == {
        "gw-a/m1": 0, "gw-a/m2": 0, "gw-a/m3": 0, "gw-a/m4": 1, "gw-b/m1": 1,
    }  # fmt: skip
    assert per_modem("pintar_modem_no_network") == {
        "gw-a/m1": 0, "gw-a/m2": 1, "gw-a/m3": 0, "gw-a/m4": 0, "gw-b/m1": 0,
    }  # fmt: skip
    times = per_modem("pintar_modem_state_timestamp_seconds")
    assert times["gw-a/m1"] == at.timestamp() and times["gw-b/m1"] == T0.timestamp()
    # No P2APST client, no bus with spool reports: no series rather than zeros.
    assert _of(samples, "pintar_p2apst_link_up") == {}
    assert _of(samples, "pintar_gateway_spool_rows") == {}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_p2apst_link_of_this_worker(sqlite_store: Store) -> None:
    journal = HubPurchaseJournal(sqlite_store, MasterKey(secrets.token_bytes(32)))
    async with (
        P2apstSimulator(demo_meters(1)) as simulator,
        P2apstClient("127.0.0.1", simulator.port, journal=journal, settings=FAST) as up,
        P2apstClient("127.0.0.1", _closed_port(), journal=journal, settings=FAST) as down,
    ):
        await up.wait_connected()
        signed_on = await _scrape(
            sqlite_store, _Clock(T0), status=ModemBoard(worker="hub-a", p2apst=up)
        )
        cut_off = await _scrape(
            sqlite_store, _Clock(T0), status=ModemBoard(worker="hub-b", p2apst=down)
        )
    assert _of(signed_on, "pintar_p2apst_link_up") == {(("worker", "hub-a"),): 1}
    assert _of(signed_on, "pintar_p2apst_link_down_seconds") == {(("worker", "hub-a"),): 0}
    assert _of(cut_off, "pintar_p2apst_link_up") == {(("worker", "hub-b"),): 0}
    [(labels, seconds)] = _of(cut_off, "pintar_p2apst_link_down_seconds").items()
    assert labels == (("worker", "hub-b"),) and seconds > 0


async def test_gateway_spools_as_they_last_reported(sqlite_store: Store) -> None:
    reported = T0 - timedelta(seconds=30)
    bus = _Bus(
        {
            "gw-a": SpoolReport(
                {"outbound_queued": 7, "outbound_sending": 2, "events_unacked": 0}, reported
            ),
            "gw-b": SpoolReport(
                {"outbound_queued": 0, "outbound_sending": 0, "events_unacked": 40}, T0
            ),
        }
    )
    app = _app(sqlite_store, _Clock(T0), status=ModemBoard(transport=bus))
    samples = await _read(app)
    rows = {
        (dict(k)["gateway"], dict(k)["state"]): v
        for k, v in _of(samples, "pintar_gateway_spool_rows").items()
    }
    assert rows == {
        ("gw-a", "outbound_queued"): 7,
        ("gw-a", "outbound_sending"): 2,
        ("gw-a", "events_unacked"): 0,
        ("gw-b", "outbound_queued"): 0,
        ("gw-b", "outbound_sending"): 0,
        ("gw-b", "events_unacked"): 40,
    }
    assert _of(samples, "pintar_gateway_spool_timestamp_seconds") == {
        (("gateway", "gw-a"),): reported.timestamp(),
        (("gateway", "gw-b"),): T0.timestamp(),
    }
    # A gateway no longer reported leaves no series behind at the next scrape.
    bus.spool_reports = {"gw-b": bus.spool_reports["gw-b"]}
    again = await _read(app)
    assert {dict(k)["gateway"] for k in _of(again, "pintar_gateway_spool_rows")} == {"gw-b"}
    assert {dict(k)["gateway"] for k in _of(again, "pintar_gateway_spool_timestamp_seconds")} == {
        "gw-b"
    }


async def test_an_app_without_a_hub_exports_only_what_the_database_says(
    sqlite_store: Store,
) -> None:
    samples = await _scrape(sqlite_store, _Clock(T0))
    names = {name for name, _ in samples}
    assert {"pintar_ap2t_overdue", "pintar_outbox_oldest_age_seconds"} <= names
    for name in ("pintar_modem_up", "pintar_p2apst_link_up", "pintar_gateway_spool_rows"):
        assert _of(samples, name) == {}, name


async def test_a_running_hub_hands_its_link_and_transport_to_the_metrics(
    sqlite_store: Store, tmp_path: Path
) -> None:
    from tests.operator_data.hub_support import running_rig

    async with running_rig(sqlite_store, tmp_path) as rig:
        assert rig.client is not None
        await rig.client.wait_connected()
        board = rig.hub.status
        assert board.p2apst is rig.client and board.worker == rig.hub.worker_id
        app = create_app(_OPEN, rig.store, rig.registry, status_provider=board, clock=rig.clock)
        samples = await _read(app)
    assert _of(samples, "pintar_p2apst_link_up") == {(("worker", rig.hub.worker_id),): 1}
    # The rig's gateway is in-process (a SpooledGateway, no bus): no spool reports to show.
    assert _of(samples, "pintar_gateway_spool_rows") == {}


async def test_the_worker_series_are_current_while_the_database_fails(sqlite_store: Store) -> None:
    board = ModemBoard(worker="hub-a")
    board.seen(_state("gw-a", "m1", ModemStatus.READY, T0), T0)
    app = _app(sqlite_store, _Clock(T0), status=board)
    assert _of(await _read(app), "pintar_modem_up") == {(("gateway", "gw-a"), ("modem", "m1")): 1}
    async with sqlite_store.begin() as conn:  # every database gauge's read now fails
        await conn.execute(text("ALTER TABLE messages RENAME TO messages_gone"))
    board.seen(_state("gw-a", "m1", ModemStatus.HUNG, T0 + timedelta(seconds=5)), T0)
    assert _of(await _read(app), "pintar_modem_up") == {(("gateway", "gw-a"), ("modem", "m1")): 0}
