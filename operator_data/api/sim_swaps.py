"""SIM swaps as the helpdesk sees them: the list (pending first) and one swap, with the
old and new SIM's numbers masked for the helpdesk role as everywhere else (the CLI,
run by the operator, passes the admin role).

Requesting, approving and rejecting go through `Registry` (four eyes on approval, the
state machine, its own `sim_swap.*` audit rows); this module only reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.api.auth import Role
from operator_data.api.present import phone_for
from operator_data.store import schema
from operator_data.store.states import SimSwapState

STATES = tuple(state.value for state in SimSwapState)
MAX_LIST = 200


class BadSwapFilter(ValueError):
    """A list filter the page and API refuse (said so, never ignored)."""


def parse_state(value: str | None) -> SimSwapState | None:
    """'' / None: every state; otherwise one of STATES, else BadSwapFilter."""
    if not value:
        return None
    try:
        return SimSwapState(value)
    except ValueError:
        raise BadSwapFilter(
            f"state must be one of {', '.join(STATES)}, not {value[:32]!r}"
        ) from None


async def list_swaps(
    conn: AsyncConnection,
    role: Role,
    *,
    state: SimSwapState | None = None,
    meter_number: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Newest first; requested ones before decided ones when no state is asked for."""
    w, old, new = schema.sim_swaps, schema.sims.alias("old"), schema.sims.alias("new")
    query = (
        select(w, old.c.msisdn.label("old_msisdn"), new.c.msisdn.label("new_msisdn"))
        .select_from(
            w.outerjoin(old, old.c.sim_id == w.c.old_sim_id).join(
                new, new.c.sim_id == w.c.new_sim_id
            )
        )
        .order_by(
            (w.c.state != SimSwapState.REQUESTED.value), w.c.requested_at.desc(), w.c.swap_id.desc()
        )
        .limit(min(max(limit, 1), MAX_LIST))
    )
    if state is not None:
        query = query.where(w.c.state == state.value)
    if meter_number is not None:
        query = query.where(w.c.meter_number == meter_number)
    rows = await conn.execute(query)
    return [shown(dict(r._mapping), role) for r in rows]


async def one_swap(conn: AsyncConnection, role: Role, swap_id: int) -> dict[str, Any] | None:
    w, old, new = schema.sim_swaps, schema.sims.alias("old"), schema.sims.alias("new")
    row = (
        await conn.execute(
            select(w, old.c.msisdn.label("old_msisdn"), new.c.msisdn.label("new_msisdn"))
            .select_from(
                w.outerjoin(old, old.c.sim_id == w.c.old_sim_id).join(
                    new, new.c.sim_id == w.c.new_sim_id
                )
            )
            .where(w.c.swap_id == swap_id)
        )
    ).first()
    return None if row is None else shown(dict(row._mapping), role)


def shown(row: dict[str, Any], role: Role) -> dict[str, Any]:
    return {
        "swap_id": row["swap_id"],
        "meter_number": row["meter_number"],
        "old_msisdn": phone_for(role, row["old_msisdn"]),
        "new_msisdn": phone_for(role, row["new_msisdn"]),
        "state": row["state"],
        "reason": row["reason"],
        "requested_by": row["requested_by"],
        "requested_at": row["requested_at"],
        "decided_by": row["decided_by"],
        "decided_at": row["decided_at"],
        "decision_note": row["decision_note"],
    }
