"""SLA breaches: a stage that took longer than its target (settings.sla) is written to
`sla_events`, logged, and handed to in-process listeners (e.g. a bus publisher).

The figures themselves come from the state-history tables; this only flags breaches as
they happen, so the helpdesk hears of them without waiting for the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.settings import SlaTargets
from operator_data.store import schema
from operator_data.store.bulk import insert_many

log = logging.getLogger("operator_data.hub.sla")


class Metric(StrEnum):
    TOKEN_TO_NETWORK = "token_to_network"  # token issued -> token SMS accepted by the network
    METER_ANSWER = "meter_answer"  # token SMS sent -> TOKEN_RESULT (or timeout)
    REPORT_TO_P2APST = "report_to_p2apst"  # meter's answer -> P2APST acknowledged the report


@dataclass(frozen=True, slots=True)
class SlaBreach:
    metric: Metric
    subject_type: str
    subject_id: str
    started_at: datetime
    ended_at: datetime | None  # None: still running when the target passed
    duration_ms: int
    target_ms: int


Listener = Callable[[SlaBreach], None]


class SlaMonitor:
    def __init__(self, targets: SlaTargets) -> None:
        self._targets = targets
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` for every breach (after its row is committed); returns an
        unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def target_s(self, metric: Metric) -> float:
        return {
            Metric.TOKEN_TO_NETWORK: self._targets.token_to_network_s,
            Metric.METER_ANSWER: self._targets.meter_answer_s,
            Metric.REPORT_TO_P2APST: self._targets.report_to_p2apst_s,
        }[metric]

    def measure(
        self,
        metric: Metric,
        *,
        subject_type: str,
        subject_id: str,
        started_at: datetime,
        ended_at: datetime | None,
        now: datetime,
    ) -> SlaBreach | None:
        """The breach, if the stage took (or has been running) longer than its target: a
        decision, nothing written (see `record`)."""
        end = ended_at or now
        duration_ms = int((end - started_at).total_seconds() * 1000)
        target_ms = int(self.target_s(metric) * 1000)
        if duration_ms <= target_ms:
            return None
        return SlaBreach(
            metric, subject_type, subject_id, started_at, ended_at, duration_ms, target_ms
        )

    async def record(
        self, conn: AsyncConnection, breaches: Sequence[SlaBreach], now: datetime
    ) -> None:
        """Write breaches in the caller's transaction, in one statement."""
        await insert_many(
            conn,
            schema.sla_events,
            [
                {
                    "metric": b.metric.value,
                    "subject_type": b.subject_type,
                    "subject_id": b.subject_id,
                    "started_at": b.started_at,
                    "ended_at": b.ended_at,
                    "duration_ms": b.duration_ms,
                    "target_ms": b.target_ms,
                    "met": False,
                    "recorded_at": now,
                }
                for b in breaches
            ],
        )

    async def check(
        self,
        conn: AsyncConnection,
        metric: Metric,
        *,
        subject_type: str,
        subject_id: str,
        started_at: datetime,
        ended_at: datetime | None,
        now: datetime,
    ) -> SlaBreach | None:
        """Record a breach if the stage took (or has been running) longer than its target."""
        breach = self.measure(
            metric,
            subject_type=subject_type,
            subject_id=subject_id,
            started_at=started_at,
            ended_at=ended_at,
            now=now,
        )
        if breach is not None:
            await self.record(conn, [breach], now)
        return breach

    def publish(self, breach: SlaBreach) -> None:
        log.warning(
            "SLA breach: %s of %s %s took %d ms (target %d ms)",
            breach.metric,
            breach.subject_type,
            breach.subject_id,
            breach.duration_ms,
            breach.target_ms,
        )
        for listener in list(self._listeners):
            try:
                listener(breach)
            except Exception:
                log.exception("SLA listener failed")
