from __future__ import annotations

import random
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from meter_sim.meter.consumption import LoadModel, daily_kwh


def test_a_day_uses_about_the_category_average() -> None:
    model = LoadModel(power_va=1300, rng=random.Random(1))
    start = datetime(2026, 11, 1)
    used = sum(
        float(model.energy_kwh(start + timedelta(days=d), start + timedelta(days=d + 1)))
        for d in range(30)
    )
    assert 0.8 * 30 * daily_kwh(1300) < used < 1.2 * 30 * daily_kwh(1300)


def test_evening_peak_is_above_the_night() -> None:
    model = LoadModel(power_va=2200, rng=random.Random(2), noise=0.0)
    assert model.watts_at(datetime(2026, 11, 1, 19)) > 2 * model.watts_at(datetime(2026, 11, 1, 3))


@given(power=st.sampled_from([450, 900, 1300, 2200]), seed=st.integers(0, 1000))
def test_demand_never_exceeds_the_power_category(power: int, seed: int) -> None:
    model = LoadModel(power_va=power, rng=random.Random(seed), noise=3.0)
    for hour in range(24):
        assert 0 <= model.watts_at(datetime(2026, 11, 1, hour)) <= power
