"""Timing profiles and fault injection of the emulated modem."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TimingProfile(StrEnum):
    FAST = "fast"  # no delays
    REALISTIC = "realistic"  # a send takes 5-10 s, as on a real modem


SEND_SECONDS = {TimingProfile.FAST: (0.0, 0.0), TimingProfile.REALISTIC: (5.0, 10.0)}

CMS_BUSY = 512
CMS_NETWORK = 38
CMS_UNKNOWN = 500
CMS_MEMORY_FULL = 322
CMS_INVALID_INDEX = 321
CMS_INVALID_PDU = 304
CMS_NOT_SUPPORTED = 303
CMS_NO_CNMA_EXPECTED = 340


@dataclass(slots=True)
class Faults:
    """Mutable at run time. `send_error_rate` applies to `AT+CMGS`, answered with one of
    `send_error_codes`; `garbage_rate` puts random bytes before a response."""

    send_error_rate: float = 0.0
    send_error_codes: tuple[int, ...] = (CMS_BUSY, CMS_NETWORK, CMS_UNKNOWN)
    garbage_rate: float = 0.0
    hung: bool = False  # answers nothing until AT+CFUN=1,1 or `reset()`
