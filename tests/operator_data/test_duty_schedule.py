"""The duties' schedule calculation (pure): next run from the settings, WIB days, back-off;
and the [duties] settings' validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from operator_data.duties.schedule import DailySchedule, backoff, parse_time_of_day
from operator_data.settings import SettingsError, load_settings

WIB_0030 = DailySchedule(time(0, 30))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_the_next_run_is_the_wib_time_in_utc() -> None:
    # 00:30 WIB (UTC+7) is 17:30 UTC the day before.
    assert WIB_0030.next_after(utc(2026, 3, 2, 12, 0)) == utc(2026, 3, 2, 17, 30)
    # Strictly after: at the run itself, the next is a day later.
    assert WIB_0030.next_after(utc(2026, 3, 2, 17, 30)) == utc(2026, 3, 3, 17, 30)
    # Just past midnight UTC is already 07:00 WIB: today's 00:30 WIB has passed.
    assert WIB_0030.next_after(utc(2026, 3, 3, 0, 0)) == utc(2026, 3, 3, 17, 30)


def test_a_run_covers_the_wib_day_before_its_own() -> None:
    # 00:30 WIB on 3 March is 2 March 17:30 UTC: it covers 2 March (WIB).
    slot = WIB_0030.next_after(utc(2026, 3, 2, 12, 0))
    assert DailySchedule.covered_day(slot) == date(2026, 3, 2)
    # A run late in the WIB day covers the day before too, whatever the UTC date says.
    late = DailySchedule(time(23, 45)).slot_on(date(2026, 3, 3))
    assert late == utc(2026, 3, 3, 16, 45)
    assert DailySchedule.covered_day(late) == date(2026, 3, 2)


def test_the_last_run_at_or_before() -> None:
    slot = utc(2026, 3, 2, 17, 30)
    assert WIB_0030.last_at_or_before(slot) == slot
    assert WIB_0030.last_at_or_before(slot - timedelta(seconds=1)) == slot - timedelta(days=1)


def test_days_in_a_row_are_24_hours_apart_across_month_and_year_ends() -> None:
    at = utc(2026, 12, 30, 0, 0)
    runs = []
    for _ in range(4):
        at = DailySchedule(time(2, 0)).next_after(at)
        runs.append(at)
    assert [b - a for a, b in pairwise(runs)] == [timedelta(days=1)] * 3
    assert [DailySchedule.covered_day(r) for r in runs] == [
        date(2026, 12, 30),
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 2),
    ]


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        WIB_0030.next_after(datetime(2026, 3, 2, 12, 0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("00:00", time(0, 0)), ("23:59", time(23, 59)), (" 06:05 ", time(6, 5)), ("OFF", None)],
)
def test_times_of_day_parse(text: str, expected: time | None) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["24:00", "6:00", "06:60", "0600", "", "never", "06:00:00"])
def test_bad_times_of_day_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a WIB time HH:MM"):
        parse_time_of_day(text)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, 60, 600) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert backoff(10_000, 1, 3600) == 3600  # no overflow
    with pytest.raises(ValueError, match="at least 1"):
        backoff(0, 60, 600)
    with pytest.raises(ValueError, match="first_s <= max_s"):
        backoff(1, 600, 60)


def test_the_duties_settings_default_and_validate() -> None:
    duties = load_settings().duties
    assert duties.enabled
    assert duties.time_of("ap2t_deliver_at") == time(0, 30)
    assert duties.time_of("ap2t_deadline_at") == time(6, 0)
    assert load_settings(duties={"sla_report_at": "off"}).duties.time_of("sla_report_at") is None
    with pytest.raises(SettingsError, match=r"duties\.retention_purge_at: .*'2:00'"):
        load_settings(duties={"retention_purge_at": "2:00"})
    with pytest.raises(SettingsError, match="ap2t_deadline_at 00:15 must be after"):
        load_settings(duties={"ap2t_deadline_at": "00:15"})
    with pytest.raises(SettingsError, match="retry_max_s must be at least retry_first_s"):
        load_settings(duties={"retry_first_s": 600, "retry_max_s": 60})
    with pytest.raises(SettingsError, match=r"duties\.alarm_after"):
        load_settings(duties={"alarm_after": 0})


def test_the_shipped_hub_example_schedules_every_duty() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "hub.example.toml"
    duties = load_settings(example).duties
    assert duties.enabled and duties.alarm_after == 3
    fields = (
        "sla_report_at",
        "sms_costs_at",
        "complaints_report_at",
        "ap2t_deliver_at",
        "retention_purge_at",
    )
    assert all(duties.time_of(f) is not None for f in fields)
    assert duties.time_of("ap2t_deadline_at") == time(6, 0)
