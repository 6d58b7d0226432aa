"""How many SMS the hub answers, per number and in all: the short code is not a reflector.

Every customer SMS is logged and processed, but not every one is answered. Without a bound,
any number (a stranger's, a spoofed one, an auto-responder's) makes the hub send an SMS per
SMS, which costs money and, with an auto-responder at the other end, never stops. So, per
batch of answers, decided in memory (`decide`) from one locking read of the numbers'
budgets, then written back with one statement:

- a number gets at most `hub.reply_budget_per_msisdn` answers per
  `hub.reply_budget_window_s`, and the hub at most `hub.reply_budget_global` per
  `hub.reply_budget_global_window_s` (the row `*`);
- an unregistered number is answered at most once per `hub.unregistered_reply_every_s`;
- an SMS that looks like a reply (an auto-responder's, or an echo of the hub's own text)
  is answered at most once per `hub.reply_like_every_s` per number;
- a purchase's acceptance is always sent (the customer paid): it counts, never waits.

What is not answered is still processed, with the reason in its state history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from operator_data.settings import HubSettings
from operator_data.store.bulk import upsert
from operator_data.store.chunks import chunks
from operator_data.store.workflow_schema import reply_budgets

GLOBAL = "*"

# Auto-responders and forwarded echoes, in the languages customers' phones use.
_REPLY_LIKE = re.compile(
    r"^\s*(re|fw|fwd|balas)\s*:|auto[\s-]?reply|autoreply|out of office|balasan otomatis"
    r"|pesan otomatis|jawaban otomatis|sedang tidak aktif|tidak dapat dihubungi"
    r"|listrik pintar",  # every answer of the hub carries its name: an echo of one
    re.IGNORECASE,
)


def looks_like_reply(text: str) -> bool:
    """An SMS that answers something rather than asks (see the module)."""
    return bool(_REPLY_LIKE.search(text))


class Kind(StrEnum):
    PURCHASE = "purchase"  # an acceptance: always sent
    UNREGISTERED = "unregistered"
    REPLY_LIKE = "reply-like"
    ANSWER = "answer"


class Silence(StrEnum):
    """Why an SMS is not answered."""

    NUMBER_BUDGET = "reply budget of this number spent"
    GLOBAL_BUDGET = "reply budget of the hub spent"
    UNREGISTERED = "unregistered number answered recently"
    REPLY_LIKE = "looks like a reply: answered recently"


@dataclass(frozen=True, slots=True)
class Ask:
    """One answer the hub would send: to `msisdn`, of `kind`, for message `key`."""

    key: str
    msisdn: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Budget:
    msisdn: str
    window_start: datetime
    replies: int
    unregistered_at: datetime | None = None
    reply_like_at: datetime | None = None


def _fresh(budget: Budget | None, msisdn: str, now: datetime, window: timedelta) -> Budget:
    if budget is None:
        return Budget(msisdn, now, 0)
    if budget.window_start + window <= now:
        return replace(budget, window_start=now, replies=0)
    return budget


def decide(
    asks: Sequence[Ask], budgets: Mapping[str, Budget], now: datetime, settings: HubSettings
) -> tuple[dict[str, Silence], dict[str, Budget]]:
    """Which asks stay unanswered (by key, with why) and every budget as it is after the
    batch (by number). No I/O."""
    window = timedelta(seconds=settings.reply_budget_window_s)
    global_window = timedelta(seconds=settings.reply_budget_global_window_s)
    after: dict[str, Budget] = {}

    def budget(msisdn: str, span: timedelta) -> Budget:
        if msisdn not in after:
            after[msisdn] = _fresh(budgets.get(msisdn), msisdn, now, span)
        return after[msisdn]

    silent: dict[str, Silence] = {}
    for ask in asks:
        mine = budget(ask.msisdn, window)
        everyone = budget(GLOBAL, global_window)
        if ask.kind is not Kind.PURCHASE:
            why = _silence(ask, mine, everyone, now, settings)
            if why is not None:
                silent[ask.key] = why
                continue
        if ask.kind is Kind.UNREGISTERED:
            mine = replace(mine, unregistered_at=now)
        elif ask.kind is Kind.REPLY_LIKE:
            mine = replace(mine, reply_like_at=now)
        after[ask.msisdn] = replace(mine, replies=mine.replies + 1)
        after[GLOBAL] = replace(everyone, replies=everyone.replies + 1)
    return silent, after


def _silence(
    ask: Ask, mine: Budget, everyone: Budget, now: datetime, settings: HubSettings
) -> Silence | None:
    if ask.kind is Kind.UNREGISTERED and _recent(
        mine.unregistered_at, now, settings.unregistered_reply_every_s
    ):
        return Silence.UNREGISTERED
    if ask.kind is Kind.REPLY_LIKE and _recent(
        mine.reply_like_at, now, settings.reply_like_every_s
    ):
        return Silence.REPLY_LIKE
    if mine.replies >= settings.reply_budget_per_msisdn:
        return Silence.NUMBER_BUDGET
    if everyone.replies >= settings.reply_budget_global:
        return Silence.GLOBAL_BUDGET
    return None


def _recent(at: datetime | None, now: datetime, seconds: float) -> bool:
    return at is not None and now - at < timedelta(seconds=seconds)


async def apply(
    conn: AsyncConnection, asks: Sequence[Ask], now: datetime, settings: HubSettings
) -> dict[str, Silence]:
    """In the caller's unit of work: the numbers' budgets read and locked (in order), the
    decision, the budgets written back (one upsert). Returns the asks not to answer."""
    if not asks:
        return {}
    t = reply_budgets
    numbers = sorted({a.msisdn for a in asks} | {GLOBAL})
    budgets: dict[str, Budget] = {}
    for part in chunks(numbers):
        query = select(t).where(t.c.msisdn.in_(part)).order_by(t.c.msisdn)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        for row in await conn.execute(query):
            budgets[row.msisdn] = Budget(
                row.msisdn, row.window_start, row.replies, row.unregistered_at, row.reply_like_at
            )
    silent, after = decide(asks, budgets, now, settings)
    changed = [b for n, b in after.items() if budgets.get(n) != b]
    if changed:
        statement = upsert(conn, t)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.msisdn],
                set_={
                    "window_start": statement.excluded.window_start,
                    "replies": statement.excluded.replies,
                    "unregistered_at": statement.excluded.unregistered_at,
                    "reply_like_at": statement.excluded.reply_like_at,
                },
            ),
            [
                {
                    "msisdn": b.msisdn,
                    "window_start": b.window_start,
                    "replies": b.replies,
                    "unregistered_at": b.unregistered_at,
                    "reply_like_at": b.reply_like_at,
                }
                for b in changed
            ],
        )
    return silent
