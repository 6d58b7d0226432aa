"""Signal readings for the hub: AT+CSQ's rssi as a percentage, and when a new reading is
worth an event on the bus.

The pool re-reads every modem's signal each `signal_interval` seconds; publishing each
reading would put one event per modem per minute on the bus for a figure that rarely
moves. A reading is published when its bucket (tens of percent) differs from the last one
published, and then at most once per `min_gap` seconds, so a signal wavering on a bucket
edge does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.at.responses import Signal

_RSSI_MAX = 31  # 27.007 +CSQ: 0 (-113 dBm or less) .. 31 (-51 dBm or more), 99 unknown


def signal_rssi(signal: Signal | None) -> int | None:
    """The rssi 0-31, None for no reading or 99 (not known or not detectable)."""
    if signal is None or not 0 <= signal.rssi <= _RSSI_MAX:
        return None
    return signal.rssi


def signal_percent(signal: Signal | None) -> int | None:
    rssi = signal_rssi(signal)
    return None if rssi is None else round(rssi * 100 / _RSSI_MAX)


def bucket(percent: int | None) -> int | None:
    return None if percent is None else min(percent // 10, 9)  # 100 % shares 90-99's bucket


@dataclass(slots=True)
class SignalThrottle:
    """Per modem: the bucket last published and when (the pool's monotonic clock)."""

    min_gap: float
    _last: dict[str, tuple[int | None, float]] = field(default_factory=dict)

    def published(self, modem: str, percent: int | None, now: float) -> None:
        """Any event that carried the signal (a state change too) counts as published."""
        self._last[modem] = (bucket(percent), now)

    def due(self, modem: str, percent: int | None, now: float) -> bool:
        last = self._last.get(modem)
        if last is None:
            return True
        last_bucket, at = last
        return bucket(percent) != last_bucket and now - at >= self.min_gap
