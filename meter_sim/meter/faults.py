"""Ways a simulated meter can misbehave, changeable while it runs.

Every rate is a probability per outgoing frame, drawn from the meter's own seeded random
generator, so a faulty run is as reproducible as a healthy one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class MeterFaults:
    #: Unreachable until this instant: incoming SMS are refused (the SMSC retries) and
    #: outgoing frames wait in the modem until the meter is back.
    offline_until: datetime | None = None
    #: Seconds the meter takes before it answers a request (a slow modem or a busy MCU).
    answer_delay_s: float = 0.0
    #: Outgoing frames that never reach the network.
    loss_rate: float = 0.0
    #: Outgoing frames submitted twice (the same bytes: the hub's replay window sees them).
    duplicate_rate: float = 0.0
    #: Outgoing frames with one byte flipped after sealing (the hub sees a bad tag or header).
    corrupt_rate: float = 0.0
    #: The meter holds a different comms key than the hub: nothing it sends authenticates
    #: and nothing the hub sends opens.
    wrong_key: bool = False
    #: Seconds the meter clock gains (negative: loses) per simulated day.
    clock_drift_s_per_day: float = 0.0

    def offline(self, now: datetime) -> bool:
        return self.offline_until is not None and now < self.offline_until
