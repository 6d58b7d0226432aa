"""One hub worker as a long-running service: store + registry + MQTT bus + P2APST + Hub.

    PostgreSQL ── Store/Registry ── Hub ── MqttTransport ── MQTT ── gateway nodes
                                     │
                                P2apstClient (HubPurchaseJournal, HubReportOutbox)
                                     │
                       web app (helpdesk, token push), when enabled

Several workers may run against one database: events are shared by the broker
(`$share/<group>/...`, each event to one worker), outbox rows are claimed with SKIP LOCKED,
and the sweep runs on one worker at a time (`run_once`). The schema is not migrated here
unless asked (`migrate=True`): `pintar db upgrade` does it once, before workers start.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, replace

import uvicorn

from gateway.mqtt import MqttTransport
from operator_data.ap2t_source import StoreAp2tHistory
from operator_data.api.app import create_app
from operator_data.duties.clock import DutyClock, SystemClock
from operator_data.duties.jobs import hub_runner
from operator_data.duties.runner import DutyRunner
from operator_data.hub.actions import HubActions
from operator_data.hub.dispatcher import release_previous_claims
from operator_data.hub.hub import Hub
from operator_data.hub.journal import HubPurchaseJournal, HubReportOutbox, PurchaseClaims
from operator_data.hub.push_api import router as push_router
from operator_data.hub.sla import SlaMonitor
from operator_data.registry import Registry
from operator_data.registry.counter_ledger import CounterLedger, LedgerError
from operator_data.settings import Settings
from operator_data.store import Store
from operator_data.store_health import StoreWatch
from p2apst_adapter.client import ClientSettings, P2apstClient, StanSource

log = logging.getLogger(__name__)


class HubServiceError(RuntimeError):
    """The worker cannot start (no master key, schema not migrated, web port taken...)."""


@dataclass(frozen=True, slots=True)
class RunningHub:
    settings: Settings
    worker_id: str
    store: Store
    registry: Registry
    transport: MqttTransport
    p2apst: P2apstClient | None
    hub: Hub
    web_url: str | None
    duties: DutyRunner | None = None  # the scheduled duties (operator_data/duties/)


def client_settings(settings: Settings) -> ClientSettings:
    p = settings.p2apst
    return ClientSettings(
        framing=p.framing,
        connect_timeout=p.connect_timeout,
        response_timeout=p.response_timeout,
        advice_timeout=p.advice_timeout,
        advice_interval=p.advice_interval,
        echo_interval=p.echo_interval,
        report_retry_interval=p.report_retry_interval,
        report_window=p.report_window,
        resend_unreceived=p.resend_unreceived,
        resume_pending=False,  # the hub's sweep resumes purchases (one resumer)
        tls=p.tls_context(),
        tls_server_name=p.tls_server_name,
        dialect=p.dialect(),
    )


@asynccontextmanager
async def _web(settings: Settings, running: RunningHub) -> AsyncIterator[str]:
    app = create_app(
        settings,
        running.store,
        running.registry,
        extra_routers=[push_router],
        status_provider=running.hub.status,
        ap2t_history=StoreAp2tHistory(running.store),
        actions=HubActions(running.hub),
    )
    app.state.pintar_hub = running.hub
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.web.host, settings.web.port))
    except OSError as error:
        sock.close()
        raise HubServiceError(
            f"web: cannot listen on {settings.web.host}:{settings.web.port}: {error.strerror}"
        ) from None
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        host, port = sock.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        with suppress(Exception):
            async with asyncio.timeout(10):
                await task
        sock.close()


async def _check_schema(store: Store) -> None:
    # A worker on an empty or old database would fail on its first event; say so at once.
    from sqlalchemy import inspect

    async with store.engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    if "alembic_version" not in names or "hub_deliveries" not in names:
        raise HubServiceError(
            "the database is not migrated: run `pintar db upgrade --config FILE` first"
        )


@asynccontextmanager
async def running_hub(
    settings: Settings,
    *,
    worker_id: str = "hub",
    migrate: bool = False,
    clock: DutyClock | None = None,
) -> AsyncIterator[RunningHub]:
    """Starts one hub worker; on exit stops the duties, the web app, the hub, P2APST, MQTT
    and store."""
    master = settings.security.load_master_key()
    if master is None:
        raise HubServiceError(
            "no master key: set PINTAR_SECURITY__MASTER_KEY or security.master_key_file"
        )
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(Store.from_settings(settings))
        if migrate:
            await store.migrate()
        else:
            await _check_schema(store)
        # A stalled store is logged, alarmed and counted, not silent (store_health.py).
        await stack.enter_async_context(StoreWatch(store, settings.database, worker_id=worker_id))
        ledger_path = settings.hub.counter_ledger_path(settings.data_dir)
        try:
            ledger = None if ledger_path is None else CounterLedger(ledger_path)
        except LedgerError as error:
            raise HubServiceError(str(error)) from None
        if ledger is not None:
            stack.callback(ledger.close)
        registry = Registry(store, master_key=master, pin_policy=settings.pin, ledger=ledger)
        # Before any frame is sealed: counters jump past what this machine's ledger says was
        # reserved, so a restored database cannot reuse an IV (docs/runbook.md).
        moved = await registry.apply_counter_ledger(inbound=False)
        if moved:
            log.info(
                "hub %s: frame counters of %d meters moved past their ledger", worker_id, moved
            )
        # Before any meter frame is taken: replay windows raised to the ledger's inbound
        # floors (unless another worker holds the ledger); at a clean stop, after the hub
        # has stopped taking frames, the exact marks recorded for the next start.
        raised = await registry.start_ledger_session()
        stack.push_async_callback(registry.end_ledger_session)
        if raised:
            log.info(
                "hub %s: replay windows of %d meters raised to their ledger", worker_id, raised
            )
        transport = await stack.enter_async_context(
            MqttTransport(
                settings.mqtt.mqtt_settings(),
                group=settings.mqtt.group,
                worker=worker_id,
                failover_after=settings.mqtt.failover_after,
            )
        )
        # Before this worker sends anything: what its previous process (same worker id,
        # killed or crashed) had claimed from the outbox goes back to the queue now.
        await release_previous_claims(store, worker_id)
        # Entered before the client (so left after it): the purchases the hub drives are
        # claimed here, one worker per purchase across the cluster.
        claims = await stack.enter_async_context(PurchaseClaims(store))
        sla = SlaMonitor(settings.sla)  # the hub's and its report outbox's
        client: P2apstClient | None = None
        outbox: HubReportOutbox | None = None
        if settings.p2apst.host is not None:
            outbox = HubReportOutbox(store, master, sla=sla)
            client = await stack.enter_async_context(
                P2apstClient(
                    settings.p2apst.host,
                    settings.p2apst.port,
                    journal=HubPurchaseJournal(store, master),
                    outbox=outbox,
                    settings=client_settings(settings),
                    stan=StanSource(
                        lane=settings.p2apst.stan_lane, lanes=settings.p2apst.stan_lanes
                    ),
                )
            )
        else:
            log.warning("hub %s: no [p2apst] host configured: purchases are not made", worker_id)
        hub = Hub(settings, store, registry, transport, client, sla=sla, claims=claims,
                  worker_id=worker_id)  # fmt: skip
        hub = await stack.enter_async_context(hub)
        running = RunningHub(settings, worker_id, store, registry, transport, client, hub, None)
        if settings.web.enabled:
            url = await stack.enter_async_context(_web(settings, running))
            running = RunningHub(settings, worker_id, store, registry, transport, client, hub, url)
        if settings.duties.enabled:  # each once per cluster; `clock` is the tests' to move
            runner = hub_runner(settings, store, clock or SystemClock(), worker_id)
            running = replace(running, duties=await stack.enter_async_context(runner))
        yield running


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    worker_id: str = "hub",
    migrate: bool = False,
    on_ready: Callable[[RunningHub], None] | None = None,
) -> None:
    """Runs one worker until `stop` is set; `on_ready` once it first reaches the broker."""
    async with running_hub(settings, worker_id=worker_id, migrate=migrate) as node:
        log.info("hub %s: started", worker_id)
        connected = asyncio.create_task(node.transport.connected.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({connected, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connected.done():
            log.info("hub %s: connected to the broker", worker_id)
            if on_ready is not None:
                on_ready(node)
        await stopping
        connected.cancel()
        log.info("hub %s: stopping", worker_id)
