"""The three state machines of the hub, written once as data.

Each machine is a table of allowed transitions; `transition()` (store/transitions.py)
refuses anything else and writes the timestamp row in the same database transaction.
SLA figures are computed from those timestamp rows, never measured separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Flow(StrEnum):
    """The five SMS flows the mobile operator carries (0066 art. 4(3)f); nothing else."""

    HUB_TO_CUSTOMER = "hub_to_customer"
    HUB_TO_METER = "hub_to_meter"
    METER_TO_HUB = "meter_to_hub"
    METER_TO_CUSTOMER = "meter_to_customer"
    CUSTOMER_TO_HUB = "customer_to_hub"


class MessageState(StrEnum):
    # outbound
    QUEUED = "queued"
    SUBMITTED = "submitted"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    # inbound
    RECEIVED = "received"
    PROCESSED = "processed"
    REJECTED = "rejected"


class TransactionState(StrEnum):
    REQUESTED = "requested"  # recorded before the 2200 goes out
    SUBMITTED = "submitted"  # 2200 handed to the P2APST link
    ADVISING = "advising"  # no 2210 in time: 2220/2221 advices until an answer (never reversed)
    TOKEN_ISSUED = "token_issued"  # approved 2210/2230 carrying the token
    DECLINED = "declined"  # P2APST refused the purchase
    TOKEN_SENT = "token_sent"  # token SMS handed to the network
    APPLIED = "applied"  # the meter reports the token accepted
    METER_REJECTED = "meter_rejected"  # the meter reports the token refused
    METER_TIMEOUT = "meter_timeout"  # no meter answer within the SLA target
    REPORTED = "reported"  # the meter outcome has been reported to P2APST


class MeterState(StrEnum):
    REQUESTED = "requested"
    CONNECTED = "connected"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class SimSwapState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"


S = TypeVar("S", bound=StrEnum)


class IllegalTransition(ValueError):
    """A move the state machine does not allow; the message names machine, subject and states."""

    def __init__(self, machine: str, subject: str, current: str | None, target: str) -> None:
        super().__init__(f"{machine} {subject}: cannot go from {current} to {target}")
        self.machine = machine
        self.subject = subject
        self.current = current
        self.target = target


@dataclass(frozen=True, slots=True)
class StateMachine(Generic[S]):
    """Allowed transitions as data: `initial` states a subject may be created in, and
    for each state the set of states it may move to (absent = terminal)."""

    name: str
    states: type[S]
    initial: frozenset[S]
    transitions: Mapping[S, frozenset[S]]

    def all_states(self) -> frozenset[S]:
        return frozenset(self.states)

    def allowed(self, current: S | None, target: S) -> bool:
        if current is None:
            return target in self.initial
        return target in self.transitions.get(current, frozenset())

    def predecessors(self, target: S) -> frozenset[S]:
        """States from which `target` may be reached (used for atomic conditional updates)."""
        return frozenset(s for s, nexts in self.transitions.items() if target in nexts)

    def is_terminal(self, state: S) -> bool:
        return not self.transitions.get(state)

    def check(self, subject: str, current: S | None, target: S) -> None:
        if not self.allowed(current, target):
            raise IllegalTransition(self.name, subject, current, target)


_M = MessageState
MESSAGE_MACHINE: StateMachine[MessageState] = StateMachine(
    name="message",
    states=MessageState,
    initial=frozenset({_M.QUEUED, _M.RECEIVED}),
    transitions={
        _M.QUEUED: frozenset({_M.SUBMITTED, _M.FAILED, _M.EXPIRED}),
        # submitted -> queued is a retry after a gateway/modem error (retries += 1)
        _M.SUBMITTED: frozenset({_M.SENT, _M.QUEUED, _M.FAILED, _M.EXPIRED}),
        _M.SENT: frozenset({_M.DELIVERED, _M.FAILED, _M.EXPIRED}),
        _M.RECEIVED: frozenset({_M.PROCESSED, _M.REJECTED}),
    },
)

# A message is charged to the customer only once it has been carried successfully;
# failed attempts and retries never are (0066 art. 6(4), QoS "per successful use").
CHARGEABLE_MESSAGE_STATES = frozenset({_M.SENT, _M.DELIVERED, _M.PROCESSED})

_T = TransactionState
TRANSACTION_MACHINE: StateMachine[TransactionState] = StateMachine(
    name="transaction",
    states=TransactionState,
    initial=frozenset({_T.REQUESTED}),
    transitions={
        _T.REQUESTED: frozenset({_T.SUBMITTED, _T.DECLINED}),
        _T.SUBMITTED: frozenset({_T.TOKEN_ISSUED, _T.DECLINED, _T.ADVISING}),
        # A prepaid purchase is never reversed: advising ends only with an answer.
        _T.ADVISING: frozenset({_T.TOKEN_ISSUED, _T.DECLINED}),
        _T.TOKEN_ISSUED: frozenset({_T.TOKEN_SENT}),
        _T.TOKEN_SENT: frozenset({_T.APPLIED, _T.METER_REJECTED, _T.METER_TIMEOUT}),
        # After a timeout the same token may be sent again; a late answer still counts.
        _T.METER_TIMEOUT: frozenset({_T.TOKEN_SENT, _T.APPLIED, _T.METER_REJECTED, _T.REPORTED}),
        _T.APPLIED: frozenset({_T.REPORTED}),
        _T.METER_REJECTED: frozenset({_T.REPORTED}),
    },
)

_L = MeterState
METER_MACHINE: StateMachine[MeterState] = StateMachine(
    name="meter",
    states=MeterState,
    initial=frozenset({_L.REQUESTED}),
    transitions={
        _L.REQUESTED: frozenset({_L.CONNECTED, _L.REMOVED}),
        _L.CONNECTED: frozenset({_L.ACTIVE, _L.REMOVED}),
        _L.ACTIVE: frozenset({_L.SUSPENDED, _L.REMOVED}),
        _L.SUSPENDED: frozenset({_L.ACTIVE, _L.REMOVED}),
    },
)

_W = SimSwapState
SIM_SWAP_MACHINE: StateMachine[SimSwapState] = StateMachine(
    name="sim_swap",
    states=SimSwapState,
    initial=frozenset({_W.REQUESTED}),
    transitions={_W.REQUESTED: frozenset({_W.APPROVED, _W.REJECTED})},
)
