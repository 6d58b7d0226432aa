"""What the hub plugs into the helpdesk app: live status, AP2T batch history, actions.

The app only depends on these small protocols; the defaults show nothing (status,
batches) or act directly on the store and registry where that is the whole job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update

from operator_data.registry import Registry
from operator_data.registry.models import SimSwap
from operator_data.store import schema
from operator_data.store.transitions import NotFound


@dataclass(frozen=True, slots=True)
class ModemStatus:
    modem_id: str
    gateway_id: str
    operator: str | None = None
    signal_percent: int | None = None  # None: unknown
    registered: bool = False
    queue_depth: int = 0
    last_seen: datetime | None = None
    detail: str | None = None
    imei: str | None = None  # as the gateway reports it (None: not reported)


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    gateway_id: str
    connected: bool
    last_seen: datetime | None = None
    modems: tuple[ModemStatus, ...] = field(default_factory=tuple)


class StatusProvider(Protocol):
    """Live modem-pool / gateway status, filled in by the hub."""

    async def gateways(self) -> Sequence[GatewayStatus]: ...


class EmptyStatus:
    async def gateways(self) -> Sequence[GatewayStatus]:
        return ()


@dataclass(frozen=True, slots=True)
class Ap2tBatch:
    batch_id: str
    day: str  # ISO date the batch covers
    records: int
    state: str  # e.g. sent | acknowledged | failed
    sent_at: datetime | None = None
    acknowledged_at: datetime | None = None
    detail: str | None = None


class Ap2tHistoryProvider(Protocol):
    """The daily AP2T batches, newest first, filled in by the hub."""

    async def batches(self, limit: int) -> Sequence[Ap2tBatch]: ...


class NoAp2tHistory:
    async def batches(self, limit: int) -> Sequence[Ap2tBatch]:
        return ()


class ActionUnavailable(RuntimeError):
    """This installation has no implementation for the action (the hub is not attached)."""


class Actions(Protocol):
    """Supervisor actions. Each returns a short description of what was done and raises
    NotFound for an unknown subject, ActionUnavailable when it cannot be done here."""

    async def resend_token(self, transaction_id: str, actor: str, reason: str) -> str: ...

    async def unlock_pin(self, msisdn: str, actor: str) -> str: ...

    async def approve_sim_swap(self, swap_id: int, actor: str) -> str: ...

    async def acknowledge_alarm(self, alarm_id: int, actor: str) -> str: ...


class RegistryActions:
    """Everything that is a plain registry/store update; resending a token needs the hub's
    token-delivery workflow (framing, comms key, outbox), so it is unavailable here."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def resend_token(self, transaction_id: str, actor: str, reason: str) -> str:
        raise ActionUnavailable("resending a token needs the hub's delivery workflow")

    async def unlock_pin(self, msisdn: str, actor: str) -> str:
        p = schema.customer_phones
        async with self._registry.store.begin() as conn:
            result = await conn.execute(
                update(p)
                .where(p.c.msisdn == msisdn)
                .values(failed_attempts=0, locked_until=None, updated_at=self._registry.now())
            )
            if result.rowcount != 1:
                raise NotFound(f"phone {msisdn} is not registered")
            await self._registry.audit(conn, actor, "pin.unlock", "phone", msisdn)
        return f"PIN of {msisdn} unlocked"

    async def approve_sim_swap(self, swap_id: int, actor: str) -> str:
        swap: SimSwap = await self._registry.approve_sim_swap(swap_id, approved_by=actor)
        return f"SIM swap #{swap.swap_id} of meter {swap.meter_number} approved"

    async def acknowledge_alarm(self, alarm_id: int, actor: str) -> str:
        a = schema.alarms
        async with self._registry.store.begin() as conn:
            exists = await conn.scalar(select(a.c.id).where(a.c.id == alarm_id))
            if exists is None:
                raise NotFound(f"alarm {alarm_id} does not exist")
            result = await conn.execute(
                update(a)
                .where(a.c.id == alarm_id, a.c.acknowledged_at.is_(None))
                .values(acknowledged_by=actor, acknowledged_at=self._registry.now())
            )
            if result.rowcount == 1:
                await self._registry.audit(conn, actor, "alarm.acknowledge", "alarm", str(alarm_id))
                return f"alarm {alarm_id} acknowledged"
        return f"alarm {alarm_id} was already acknowledged"
