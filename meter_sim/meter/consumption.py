"""Household consumption: a daily load curve by power category, with seeded randomness.

The curve is the shape of an Indonesian household's day: low at night, a morning bump,
a midday plateau, and an evening peak (18:00–22:00) when lights, TV and rice cookers run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

# Relative load per hour of the local day (sums to 24 so the mean is 1.0).
_HOURLY_SHAPE = (
    0.55, 0.5, 0.48, 0.47, 0.5, 0.75, 1.05, 1.05, 0.9, 0.85, 0.9, 1.0,
    1.05, 1.0, 0.95, 0.95, 1.0, 1.25, 1.75, 1.9, 1.8, 1.5, 1.05, 0.73,
)  # fmt: skip
_SHAPE_SCALE = 24 / sum(_HOURLY_SHAPE)

# Average daily kWh by power category (VA), from typical PLN household tariffs.
_DAILY_KWH = {450: 2.5, 900: 4.0, 1300: 6.0, 2200: 9.5, 3500: 14.0, 5500: 21.0, 7700: 28.0}


def daily_kwh(power_va: int) -> float:
    for limit in sorted(_DAILY_KWH):
        if power_va <= limit:
            return _DAILY_KWH[limit]
    return _DAILY_KWH[max(_DAILY_KWH)] * power_va / max(_DAILY_KWH)


@dataclass(slots=True)
class LoadModel:
    power_va: int
    rng: random.Random
    noise: float = 0.25

    def watts_at(self, when: datetime) -> float:
        """Instantaneous demand, never above what the power category allows."""
        hour = when.hour + when.minute / 60
        low = _HOURLY_SHAPE[int(hour) % 24]
        high = _HOURLY_SHAPE[(int(hour) + 1) % 24]
        shape = (low + (high - low) * (hour - math.floor(hour))) * _SHAPE_SCALE
        mean_watts = daily_kwh(self.power_va) * 1000 / 24 * shape
        watts = mean_watts * max(0.0, self.rng.gauss(1.0, self.noise))
        return min(watts, float(self.power_va))

    def energy_kwh(self, start: datetime, end: datetime) -> Decimal:
        """kWh used between two instants, sampled in steps of at most 15 minutes."""
        total = 0.0
        cursor = start
        step = timedelta(minutes=15)
        while cursor < end:
            upto = min(cursor + step, end)
            total += self.watts_at(cursor) * (upto - cursor).total_seconds() / 3600 / 1000
            cursor = upto
        return Decimal(str(round(total, 4)))
