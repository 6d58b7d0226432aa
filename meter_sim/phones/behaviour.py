"""How careless a simulated customer is: seeded rates, so a crowd's mistakes are repeatable."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Behaviour:
    typo_rate: float = 0.0  # the keyword comes out misspelt (BELO, BLEI, ...)
    wrong_pin_rate: float = 0.0  # a purchase carries a PIN that is not the customer's
    repeat_rate: float = 0.0  # the same SMS is sent twice (impatience, a flaky phone)
    name_meter_rate: float = 0.0  # BELI names the meter number although it is optional
    seed: int = 0

    def rng(self, msisdn: str) -> random.Random:
        """This phone's own generator: phones sharing a Behaviour still differ."""
        return random.Random(f"{self.seed}:{msisdn}")
