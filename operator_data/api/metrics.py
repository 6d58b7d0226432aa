"""Prometheus metrics in a per-app CollectorRegistry, refreshed from the database on
each scrape (the database is the truth; several app processes then agree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

from operator_data.api import queries
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


async def refresh(ctx: AppContext) -> None:
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
