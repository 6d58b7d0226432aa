"""Token identifiers: whole minutes since the meter's base date, in 24 bits."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum

from firmware_protocol.sts.errors import StsError

TID_BITS = 24
TID_MAX = (1 << TID_BITS) - 1


class BaseDate(IntEnum):
    """The three STS base dates; 24 bits of minutes last about 31.9 years from each."""

    Y1993 = 1993
    Y2014 = 2014
    Y2035 = 2035

    @property
    def start(self) -> datetime:
        return datetime(int(self), 1, 1)

    @classmethod
    def parse(cls, value: int | str) -> BaseDate:
        try:
            return cls(int(value))
        except ValueError:
            raise StsError(f"base date {value!r} is not one of 1993, 2014, 2035") from None


def tid_from_datetime(issued_at: datetime, base: BaseDate) -> int:
    if issued_at.tzinfo is not None:
        # STS time is the meter's local civil time: drop the zone, keep the wall clock.
        issued_at = issued_at.replace(tzinfo=None)
    minutes = (issued_at - base.start) // timedelta(minutes=1)
    if not 0 <= minutes <= TID_MAX:
        raise StsError(
            f"issued_at {issued_at.isoformat()} is outside the TID range of base date "
            f"{int(base)} ({base.start:%Y-%m-%d} + {TID_MAX} minutes)"
        )
    return minutes


def datetime_from_tid(tid: int, base: BaseDate) -> datetime:
    if not 0 <= tid <= TID_MAX:
        raise StsError(f"TID {tid} does not fit {TID_BITS} bits")
    return base.start + timedelta(minutes=tid)
