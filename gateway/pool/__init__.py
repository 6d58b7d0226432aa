"""A pool of AT modems behind the transport API (send + events)."""

from gateway.pool.policy import RETRY_POLICY, PoolConfig, RetryRule
from gateway.pool.pool import ModemPool

__all__ = ["RETRY_POLICY", "ModemPool", "PoolConfig", "RetryRule"]
