"""The message log page's date range: WIB calendar days, both inclusive, as the UTC
instants the (created_at) index is searched between."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

from operator_data.api import ops_texts
from operator_data.api.present import WIB


class BadDates(ValueError):
    """A date that is not YYYY-MM-DD, or a range that ends before it starts."""


def parse_range(start: str, end: str) -> tuple[datetime | None, datetime | None] | None:
    """(since, until) for the search, or None when the range cannot be read."""
    try:
        first = date.fromisoformat(start.strip()) if start.strip() else None
        last = date.fromisoformat(end.strip()) if end.strip() else None
    except ValueError:
        return None
    if first is not None and last is not None and first > last:
        return None
    try:
        since = None if first is None else datetime(first.year, first.month, first.day, tzinfo=WIB)
        until = (
            None
            if last is None
            else datetime(last.year, last.month, last.day, tzinfo=WIB) + timedelta(days=1)
        )
    except OverflowError:  # 9999-12-31: no day after it
        return None
    return since, until


def labels(language: str) -> Mapping[str, str]:
    t = ops_texts.texts(language)
    return {"from_date": t["from_date"], "until_date": t["until_date"]}


def bad_dates_text(language: str) -> str:
    return ops_texts.texts(language)["bad_date"]
