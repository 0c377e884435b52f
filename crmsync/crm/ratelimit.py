"""CRM rate limits shared by every worker process, kept in Redis.

A moving window per limit (HubSpot: 100 requests / 10 s and 4 searches / s by default;
Salesforce: the daily budget) so that all workers together stay under what the CRM
allows, and wait *before* the CRM has to refuse. A wait longer than ``max_wait`` is not
slept in the worker: ``RateLimited`` hands the call back to the queue instead.

**The guard.** We count a request when it takes its slot; the CRM counts it when it
arrives, a few milliseconds later, and that delay differs from request to request. So a
slot is taken only once the slot it replaces (the ``limit``-th newest) is the window plus
``GUARD`` old, whether the caller waited or not. Two requests ``limit`` apart then arrive
at least a window apart as long as their delays differ by less than ``GUARD``; a slot
taken the instant the old one left the window could land inside the CRM's window of the
request that held it (``tests/test_crm_hubspot.py``, docs/bursts.md).

**Why a script of our own.** ``limits``' moving window (whose rate items we still use)
takes a slot when ``entry < now - expiry``, with ``expiry`` the window in whole seconds:
the same number goes to Redis's ``EXPIRE``, which refuses a fraction, and ``hit`` takes no
margin, so "the window plus 50 ms" cannot be said through its API, and a ``test`` then
``hit`` would not be atomic across processes. ``_TAKE`` checks and takes in one step,
stamps slots with Redis's clock (one clock for every worker, whatever machine it runs
on), and keeps ``limits``' key and layout (``crmsync:limits:LIMITER/<name>/…``: a list of
slot times, newest first), so workers of the release before share the window during a
deploy.
"""

from __future__ import annotations

import math
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
GUARD = 0.05  # seconds: the most two requests' delays (slot to arrival at the CRM) may differ
SPREAD = 0.02  # seconds of random extra wait, so that waiters do not all ask at one instant
PREFIX = "crmsync:limits"

# KEYS[1] the window; ARGV limit, span (window + guard, s), cost, ttl (ms).
# Returns {1, "0"} when the slots are taken, else {0, seconds until they can be}.
_TAKE = """
local limit, span, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local replaced = redis.call('LINDEX', KEYS[1], limit - cost)
if replaced then
    local wait = tonumber(replaced) + span - now
    if wait > 0 then
        return {0, string.format('%.6f', wait)}
    end
end
local stamp = string.format('%.6f', now)
for _ = 1, cost do
    redis.call('LPUSH', KEYS[1], stamp)
end
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, '0'}
"""

# KEYS[1] the window; ARGV limit, span (s). Returns the slots in use (newer than the span).
_HELD = """
local limit, span = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local oldest = tonumber(clock[1]) + tonumber(clock[2]) / 1000000 - span
local low, high = 0, math.min(limit, redis.call('LLEN', KEYS[1])) - 1
while low <= high do
    local mid = math.floor((low + high) / 2)
    if tonumber(redis.call('LINDEX', KEYS[1], mid)) > oldest then
        low = mid + 1
    else
        high = mid - 1
    end
end
return low
"""


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
        item = parse_rate(rate) if isinstance(rate, str) else rate
        self._limit = item.amount
        self._span = item.get_expiry() + GUARD
        self._key = f"{PREFIX}:{item.key_for(name)}"
        self._take = redis.register_script(_TAKE)
        self._held = redis.register_script(_HELD)
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
        if not 1 <= cost <= self._limit:
            raise ValueError(f"a cost of {cost} never fits {self._name}'s {self._limit} requests per window")
        waited = 0.0
        while (delay := self._try(cost)) > 0:
            delay += random.uniform(0, SPREAD)
            if waited + delay > self._max_wait:
                raise RateLimited(crm, f"shared rate limit {self._name} is full", retry_after=delay, status=0)
            if self._on_wait:
                self._on_wait(self._name, delay)
            time.sleep(delay)
            waited += delay
        return waited

    def _try(self, cost: int) -> float:
        """Take ``cost`` slots now (0.0), or the seconds until they can be taken."""
        ttl_ms = math.ceil(self._span * 1000)
        taken, wait = self._take(keys=[self._key], args=[self._limit, self._span, cost, ttl_ms])
        return 0.0 if int(taken) else float(wait)

    def remaining(self) -> int:
        """Requests that could be taken now, without waiting."""
        return self._limit - int(self._held(keys=[self._key], args=[self._limit, self._span]))
