"""One gateway node as a long-running service: carrier + spool + MQTT bridge.

    Spool (SQLite) ─ SpooledGateway ─ carrier: ModemPool (AT modems) or SmppCarrier (SMSC)
                          │
                     GatewayBridge ── MQTT ── hub workers

Everything the node has accepted is in the spool before it is acknowledged to anyone, so a
crash (even SIGKILL) loses nothing: on start the spool hands unfinished SMS to the carrier
again, and every event the hub has not acked is published again (at once, and after
`redeliver_after` while it stays unacked). With modems, a PDU is journalled
(InboundJournal) before the modem deletes it from the SIM, and an outgoing part is stored on
the modem and journalled in the spool before it is sent, so a send cut short by a crash is
settled from the stored copy's status instead of being sent again.

Nothing is kept longer than it must be: a Housekeeper (gateway/housekeeping.py) purges the
spool of final SMS past `spool_retention_hours` and empties every durable file's WAL each
`housekeeping_interval` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.config import CarrierKind, GatewayConfig
from gateway.durable_file import DurableSqlite
from gateway.housekeeping import Housekeeper
from gateway.inbound_journal import InboundJournal, JournalledPool
from gateway.mqtt import GatewayBridge
from gateway.pool import ModemPool
from gateway.smpp import PartStore, ReceiptBook, SmppCarrier
from gateway.spool import Spool
from gateway.spooled import Carrier, SpooledGateway

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunningGateway:
    config: GatewayConfig
    spool: Spool
    carrier: Carrier
    gateway: SpooledGateway
    bridge: GatewayBridge
    housekeeper: Housekeeper


@asynccontextmanager
async def running_gateway(config: GatewayConfig) -> AsyncIterator[RunningGateway]:
    """Starts the node; on exit stops the bridge, then the gateway, carrier and spool."""
    config.spool_path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        spool = await stack.enter_async_context(Spool(config.spool_path))
        files: list[DurableSqlite] = []  # the carrier's durable files, to checkpoint too
        carrier: Carrier
        if config.carrier is CarrierKind.SMPP:
            assert config.smpp is not None  # the config validator guarantees it
            book = await stack.enter_async_context(ReceiptBook(config.receipts_path))
            parts = await stack.enter_async_context(PartStore(config.receipts_path))
            files += [book, parts]
            carrier = await stack.enter_async_context(
                SmppCarrier(config.smpp.smpp_settings(config.name), book, parts=parts)
            )
        else:
            journal = await stack.enter_async_context(InboundJournal(config.journal_path))
            files.append(journal)
            recovered = await journal.recover(spool, datetime.now(UTC))
            if recovered:
                log.warning("gateway %s: %d inbound events recovered", config.name, recovered)
            pool = await stack.enter_async_context(
                ModemPool(
                    [modem.modem_config() for modem in config.modems],
                    persist=journal.persist,
                    journal=spool,  # store-then-send: each part's slot and fate, durably
                    config=config.pool.pool_config(),
                )
            )
            carrier = JournalledPool(pool, journal)
        housekeeper = await stack.enter_async_context(
            Housekeeper(
                spool,
                files,
                retention=timedelta(hours=config.spool_retention_hours),
                interval=config.housekeeping_interval,
                clock=lambda: datetime.now(UTC),
            )
        )
        gateway = await stack.enter_async_context(
            SpooledGateway(
                config.name, carrier, spool, redeliver_after=config.event_redeliver_after
            )
        )
        bridge = await stack.enter_async_context(
            GatewayBridge(config.name, gateway, config.mqtt.settings(config.name))
        )
        yield RunningGateway(config, spool, carrier, gateway, bridge, housekeeper)


async def serve(
    config: GatewayConfig,
    stop: asyncio.Event,
    on_connected: Callable[[RunningGateway], None] | None = None,
) -> None:
    """Runs the node until `stop` is set; `on_connected` once it first reaches the broker."""
    async with running_gateway(config) as node:
        log.info("gateway %s: started (%s)", config.name, config.carrier.value)
        connected = asyncio.create_task(node.bridge.connected.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({connected, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if connected.done():
            log.info("gateway %s: connected to the broker", config.name)
            if on_connected is not None:
                on_connected(node)
        await stopping
        connected.cancel()
        log.info("gateway %s: stopping", config.name)
