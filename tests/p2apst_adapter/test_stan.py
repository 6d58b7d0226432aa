"""STANs: unique within a process, across its restarts, and between hub workers that sign
on as one switcher (each in its own lane)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from operator_data.settings import P2apstSettings
from p2apst_adapter.client import StanSource


def _clock(times: list[float]) -> Callable[[], float]:
    moments = iter(times)
    return lambda: next(moments)


def test_draws_within_one_millisecond_are_distinct_and_increasing() -> None:
    source = StanSource(lambda: 1_763_800_000.000)
    drawn = [source.next() for _ in range(5)]
    assert drawn == sorted(drawn) and len(set(drawn)) == 5
    assert all(len(stan) == 12 and stan.isdigit() for stan in drawn)


def test_a_restarted_process_draws_past_what_it_drew_before() -> None:
    before = StanSource(lambda: 1_763_800_000.000)
    old = [before.next() for _ in range(3)]  # within one millisecond
    after = StanSource(lambda: 1_763_800_000.004)
    assert after.next() > max(old)


@given(
    steps=st.lists(st.integers(0, 3), min_size=1, max_size=60),
    lanes=st.integers(2, 8),
)
def test_workers_in_different_lanes_never_draw_the_same_stan(steps: list[int], lanes: int) -> None:
    # Every worker sees the same clock, which may stand still for several draws.
    times = []
    now = 1_763_800_000_000
    for step in steps:
        now += step
        times.append(now / 1000)
    drawn: list[set[str]] = []
    for lane in range(lanes):
        source = StanSource(_clock(times), lane=lane, lanes=lanes)
        stans = [source.next() for _ in times]
        assert stans == sorted(stans) and len(set(stans)) == len(stans)
        drawn.append(set(stans))
    assert sum(len(s) for s in drawn) == len(set().union(*drawn))


def test_a_lane_outside_the_lanes_is_refused() -> None:
    with pytest.raises(ValueError, match="lane 2 of 2"):
        StanSource(lane=2, lanes=2)
    with pytest.raises(ValidationError, match="stan_lane"):
        P2apstSettings(stan_lane=3, stan_lanes=2)
