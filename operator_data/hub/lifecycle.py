"""A purchase's lifecycle, written once as data: which event moves a purchase from which
states to which, who applies it, and what else it writes.

`store/states.TRANSACTION_MACHINE` says which moves are legal at all; this table says
which event makes each one happen. Every module that moves a purchase takes its source
states from here (the conditional UPDATE is the state check), so a state added or a move
changed is changed in one place, and `tests/operator_data/test_lifecycle.py` proves that
every step is legal, that every legal move has its event, and that the picture in
`docs/architecture.md` is this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from operator_data.store.states import TRANSACTION_MACHINE, TransactionState

T = TransactionState


class PurchaseEvent(StrEnum):
    """What happens to a purchase, in the order it usually happens."""

    ACCEPTED = "accepted"  # BELI with the right PIN: the purchase is recorded
    JOURNALLED = "journalled"  # the 2200 is journalled, about to go out
    UNANSWERED = "unanswered"  # no 2210 in time: its outcome is asked with advices
    PAID = "paid"  # an approved 2210 / 2230 carrying the token
    DECLINED = "declined"  # a refused 2210 / 2230, or the 2110 found no meter
    PUSHED = "pushed"  # P2APST pushed a token bought elsewhere (no 2200 of ours)
    TOKEN_SENT = "token_sent"  # the network took the token frame
    METER_APPLIED = "meter_applied"  # the meter's TOKEN_RESULT: accepted (or USED, resent)
    METER_REFUSED = "meter_refused"  # the meter's TOKEN_RESULT: refused
    METER_SILENT = "meter_silent"  # no TOKEN_RESULT within sla.meter_answer_s
    REPORT_ACKNOWLEDGED = "report_acknowledged"  # P2APST took the meter's outcome


@dataclass(frozen=True, slots=True)
class Step:
    """One event's move: from any of `sources` (none: the purchase is created) through
    `via` (stamped on the way, in order) to `target`; `handler` applies it, writing
    `effects` in the same unit of work."""

    event: PurchaseEvent
    sources: frozenset[TransactionState]
    target: TransactionState
    handler: str
    effects: str
    via: tuple[TransactionState, ...] = ()

    @property
    def creates(self) -> bool:
        return not self.sources

    def path(self, source: TransactionState | None) -> tuple[TransactionState, ...]:
        """The states a purchase passes from `source` (None: created) to the target."""
        return (*((source,) if source is not None else ()), *self.via, self.target)


def _step(
    event: PurchaseEvent,
    sources: tuple[TransactionState, ...],
    target: TransactionState,
    handler: str,
    effects: str,
    via: tuple[TransactionState, ...] = (),
) -> Step:
    return Step(event, frozenset(sources), target, handler, effects, via)


E = PurchaseEvent
_OPEN = (T.REQUESTED, T.SUBMITTED, T.ADVISING)

#: The lifecycle, one step per event, in the order of the picture in docs/architecture.md.
STEPS: Mapping[PurchaseEvent, Step] = {
    s.event: s
    for s in (
        _step(
            E.ACCEPTED,
            (),
            T.REQUESTED,
            "customer.answer_commands (batched)",
            "SMS processed + charged; PURCHASE_ACCEPTED queued",
        ),
        _step(
            E.JOURNALLED,
            (T.REQUESTED,),
            T.SUBMITTED,
            "journal.HubPurchaseJournal.begin (batched)",
            "the 2200 journalled (hub_purchases); switcher_ref = transaction id",
        ),
        _step(
            E.UNANSWERED,
            (T.SUBMITTED,),
            T.ADVISING,
            "journal.HubPurchaseJournal.advising",
            "none (the client sends 2220, then 2221 repeats)",
        ),
        _step(
            E.PAID,
            (T.SUBMITTED, T.ADVISING),
            T.TOKEN_ISSUED,
            "token_issue.issue_tokens (batched)",
            "token sealed; hub_deliveries row; TOKEN_DELIVERY frame queued",
        ),
        _step(
            E.DECLINED,
            _OPEN,
            T.DECLINED,
            "declines.apply_declines (batched)",
            "response code kept; PURCHASE_FAILED queued",
        ),
        _step(
            E.PUSHED,
            (),
            T.TOKEN_ISSUED,
            "push.push_token",
            "token sealed; the same delivery as a paid 2210",
            via=(T.REQUESTED, T.SUBMITTED),
        ),
        _step(
            E.TOKEN_SENT,
            (T.TOKEN_ISSUED, T.METER_TIMEOUT),
            T.TOKEN_SENT,
            "status_batch.tokens_sent (batched)",
            "SLA token_to_network (from TOKEN_ISSUED)",
        ),
        _step(
            E.METER_APPLIED,
            (T.TOKEN_SENT, T.METER_TIMEOUT),
            T.APPLIED,
            "token_batch.apply_token_results (batched)",
            "delivery finished; receipt queued (sealed); TokenReport; SLA meter_answer",
        ),
        _step(
            E.METER_REFUSED,
            (T.TOKEN_SENT, T.METER_TIMEOUT),
            T.METER_REJECTED,
            "token_batch.apply_token_results (batched)",
            "delivery finished; TOKEN_REJECTED queued + helpdesk item; TokenReport",
        ),
        _step(
            E.METER_SILENT,
            (T.TOKEN_SENT,),
            T.METER_TIMEOUT,
            "delivery.sweep_deliveries",
            "the token again under a new counter, up to hub.token_resends; then a "
            "helpdesk item and TOKEN_REJECTED",
        ),
        _step(
            E.REPORT_ACKNOWLEDGED,
            (T.APPLIED, T.METER_REJECTED, T.METER_TIMEOUT),
            T.REPORTED,
            "delivery.reports_acknowledged (batched)",
            "SLA report_to_p2apst",
        ),
    )
}


def step(event: PurchaseEvent) -> Step:
    return STEPS[event]


def sources(*events: PurchaseEvent) -> frozenset[TransactionState]:
    """The states from which any of `events` moves a purchase."""
    return frozenset().union(*(STEPS[e].sources for e in events))


#: A purchase P2APST has not answered yet: the purchase driver and the sweep own it.
OPEN: frozenset[TransactionState] = sources(E.DECLINED)
#: The meter has answered (or the outcome has been reported): nothing more to deliver.
FINISHED: frozenset[TransactionState] = frozenset(
    {STEPS[E.METER_APPLIED].target, STEPS[E.METER_REFUSED].target, T.REPORTED}
)
#: A meter's TOKEN_RESULT is taken in these (from TOKEN_ISSUED: it overtook the send
#: result, so the purchase passes TOKEN_SENT first).
ANSWERABLE: frozenset[TransactionState] = sources(E.TOKEN_SENT, E.METER_APPLIED)
#: A supervisor may resend the token: it went out (or was about to) and the meter has not
#: said it applied it. Safe: a meter refuses a TID twice.
RESENDABLE: frozenset[TransactionState] = ANSWERABLE


def _starts(s: Step) -> list[TransactionState | None]:
    return [*sorted(s.sources)] if s.sources else [None]


def illegal_steps(steps: Mapping[PurchaseEvent, Step] = STEPS) -> list[str]:
    """Every step's move the transaction machine does not allow (empty: all legal)."""
    wrong: list[str] = []
    for s in steps.values():
        for source in _starts(s):
            path = s.path(source)
            if source is None and path[0] not in TRANSACTION_MACHINE.initial:
                wrong.append(f"{s.event}: {path[0]} is not a state a purchase starts in")
            for here, there in pairwise(path):
                if not TRANSACTION_MACHINE.allowed(here, there):
                    wrong.append(f"{s.event}: {here} -> {there}")
    return wrong


def unstepped_moves(steps: Mapping[PurchaseEvent, Step] = STEPS) -> list[str]:
    """Every move the transaction machine allows that no event makes (empty: none)."""
    made = {
        (here, there)
        for s in steps.values()
        for source in _starts(s)
        for here, there in pairwise(s.path(source))
    }
    return [
        f"{here} -> {there}"
        for here, nexts in TRANSACTION_MACHINE.transitions.items()
        for there in sorted(nexts)
        if (here, there) not in made
    ]


def picture() -> str:
    """The lifecycle as the table docs/architecture.md shows (kept equal by a test)."""
    rows = [("event", "state move", "applied by", "effects in the same unit of work")]
    for s in STEPS.values():
        start = "(new)" if s.creates else "|".join(sorted(str(x) for x in s.sources))
        move = " -> ".join([start, *(str(v) for v in s.via), str(s.target)])
        rows.append((str(s.event), move, s.handler, s.effects))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(row[3]))
    return "\n".join(line.rstrip() for line in lines)
