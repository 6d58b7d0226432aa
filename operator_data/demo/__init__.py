"""`pintar demo`: the whole system in one process on its embedded defaults.

SQLite, the in-process transport, the simulated SMS network with the hub's emulated modems
driven through the real AT driver over pseudo-terminals, simulated meters and customers, the
P2APST simulator over real TCP, the AP2T receiver and the helpdesk web app.
"""

from operator_data.demo.options import DemoFaults, DemoOptions, FaultSpecError, Profile
from operator_data.demo.run import run_demo

__all__ = ["DemoFaults", "DemoOptions", "FaultSpecError", "Profile", "run_demo"]
