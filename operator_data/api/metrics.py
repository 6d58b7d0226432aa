"""Prometheus metrics in a per-app CollectorRegistry, refreshed from the database on
each scrape (the database is the truth; several app processes then agree)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from operator_data.api import queries
from operator_data.api.ops_metrics import OpsGauges, refresh_ops_store, refresh_worker_view
from operator_data.api.present import wib_day_start
from operator_data.store.outbox import pending_count

if TYPE_CHECKING:
    from operator_data.api.deps import AppContext


class AppMetrics:
    """One app's registry and gauges; nothing is registered globally."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sms_today = Gauge(
            "pintar_sms_today",
            "SMS logged since midnight WIB, by direction, flow and current state",
            ["direction", "flow", "state"],
            registry=self.registry,
        )
        self.sla_breaches_today = Gauge(
            "pintar_sla_breaches_today",
            "SLA events that missed their target since midnight WIB, by metric",
            ["metric"],
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "pintar_outbox_pending", "Outbound SMS waiting in the outbox", registry=self.registry
        )
        #: Modems, P2APST link, spools, AP2T duty, outbox age (operator_data/api/ops_metrics.py).
        self.ops = OpsGauges(self.registry)


async def refresh(ctx: AppContext) -> None:
    refresh_worker_view(ctx, ctx.metrics.ops)  # memory: before the database can fail
    # Counting only today's rows keeps a scrape to an index range on ix_messages_created_at
    # instead of a scan of the whole log.
    since = wib_day_start(ctx.clock())
    async with ctx.store.read() as conn:
        counts = await queries.message_counts(conn, since)
        breaches = await queries.breach_counts(conn, since)
        pending = await pending_count(conn)
    m = ctx.metrics
    m.sms_today.clear()
    for direction, flow, state, n in counts:
        m.sms_today.labels(direction, flow, state).set(n)
    m.sla_breaches_today.clear()
    for metric, n in breaches:
        m.sla_breaches_today.labels(metric).set(n)
    m.outbox_pending.set(pending)
    await refresh_ops_store(ctx, m.ops)


class _StoreGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "pintar_store_up",
            "1 while the store takes calls and its write probe passes, 0 while it stalls",
            registry=registry,
        )
        self.probe_seconds = Gauge(
            "pintar_store_probe_seconds",
            "How long the last write probe of the store took (NaN: it did not finish)",
            registry=registry,
        )


_store_gauges: weakref.WeakKeyDictionary[CollectorRegistry, _StoreGauges] = (
    weakref.WeakKeyDictionary()
)


def export_store_health(ctx: AppContext) -> None:
    """The store's health as this process has seen it (`Store.health`, store_health.py),
    from memory: it must be scraped when the database answers nothing."""
    registry = ctx.metrics.registry
    gauges = _store_gauges.get(registry)
    if gauges is None:
        gauges = _store_gauges[registry] = _StoreGauges(registry)
    health = ctx.store.health
    gauges.up.set(1 if health.up else 0)
    seconds = health.probe_seconds
    gauges.probe_seconds.set(float("nan") if seconds is None else seconds)
