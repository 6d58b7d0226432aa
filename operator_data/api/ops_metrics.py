"""The gauges the operations alerts need beyond the message log: modem states, this
worker's P2APST link, the gateways' spools, the AP2T duty and the age of the outbox.

Two kinds of source, both bounded per scrape:
- the database (the same for every worker): the last acknowledged AP2T day (one row per
  day in `ap2t_batches`) and the outbox's oldest row (the first primary-key entry);
- what this worker holds in memory (`WorkerView`, the hub's `ModemBoard`): modem states
  and gateway spool reports from the bus, and this worker's own P2APST link. An app
  without a hub (the helpdesk alone) has no such view and exports none of those series.

Modem states reach a worker only in the events the broker gives it (shared subscription:
each event to one worker), so workers may disagree; every modem series therefore comes
with the time of the state it reports, and the rules keep the newest per modem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import select

from operator_data.ap2t_source import ap2t_late, last_daily_acknowledgement
from operator_data.complaints.calendar import default as complaint_calendar
from operator_data.complaints.clock import complaint_clock
from operator_data.store import schema

if TYPE_CHECKING:
    from operator_data.api.deps import AppContext


@dataclass(frozen=True, slots=True)
class ModemReading:
    gateway: str
    modem: str
    up: bool  # serving: it can send and receive
    no_network: bool  # out of service because it could not register on the network
    since: datetime  # when the gateway reported this state
    signal_percent: int | None = None  # None: not reported (older gateway, AT+CSQ refused)


@dataclass(frozen=True, slots=True)
class LinkReading:
    worker: str
    up: bool
    down_for_s: float  # 0 while up


@dataclass(frozen=True, slots=True)
class SpoolReading:
    gateway: str
    rows: dict[str, int]  # spool state → rows (outbound states, "events_unacked")
    at: datetime  # when the gateway counted them


@runtime_checkable
class WorkerView(Protocol):
    """What one hub worker knows in memory (operator_data.hub.status.ModemBoard)."""

    def modem_readings(self) -> Sequence[ModemReading]: ...

    def p2apst_link(self) -> LinkReading | None:
        """None: this worker has no P2APST client (no [p2apst] host)."""
        ...

    def spool_readings(self) -> Sequence[SpoolReading]: ...


class OpsGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.modem_up = Gauge(
            "pintar_modem_up",
            "1 while the modem is serving (ready, busy, emptying a full SIM), else 0",
            ["gateway", "modem"],
            registry=registry,
        )
        self.modem_no_network = Gauge(
            "pintar_modem_no_network",
            "1 while the modem is out of service because it could not register on the network",
            ["gateway", "modem"],
            registry=registry,
        )
        self.modem_signal_percent = Gauge(
            "pintar_modem_signal_percent",
            "The modem's signal (AT+CSQ rssi 0-31 as 0-100 %); no series while unknown",
            ["gateway", "modem"],
            registry=registry,
        )
        self.modem_state_timestamp = Gauge(
            "pintar_modem_state_timestamp_seconds",
            "When the gateway reported the modem state this worker holds (Unix time)",
            ["gateway", "modem"],
            registry=registry,
        )
        # Labelled by worker so that a worker without P2APST exports no series at all
        # (a bare gauge would read 0: a link down that does not exist).
        self.p2apst_link_up = Gauge(
            "pintar_p2apst_link_up",
            "1 while this worker's P2APST link is signed on, else 0",
            ["worker"],
            registry=registry,
        )
        self.p2apst_link_down_seconds = Gauge(
            "pintar_p2apst_link_down_seconds",
            "How long this worker's P2APST link has been down (0 while up)",
            ["worker"],
            registry=registry,
        )
        self.spool_rows = Gauge(
            "pintar_gateway_spool_rows",
            "Rows in a gateway's spool by state, as the gateway last reported them",
            ["gateway", "state"],
            registry=registry,
        )
        self.spool_timestamp = Gauge(
            "pintar_gateway_spool_timestamp_seconds",
            "When the gateway counted its spool rows (Unix time)",
            ["gateway"],
            registry=registry,
        )
        self.ap2t_last_acknowledged = Gauge(
            "pintar_ap2t_last_acknowledged_timestamp_seconds",
            "When AP2T first acknowledged the latest day it has (Unix time; 0: never)",
            registry=registry,
        )
        self.ap2t_overdue = Gauge(
            "pintar_ap2t_overdue",
            "1 when AP2T's last acknowledged day is older than the batch interval (or none)",
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "pintar_outbox_oldest_age_seconds",
            "How long the oldest outbound SMS in the outbox has waited since it was queued",
            registry=registry,
        )
        self.complaints_open = Gauge(
            "pintar_complaints_open",
            "Complaints not yet resolved (open or assigned)",
            registry=registry,
        )
        self.complaints_overdue = Gauge(
            "pintar_complaints_overdue",
            "Unresolved complaints past their 15-working-day due day (third-party ones left out)",
            registry=registry,
        )
        self.complaints_past_month_end = Gauge(
            "pintar_complaints_past_month_end",
            "Unresolved complaints past the last working day of their due day's month",
            registry=registry,
        )


#: `created_at` of the row first in the queue: the first entry of the primary key (ids
#: follow insertion), so one index step however long the outbox is. Not min(available_at):
#: a retried row's available_at moves on at every try, so an outbox nobody can send from
#: would look young for ever.
OLDEST_QUEUED = select(schema.outbox.c.created_at).order_by(schema.outbox.c.id).limit(1)


async def outbox_oldest_queued_at(ctx: AppContext) -> datetime | None:
    async with ctx.store.read() as conn:
        first: datetime | None = await conn.scalar(OLDEST_QUEUED)
    return first


def refresh_worker_view(ctx: AppContext, gauges: OpsGauges) -> None:
    """The series from this worker's memory; called before any database read, so that
    they stay current while the database does not answer."""
    view = ctx.status
    if isinstance(view, WorkerView):
        _refresh_worker(view, gauges)


async def refresh_ops_store(ctx: AppContext, gauges: OpsGauges) -> None:
    """The series from the database: bounded reads (the complaint clock reads the
    working queue only)."""
    now = ctx.clock()
    last = await last_daily_acknowledgement(ctx.store)
    last_at = None if last is None else last[1]
    gauges.ap2t_last_acknowledged.set(0 if last_at is None else last_at.timestamp())
    interval = timedelta(hours=ctx.settings.sla.ap2t_batch_interval_h)
    gauges.ap2t_overdue.set(1 if ap2t_late(last_at, now, interval) else 0)
    queued = await outbox_oldest_queued_at(ctx)
    gauges.outbox_oldest_age.set(0 if queued is None else max(0.0, (now - queued).total_seconds()))
    async with ctx.store.read() as conn:
        clock = await complaint_clock(conn, complaint_calendar(), now)
    gauges.complaints_open.set(clock.open)
    gauges.complaints_overdue.set(clock.overdue)
    gauges.complaints_past_month_end.set(clock.past_month_end)


def _refresh_worker(view: WorkerView, gauges: OpsGauges) -> None:
    # Cleared first: a modem or gateway no longer known leaves no stale series behind.
    modem_gauges = (
        gauges.modem_up,
        gauges.modem_no_network,
        gauges.modem_signal_percent,
        gauges.modem_state_timestamp,
    )
    for gauge in modem_gauges:
        gauge.clear()
    for modem in view.modem_readings():
        labels = (modem.gateway, modem.modem)
        gauges.modem_up.labels(*labels).set(1 if modem.up else 0)
        gauges.modem_no_network.labels(*labels).set(1 if modem.no_network else 0)
        gauges.modem_state_timestamp.labels(*labels).set(modem.since.timestamp())
        if modem.signal_percent is not None:
            gauges.modem_signal_percent.labels(*labels).set(modem.signal_percent)
    gauges.p2apst_link_up.clear()
    gauges.p2apst_link_down_seconds.clear()
    link = view.p2apst_link()
    if link is not None:
        gauges.p2apst_link_up.labels(link.worker).set(1 if link.up else 0)
        gauges.p2apst_link_down_seconds.labels(link.worker).set(link.down_for_s)
    gauges.spool_rows.clear()
    gauges.spool_timestamp.clear()
    for spool in view.spool_readings():
        for state, rows in sorted(spool.rows.items()):
            gauges.spool_rows.labels(spool.gateway, state).set(rows)
        gauges.spool_timestamp.labels(spool.gateway).set(spool.at.timestamp())
