"""The SLA stages as data: where each measured interval starts and ends, and its target.

Every figure is computed from the state-history tables (transaction_states,
message_states) or the AP2T batch ledger; nothing is measured separately.

"Handed to the network" is the token SMS's message reaching `sent`: the gateway has an
SMSC message reference for it (AT+CMGS answered). `submitted` only means our own gateway
took it, which says nothing about the mobile network.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from operator_data.settings import SlaTargets
from operator_data.store.states import MessageState, TransactionState


class Source(StrEnum):
    """Which history a stage reads; every source is keyed by the transaction id."""

    TRANSACTION = "transaction"  # transaction_states
    TOKEN_MESSAGE = "token_message"  # message_states of the outbound hub->meter SMS of a purchase
    RECEIPT_MESSAGE = "receipt_message"  # message_states of the receipt SMS to the customer


class StageKind(StrEnum):
    TRANSITION = "transition"  # first time in `start` -> first time in `end` after it
    AP2T_INTERVAL = "ap2t_interval"  # one acknowledged AP2T batch -> the next one


@dataclass(frozen=True, slots=True)
class StatePoint:
    source: Source
    states: frozenset[str]


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    description: str
    kind: StageKind
    start: StatePoint | None
    end: StatePoint | None
    target_field: str  # attribute of SlaTargets
    target_unit_s: float  # seconds per unit of that attribute

    def target_ms(self, targets: SlaTargets) -> int:
        return round(float(getattr(targets, self.target_field)) * self.target_unit_s * 1000)


_T = TransactionState
STAGES: tuple[Stage, ...] = (
    Stage(
        # 0066 art. 4(2): the purchase goes to P2APST online, in real time; this is how long
        # P2APST takes to answer it (token or decline), advices included.
        name="p2apst_response",
        description="purchase submitted to P2APST -> its answer (token_issued or declined)",
        kind=StageKind.TRANSITION,
        start=StatePoint(Source.TRANSACTION, frozenset({_T.SUBMITTED.value})),
        end=StatePoint(Source.TRANSACTION, frozenset({_T.TOKEN_ISSUED.value, _T.DECLINED.value})),
        target_field="p2apst_response_s",
        target_unit_s=1.0,
    ),
    Stage(
        name="token_to_network",
        description="token issued by P2APST -> token SMS accepted by the network (sent)",
        kind=StageKind.TRANSITION,
        start=StatePoint(Source.TRANSACTION, frozenset({_T.TOKEN_ISSUED.value})),
        end=StatePoint(Source.TOKEN_MESSAGE, frozenset({MessageState.SENT.value})),
        target_field="token_to_network_s",
        target_unit_s=1.0,
    ),
    Stage(
        name="meter_answer",
        description="token SMS sent -> the meter's answer (applied or meter_rejected)",
        kind=StageKind.TRANSITION,
        start=StatePoint(Source.TRANSACTION, frozenset({_T.TOKEN_SENT.value})),
        end=StatePoint(Source.TRANSACTION, frozenset({_T.APPLIED.value, _T.METER_REJECTED.value})),
        target_field="meter_answer_s",
        target_unit_s=1.0,
    ),
    Stage(
        name="report_to_p2apst",
        description="the meter's answer -> outcome reported to P2APST (reported)",
        kind=StageKind.TRANSITION,
        start=StatePoint(
            Source.TRANSACTION, frozenset({_T.APPLIED.value, _T.METER_REJECTED.value})
        ),
        end=StatePoint(Source.TRANSACTION, frozenset({_T.REPORTED.value})),
        target_field="report_to_p2apst_s",
        target_unit_s=1.0,
    ),
    Stage(
        # 0066 art. 4(2): transaction data goes to the customer (the receipt SMS) in real
        # time; measured to the network's acceptance, as token_to_network is.
        name="receipt_to_customer",
        description="the meter applied the token -> receipt SMS accepted by the network (sent)",
        kind=StageKind.TRANSITION,
        start=StatePoint(Source.TRANSACTION, frozenset({_T.APPLIED.value})),
        end=StatePoint(Source.RECEIPT_MESSAGE, frozenset({MessageState.SENT.value})),
        target_field="receipt_to_customer_s",
        target_unit_s=1.0,
    ),
    Stage(
        name="ap2t_batch_interval",
        description="acknowledged AP2T batch -> the next acknowledged batch",
        kind=StageKind.AP2T_INTERVAL,
        start=None,
        end=None,
        target_field="ap2t_batch_interval_h",
        target_unit_s=3600.0,
    ),
)

STAGES_BY_NAME = {stage.name: stage for stage in STAGES}
