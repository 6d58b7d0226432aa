"""What the pool does with a failed send, per reaction (at-modems.md's error table, as data)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gateway.at.errors import Reaction


class Delay(Enum):
    NONE = "none"
    BUSY = "busy"  # PoolConfig.busy_backoff
    RETRY = "retry"  # PoolConfig.retry_delay


@dataclass(frozen=True, slots=True)
class RetryRule:
    retry: bool
    delay: Delay = Delay.NONE
    avoid_modem: bool = False  # prefer another modem for the next attempt
    limited: bool = False  # counts against PoolConfig.unknown_attempts


RETRY_POLICY: dict[Reaction, RetryRule] = {
    Reaction.STORAGE_FULL: RetryRule(True, Delay.BUSY),  # the modem drains its storage
    Reaction.INVALID_INDEX: RetryRule(False),
    Reaction.BUSY: RetryRule(True, Delay.BUSY),
    Reaction.NETWORK: RetryRule(True, Delay.RETRY, avoid_modem=True),
    Reaction.NO_SIM: RetryRule(True, avoid_modem=True),
    Reaction.SECURITY: RetryRule(True, avoid_modem=True),
    Reaction.UNKNOWN: RetryRule(True, Delay.RETRY, limited=True),
    Reaction.HUNG: RetryRule(True, avoid_modem=True),
    Reaction.REJECTED: RetryRule(False),
}


@dataclass(frozen=True, slots=True)
class PoolConfig:
    min_interval: float = 6.0  # per modem: seconds between starts of two sends
    max_attempts: int = 6  # per message, all modems together
    unknown_attempts: int = 3  # CMS 500 / unexplained errors: "retry a few times"
    busy_backoff: float = 5.0
    retry_delay: float = 10.0
    avoid_for: float = 60.0  # how long a message avoids the modem it just failed on
    # A part stored on a modem whose send has no outcome (a crash, a hang): how long the
    # message waits for that modem to say whether it went out before another modem sends it.
    stored_wait: float = 300.0
    reprobe_initial: float = 10.0  # out-of-service modems: first re-probe after this
    reprobe_max: float = 600.0  # ... doubling up to this
    reassembly_timeout: float = 600.0  # inbound multipart: give up on missing parts
    reassembly_check_interval: float = 30.0
    # Per modem: seconds between AT+CSQ re-reads (between sends; 0: read at start-up only),
    # and the shortest gap between two signal-only events (gateway/pool/signal.py).
    signal_interval: float = 60.0
    signal_min_gap: float = 300.0

    def __post_init__(self) -> None:
        if self.signal_interval < 0 or self.signal_min_gap < 0:
            raise ValueError("signal_interval and signal_min_gap are seconds, 0 or more")
