"""State transitions that refuse illegal moves and stamp the history row atomically.

The move is one conditional UPDATE (`WHERE state IN (legal predecessors)`), so two
workers racing on the same subject cannot both win; the history row is written on the
same connection, i.e. in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.store import schema
from operator_data.store.bulk import insert_many
from operator_data.store.states import (
    MESSAGE_MACHINE,
    METER_MACHINE,
    TRANSACTION_MACHINE,
    IllegalTransition,
    MessageState,
    MeterState,
    StateMachine,
    TransactionState,
)
from operator_data.store.types import utcnow

S = TypeVar("S", bound=StrEnum)


class NotFound(LookupError):
    """No row with that key."""


@dataclass(frozen=True, slots=True)
class Tracked(Generic[S]):
    """Where a machine's subjects live: main table, its key, and the history table."""

    machine: StateMachine[S]
    table: Table
    key: Column[Any]
    history: Table
    history_key: Column[Any]


MESSAGES: Tracked[MessageState] = Tracked(
    MESSAGE_MACHINE,
    schema.messages,
    schema.messages.c.id,
    schema.message_states,
    schema.message_states.c.message_id,
)
TRANSACTIONS: Tracked[TransactionState] = Tracked(
    TRANSACTION_MACHINE,
    schema.transactions,
    schema.transactions.c.id,
    schema.transaction_states,
    schema.transaction_states.c.transaction_id,
)
METERS: Tracked[MeterState] = Tracked(
    METER_MACHINE,
    schema.meters,
    schema.meters.c.meter_number,
    schema.meter_states,
    schema.meter_states.c.meter_number,
)


async def transition(
    conn: AsyncConnection,
    tracked: Tracked[S],
    subject: str,
    target: S,
    *,
    at: datetime | None = None,
    detail: str | None = None,
    extra_values: dict[str, Any] | None = None,
    history_values: dict[str, Any] | None = None,
) -> S:
    """Move `subject` to `target`; return the state it left. Raises IllegalTransition
    (naming the current state) or NotFound. `extra_values` are set on the main row in the
    same UPDATE (e.g. a reject reason)."""
    when = at or utcnow()
    machine = tracked.machine
    predecessors = machine.predecessors(target)
    state_col = tracked.table.c.state
    if not predecessors:
        current = await _current(conn, tracked, subject)
        raise IllegalTransition(machine.name, subject, current, target)
    # The conditional UPDATE below is what makes the move safe against a concurrent
    # transition. The caller learns the state it left: with one possible predecessor that
    # is it (most moves on the hot path: a statement saved each), else it is read first.
    current_state = (
        next(iter(predecessors))
        if len(predecessors) == 1
        else await _current(conn, tracked, subject)
    )
    values: dict[str, Any] = {"state": target.value, "state_at": when}
    if extra_values:
        values.update(extra_values)
    result = await conn.execute(
        update(tracked.table)
        .where(tracked.key == subject, state_col.in_([s.value for s in predecessors]))
        .values(**values)
    )
    if result.rowcount != 1:
        current = await _current(conn, tracked, subject)
        raise IllegalTransition(machine.name, subject, current, target)
    row: dict[str, Any] = {tracked.history_key.name: subject, "state": target.value, "at": when}
    if "detail" in tracked.history.c:
        row["detail"] = detail
    if history_values:
        row.update(history_values)
    await conn.execute(insert(tracked.history).values(**row))
    return machine.states(current_state)


async def advance(
    conn: AsyncConnection,
    tracked: Tracked[S],
    subject: str,
    target: S,
    *,
    at: datetime,
    only_from: Sequence[S] | None = None,
    detail: str | None = None,
    extra_values: dict[str, Any] | None = None,
) -> bool:
    """Move `subject` to `target` if it is in a legal predecessor state (and, with
    `only_from`, one of those): the conditional UPDATE is the state check, nothing is read
    first. False (and nothing written) when the subject is elsewhere or missing, e.g. a
    twin of this work got there first. On PostgreSQL the UPDATE also locks the row, so a
    concurrent twin waits and then finds it moved."""
    allowed = set(tracked.machine.predecessors(target))
    if only_from is not None:
        allowed &= set(only_from)
    if not allowed:
        return False
    values: dict[str, Any] = {"state": target.value, "state_at": at}
    if extra_values:
        values.update(extra_values)
    result = await conn.execute(
        update(tracked.table)
        .where(tracked.key == subject, tracked.table.c.state.in_([s.value for s in allowed]))
        .values(**values)
    )
    if result.rowcount != 1:
        return False
    row: dict[str, Any] = {tracked.history_key.name: subject, "state": target.value, "at": at}
    if "detail" in tracked.history.c:
        row["detail"] = detail
    await conn.execute(insert(tracked.history).values(**row))
    return True


async def transition_many(
    conn: AsyncConnection,
    tracked: Tracked[S],
    subjects: Sequence[str],
    target: S,
    *,
    at: datetime,
    detail: str | None = None,
    only_from: Sequence[S] | None = None,
    extra_values: dict[str, Any] | None = None,
) -> set[str]:
    """Move every subject that is in a legal predecessor state (and, with `only_from`, one
    of those) to `target`, set-wise: one conditional UPDATE and one multi-row history
    INSERT, whatever the number of subjects. `extra_values` are the same for every row (a
    column expression such as `table.c.id` sets each row from itself). Returns the
    subjects moved; the others (moved on meanwhile) are left as they are."""
    if not subjects:
        return set()
    allowed = set(tracked.machine.predecessors(target))
    if only_from is not None:
        allowed &= set(only_from)
    if not allowed:
        return set()
    result = await conn.execute(
        update(tracked.table)
        .where(
            tracked.key.in_(list(subjects)),
            tracked.table.c.state.in_(sorted(s.value for s in allowed)),
        )
        .values(state=target.value, state_at=at, **(extra_values or {}))
        .returning(tracked.key)
    )
    moved = {str(key) for key in result.scalars()}
    rows: list[dict[str, Any]] = [
        {tracked.history_key.name: subject, "state": target.value, "at": at}
        | ({"detail": detail} if "detail" in tracked.history.c else {})
        for subject in subjects
        if subject in moved
    ]
    await insert_many(conn, tracked.history, rows)
    return moved


async def start(
    conn: AsyncConnection,
    tracked: Tracked[S],
    subject: str,
    state: S,
    *,
    at: datetime,
    detail: str | None = None,
    history_values: dict[str, Any] | None = None,
) -> None:
    """Write the first history row of a subject just inserted in `state` (must be initial)."""
    tracked.machine.check(subject, None, state)
    row: dict[str, Any] = {tracked.history_key.name: subject, "state": state.value, "at": at}
    if "detail" in tracked.history.c:
        row["detail"] = detail
    if history_values:
        row.update(history_values)
    await conn.execute(insert(tracked.history).values(**row))


async def _current(conn: AsyncConnection, tracked: Tracked[S], subject: str) -> str:
    state = await conn.scalar(select(tracked.table.c.state).where(tracked.key == subject))
    if state is None:
        raise NotFound(f"{tracked.machine.name} {subject} does not exist")
    return str(state)


@dataclass(frozen=True, slots=True)
class StateStamp:
    state: str
    at: datetime
    detail: str | None


async def history(conn: AsyncConnection, tracked: Tracked[S], subject: str) -> list[StateStamp]:
    """Every state the subject has been in, oldest first."""
    h = tracked.history
    rows = await conn.execute(
        select(h.c.state, h.c.at, h.c.detail)
        .where(tracked.history_key == subject)
        .order_by(h.c.at, h.c.id)
    )
    return [StateStamp(r.state, r.at, r.detail) for r in rows]
