"""CRM rate limits shared by every worker process, kept in Redis by ``limits``.

A moving window per limit (HubSpot: 100 requests / 10 s and 4 searches / s by default;
Salesforce: the daily budget) so that all workers together stay under what the CRM
allows, and wait *before* the CRM has to refuse. A wait longer than ``max_wait`` is not
slept in the worker: ``RateLimited`` hands the call back to the queue instead.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from crmsync.errors import RateLimited
from crmsync.sub_settings import rate_parts

_UNITS: dict[str, type[RateLimitItem]] = {
    "s": RateLimitItemPerSecond,
    "m": RateLimitItemPerMinute,
    "h": RateLimitItemPerHour,
    "d": RateLimitItemPerDay,
    "day": RateLimitItemPerDay,
}
GUARD = 0.05  # seconds


def parse_rate(text: str) -> RateLimitItem:
    """``"100/10s"``, ``"4/s"``, ``"15000/day"`` → a ``limits`` item; ValueError otherwise."""
    amount, multiples, unit = rate_parts(text)
    return _UNITS[unit](amount, multiples)


class SharedLimiter:
    """One named limit, shared through Redis by every process that uses the same name."""

    def __init__(
        self,
        redis: Redis,
        name: str,
        rate: str | RateLimitItem,
        *,
        max_wait: float = 30.0,
        on_wait: Callable[[str, float], None] | None = None,
    ) -> None:
        storage = RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix="crmsync:limits")
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = parse_rate(rate) if isinstance(rate, str) else rate
        self._name = name
        self._max_wait = max_wait
        self._on_wait = on_wait

    @property
    def name(self) -> str:
        return self._name

    def acquire(self, cost: int = 1, crm: str = "crm") -> float:
        """Take ``cost`` requests from the window, waiting for room; returns seconds waited.

        Raises ``RateLimited`` when room would take longer than ``max_wait``.
        """
        waited = 0.0
        while not self._limiter.hit(self._item, self._name, cost=cost):
            stats = self._limiter.get_window_stats(self._item, self._name)
            # GUARD past the freed slot: the CRM counts a request when it arrives, a little
            # after we count it, so a request sent the instant a slot frees can land inside
            # the CRM's window of the request that held the slot.
            delay = max(stats.reset_time - time.time(), 0.0) + GUARD + random.uniform(0, 0.05)
            if waited + delay > self._max_wait:
                raise RateLimited(crm, f"shared rate limit {self._name} is full", retry_after=delay, status=0)
            if self._on_wait:
                self._on_wait(self._name, delay)
            time.sleep(delay)
            waited += delay
        return waited

    def remaining(self) -> int:
        return self._limiter.get_window_stats(self._item, self._name).remaining
