"""``SharedLimiter`` on a real Redis: the guard between a slot and the one it replaces, the
contract callers rely on (cost, ``max_wait`` → ``RateLimited``, ``on_wait``, ``remaining``),
and one window for every limiter of a name. The CRM side (HubSpot counting on arrival) is in
``tests/test_crm_hubspot.py``."""

from __future__ import annotations

import time

import pytest
from limits import RateLimitItemPerDay
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from crmsync.crm.ratelimit import GUARD, PREFIX, SharedLimiter, parse_rate
from crmsync.errors import RateLimited


def slot_times(redis: Redis, name: str, rate: str) -> list[float]:
    """The window's slot times (the newest ``limit``), oldest first."""
    return sorted(float(t) for t in redis.lrange(f"{PREFIX}:{parse_rate(rate).key_for(name)}", 0, -1))


def test_a_slot_is_taken_only_the_window_and_guard_after_the_one_it_replaces(redis: Redis) -> None:
    limiter = SharedLimiter(redis, "test:guard", "2/s")
    started = time.time()
    limiter.acquire()
    limiter.acquire()
    first, _ = slot_times(redis, "test:guard", "2/s")
    # the first slot has left the 1 s window by now: a third that took it at once could
    # reach the CRM within a second of the first
    time.sleep(max(0.0, started + 1.005 - time.time()))
    limiter.acquire()
    third = slot_times(redis, "test:guard", "2/s")[-1]  # the window keeps the newest 2
    assert third - first >= 1.0 + GUARD


def test_limiters_of_one_name_share_their_window(redis: Redis, redis_url: str) -> None:
    other = Redis.from_url(redis_url)
    try:
        one, two = SharedLimiter(redis, "test:shared", "5/m"), SharedLimiter(other, "test:shared", "5/m")
        assert one.acquire(cost=2) == 0.0 and two.acquire() == 0.0
        assert one.remaining() == two.remaining() == 2
        assert SharedLimiter(redis, "test:apart", "5/m").remaining() == 5
    finally:
        other.close()


def test_a_wait_longer_than_max_wait_is_handed_back(redis: Redis) -> None:
    waits: list[tuple[str, float]] = []
    limiter = SharedLimiter(redis, "test:budget", "2/day", max_wait=5, on_wait=lambda n, s: waits.append((n, s)))
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(RateLimited) as info:
        limiter.acquire(crm="salesforce")
    assert info.value.crm == "salesforce" and "test:budget" in info.value.message
    assert info.value.retry_after is not None and info.value.retry_after > 86_000
    assert waits == [] and limiter.remaining() == 0  # nothing slept, nothing taken
    assert len(slot_times(redis, "test:budget", "2/day")) == 2


def test_a_short_wait_is_slept_and_reported(redis: Redis) -> None:
    waits: list[tuple[str, float]] = []
    limiter = SharedLimiter(redis, "test:wait", "1/s", on_wait=lambda n, s: waits.append((n, s)))
    assert limiter.acquire() == 0.0
    [first] = slot_times(redis, "test:wait", "1/s")
    waited = limiter.acquire()
    assert [name for name, _ in waits] == ["test:wait"] and waited == sum(s for _, s in waits)
    [second] = slot_times(redis, "test:wait", "1/s")
    assert second - first >= 1.0 + GUARD


def test_a_cost_above_the_limit_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError, match="never fits"):
        SharedLimiter(redis, "test:cost", "4/s").acquire(cost=5)


def test_slots_taken_by_the_limits_library_count(redis: Redis) -> None:
    # workers of the release before (limits' own moving window) share the window during a deploy
    storage = RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix=PREFIX)
    assert MovingWindowRateLimiter(storage).hit(RateLimitItemPerDay(3), "test:deploy", cost=2)
    limiter = SharedLimiter(redis, "test:deploy", "3/day", max_wait=1)
    assert limiter.remaining() == 1
    limiter.acquire()
    with pytest.raises(RateLimited):
        limiter.acquire()
