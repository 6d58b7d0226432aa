"""AT-command driver for GSM modems: line codec, command correlation, errors, modem operations."""

from gateway.at.config import ModemConfig
from gateway.at.errors import (
    AtError,
    CommandError,
    CommandTimeout,
    ErrorSource,
    ModemClosed,
    ModemError,
    ModemHung,
    Reaction,
    StartupError,
    classify,
)
from gateway.at.events import (
    InboundPersisted,
    InboundSms,
    ModemEvent,
    ModemState,
    ModemStateChanged,
    PersistFailed,
    StatusReportReceived,
    StorageChecked,
    StorageFull,
    Unsolicited,
)
from gateway.at.modem import Modem
from gateway.at.multipart import AssembledMessage, Reassembler

__all__ = [
    "AssembledMessage",
    "AtError",
    "CommandError",
    "CommandTimeout",
    "ErrorSource",
    "InboundPersisted",
    "InboundSms",
    "Modem",
    "ModemClosed",
    "ModemConfig",
    "ModemError",
    "ModemEvent",
    "ModemHung",
    "ModemState",
    "ModemStateChanged",
    "PersistFailed",
    "Reaction",
    "Reassembler",
    "StartupError",
    "StatusReportReceived",
    "StorageChecked",
    "StorageFull",
    "Unsolicited",
    "classify",
]
