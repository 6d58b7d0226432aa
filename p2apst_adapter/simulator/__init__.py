"""A P2APST stand-in for tests and demos: real dialect, real STS tokens, injected faults."""

from p2apst_adapter.simulator.faults import (
    NO_FAULT,
    Fault,
    FaultKind,
    FaultPlan,
    FaultScript,
    FaultSpecError,
)
from p2apst_adapter.simulator.ledger import Ledger, LedgerEntry, LedgerError, LedgerState
from p2apst_adapter.simulator.meters import MeterRegistry, SimMeter, demo_meters, load_meters
from p2apst_adapter.simulator.server import P2apstSimulator, SimulatorSettings

__all__ = [
    "NO_FAULT",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultScript",
    "FaultSpecError",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerState",
    "MeterRegistry",
    "P2apstSimulator",
    "SimMeter",
    "SimulatorSettings",
    "demo_meters",
    "load_meters",
]
