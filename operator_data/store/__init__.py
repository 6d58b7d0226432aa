"""The hub's database: engine lifetime, schema, state machines, message log and outbox."""

import operator_data.api.tables  # registers the helpdesk tables on schema.metadata
import operator_data.complaints.tables  # registers the complaint tables on schema.metadata
import operator_data.store.reporting_schema  # registers ap2t_batches on schema.metadata
import operator_data.store.workflow_schema  # noqa: F401  (registers the hub workflow tables)
from operator_data.store import schema
from operator_data.store.engine import Store, StoreError
from operator_data.store.states import (
    CHARGEABLE_MESSAGE_STATES,
    MESSAGE_MACHINE,
    METER_MACHINE,
    SIM_SWAP_MACHINE,
    TRANSACTION_MACHINE,
    Direction,
    Flow,
    IllegalTransition,
    MessageState,
    MeterState,
    SimSwapState,
    StateMachine,
    TransactionState,
)
from operator_data.store.transitions import (
    MESSAGES,
    METERS,
    TRANSACTIONS,
    NotFound,
    StateStamp,
    Tracked,
    history,
    transition,
)
from operator_data.store.types import UTCDateTime, new_ulid, utcnow

__all__ = [
    "CHARGEABLE_MESSAGE_STATES",
    "MESSAGES",
    "MESSAGE_MACHINE",
    "METERS",
    "METER_MACHINE",
    "SIM_SWAP_MACHINE",
    "TRANSACTIONS",
    "TRANSACTION_MACHINE",
    "Direction",
    "Flow",
    "IllegalTransition",
    "MessageState",
    "MeterState",
    "NotFound",
    "SimSwapState",
    "StateMachine",
    "StateStamp",
    "Store",
    "StoreError",
    "Tracked",
    "TransactionState",
    "UTCDateTime",
    "history",
    "new_ulid",
    "schema",
    "transition",
    "utcnow",
]
