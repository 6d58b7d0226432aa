"""The gateway status page's figures: per modem what the hub's ModemBoard knows (state,
operator, signal, IMEI when the gateway reports them) beside the message log's counters
of the last 24 hours and the outbox queue per gateway.

The queue is counted from the outbox itself, grouped by the gateway a row is routed to,
so the page's queues add up to the outbox depth it shows (rows not routed yet are shown
as their own line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.outbox_view import queue_by_gateway
from operator_data.api.providers import GatewayStatus
from operator_data.store import schema
from operator_data.store.states import Direction, MessageState

msg = schema.messages
WINDOW = timedelta(hours=24)
_SENT = frozenset({MessageState.SENT.value, MessageState.DELIVERED.value})
_FAILED = frozenset({MessageState.FAILED.value, MessageState.EXPIRED.value})


async def modem_counters(
    conn: AsyncConnection, since: datetime
) -> dict[tuple[str, str], dict[str, int]]:
    """(gateway, modem) -> sent / received / failed since `since` (ix_messages_created_at)."""
    rows = await conn.execute(
        select(msg.c.gateway_id, msg.c.modem_id, msg.c.direction, msg.c.state, func.count())
        .where(msg.c.created_at >= since, msg.c.gateway_id.is_not(None))
        .group_by(msg.c.gateway_id, msg.c.modem_id, msg.c.direction, msg.c.state)
    )
    counters: dict[tuple[str, str], dict[str, int]] = {}
    for gateway, modem, direction, state, n in rows:
        c = counters.setdefault((gateway, modem or "?"), {"sent": 0, "received": 0, "failed": 0})
        if direction == Direction.IN.value:
            c["received"] += int(n)
        elif state in _SENT:
            c["sent"] += int(n)
        elif state in _FAILED:
            c["failed"] += int(n)
    return counters


async def board(
    conn: AsyncConnection, gateways: Sequence[GatewayStatus], now: datetime
) -> dict[str, Any]:
    counters = await modem_counters(conn, now - WINDOW)
    queues = await queue_by_gateway(conn)
    names = sorted({g.gateway_id for g in gateways} | {g for g, _ in counters})
    known = {g.gateway_id: g for g in gateways}
    shown = []
    for name in names:
        status = known.get(name)
        modems = []
        seen: set[str] = set()
        for m in status.modems if status else ():
            seen.add(m.modem_id)
            modems.append({**asdict(m), **_zero(counters.get((name, m.modem_id)))})
        for (gateway, modem), c in sorted(counters.items()):
            if gateway == name and modem not in seen:
                # Heard of only in the log: the hub has no live state for it.
                modems.append({"modem_id": modem, "gateway_id": name, "known": False, **c})
        shown.append(
            {
                "gateway_id": name,
                "connected": bool(status and status.connected),
                "last_seen": status.last_seen if status else None,
                "queue": queues.get(name, 0),
                "modems": modems,
            }
        )
    return {
        "gateways": shown,
        "unrouted": queues.get(None, 0),
        # Rows routed to a gateway the board does not know yet are counted here too.
        "other_queue": sum(n for g, n in queues.items() if g is not None and g not in names),
        "outbox_pending": sum(queues.values()),
        "window_hours": int(WINDOW.total_seconds() // 3600),
        "at": now,
    }


def _zero(c: dict[str, int] | None) -> dict[str, Any]:
    return {"known": True, **(c or {"sent": 0, "received": 0, "failed": 0})}
