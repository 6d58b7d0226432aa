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
CMS_NOT_ALLOWED = 302
CMS_NO_CNMA_EXPECTED = 340


@dataclass(slots=True)
class Faults:
    """Mutable at run time. `send_error_rate` applies to `AT+CMGS` and `AT+CMSS`, answered
    with one of `send_error_codes` (a stored message then stays STO UNSENT); `garbage_rate`
    puts random bytes before a response.

    `marks_sent`: a successful `AT+CMSS` changes the stored message's `<stat>` to 3 (STO
    SENT); False emulates modems that leave it at 2 (STO UNSENT), so a driver cannot rely on
    the stat alone. `hang_after_next_send`: the next successful `AT+CMGS` or `AT+CMSS` reaches
    the network (and `AT+CMSS` updates the stat per `marks_sent`), then the modem answers
    nothing and is `hung` (the flag clears itself): a modem that sent the SMS and died before
    saying so. A hung modem also drops its unsolicited result codes."""

    send_error_rate: float = 0.0
    send_error_codes: tuple[int, ...] = (CMS_BUSY, CMS_NETWORK, CMS_UNKNOWN)
    garbage_rate: float = 0.0
    hung: bool = False  # answers nothing until AT+CFUN=1,1 or `reset()`
    marks_sent: bool = True
    hang_after_next_send: bool = False
