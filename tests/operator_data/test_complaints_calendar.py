"""The complaint clock: working days skip weekends, national holidays and cuti bersama;
the 15-working-day due day; the month's last working day; the holiday files' checks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from operator_data.complaints import calendar
from operator_data.complaints.calendar import WIB, CalendarError, HolidayCalendar, load

CAL = load()


def test_shipped_files_cover_2026_and_2027_and_name_their_source() -> None:
    assert CAL.years == {2026, 2027}
    assert "1497" in CAL.sources[2026]  # SKB 3 Menteri No. 1497/2025
    # 17 national holidays and 8 days of cuti bersama in 2026 (as decreed)
    kinds = [h.kind for h in CAL.holidays if h.day.year == 2026]
    assert kinds.count("national") == 17 and kinds.count("cuti_bersama") == 8
    assert not any(h.estimated for h in CAL.holidays if h.day.year == 2026)
    assert any(h.estimated for h in CAL.holidays if h.day.year == 2027)


def test_weekends_holidays_and_cuti_bersama_are_not_working_days() -> None:
    assert CAL.is_working_day(date(2026, 3, 17))  # Tuesday before Nyepi
    assert not CAL.is_working_day(date(2026, 3, 18))  # cuti bersama Nyepi
    assert not CAL.is_working_day(date(2026, 3, 19))  # Nyepi
    assert not CAL.is_working_day(date(2026, 3, 24))  # cuti bersama Idul Fitri
    assert not CAL.is_working_day(date(2026, 3, 28))  # Saturday
    assert CAL.is_working_day(date(2026, 3, 25))


def test_due_day_counts_15_working_days_after_the_wib_day_received() -> None:
    # Monday 2 Nov 2026, a month without holidays: three calendar weeks later
    assert CAL.due_on(datetime(2026, 11, 2, 2, 0, tzinfo=UTC)) == date(2026, 11, 23)
    # 23:30 WIB on Sunday 1 Nov is still Sunday in WIB (16:30 UTC): counts from Monday
    sunday_night = datetime(2026, 11, 1, 23, 30, tzinfo=WIB)
    assert CAL.due_on(sunday_night) == date(2026, 11, 20)
    # 00:30 WIB Monday is 17:30 UTC Sunday: the WIB day decides
    assert CAL.due_on(datetime(2026, 11, 1, 17, 30, tzinfo=UTC)) == date(2026, 11, 23)


def test_due_day_stretches_over_lebaran() -> None:
    # Friday 13 Mar 2026: 16, 17 count; 18-24 are Nyepi, Idul Fitri and cuti bersama,
    # and Good Friday (3 Apr) is off too
    received = datetime(2026, 3, 13, 9, 0, tzinfo=WIB)
    due = CAL.due_on(received)
    assert due == date(2026, 4, 13)
    assert CAL.working_days_between(date(2026, 3, 13), due) == 15
    # the same 15 days without the holiday calendar end six working days earlier
    bare = HolidayCalendar()
    assert bare.due_on(received) == date(2026, 4, 3)


def test_last_working_day_of_the_month() -> None:
    assert CAL.last_working_day(2026, 12) == date(2026, 12, 31)  # Thursday
    assert CAL.last_working_day(2026, 5) == date(2026, 5, 29)  # 30, 31 weekend
    assert CAL.last_working_day(2026, 1) == date(2026, 1, 30)  # 31 Saturday
    assert CAL.last_working_day(2027, 7) == date(2027, 7, 30)
    # the rest are due by the end of the month the due day falls in
    assert CAL.final_due_on(datetime(2026, 11, 20, 9, 0, tzinfo=WIB)) == date(2026, 12, 31)


def test_year_without_a_file_is_named_as_a_gap() -> None:
    assert CAL.gaps([date(2027, 12, 31), date(2028, 1, 3)]) == [2028]


def test_an_operator_file_replaces_the_shipped_year(tmp_path: Path) -> None:
    path = tmp_path / "2027.toml"
    path.write_text(
        'year = 2027\nsource = "SKB 2027"\n'
        'holidays = [{ date = 2027-07-14, kind = "cuti_bersama", name = "contoh" }]\n'
    )
    mine = load([path])
    assert not mine.is_working_day(date(2027, 7, 14))
    assert mine.is_working_day(date(2027, 3, 10))  # the estimate is gone with its file
    assert mine.sources[2027] == "SKB 2027" and 2026 in mine.years


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("year = 2027\nholidays = []\n", "source"),
        (
            'year = 2027\nsource = "x"\nholidays = [{ date = 2026-01-01, kind = "national", name = "n" }]\n',
            "not in the file's year",
        ),
        (
            'year = 2027\nsource = "x"\nholidays = [{ date = 2027-01-01, kind = "libur", name = "n" }]\n',
            "kind must be",
        ),
        (
            'year = 2027\nsource = "x"\nholidays = [{ date = "2027-01-01", kind = "national", name = "n" }]\n',
            "TOML date",
        ),
        ("year = [\n", "not valid TOML"),
    ],
)
def test_bad_holiday_files_are_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CalendarError, match=message):
        load([path])


def test_missing_file_and_naive_times_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CalendarError, match="cannot read"):
        load([tmp_path / "none.toml"])
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.due_on(datetime(2026, 11, 2, 9, 0))
    assert calendar.default() is calendar.default()
