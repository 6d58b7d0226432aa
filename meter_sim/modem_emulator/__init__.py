"""An emulated GSM modem on a pseudo-terminal, attached to the simulated SMS network."""

from meter_sim.modem_emulator.emulator import Identity, ModemEmulator
from meter_sim.modem_emulator.profile import Faults, TimingProfile
from meter_sim.modem_emulator.storage import SimStorage, Stat, StoredMessage

__all__ = [
    "Faults",
    "Identity",
    "ModemEmulator",
    "SimStorage",
    "Stat",
    "StoredMessage",
    "TimingProfile",
]
