"""The key table in ``crmsync.store`` and the check ``tests/conftest.py`` runs after every
test that uses Redis: it must catch an undeclared key family and a key that outlives its
family's TTL."""

from crmsync import queue, store
from tests.conftest import key_problems


def test_an_undeclared_family_and_an_overlong_ttl_are_reported(redis):
    redis.set(store.seen_key("abc"), "1", ex=60)
    redis.set(store.call_lock_key("c1"), "job", ex=store.CALL_LOCK_TTL)
    redis.rpush("rq:queue:crmsync", "sync-1")  # RQ's own, no TTL declared
    assert key_problems(redis) == []
    redis.set("crmsync:scratch:c1", "x", ex=60)
    redis.set(store.call_lock_key("c2"), "job", ex=store.CALL_LOCK_TTL + 100)
    redis.set(store.call_lock_key("c3"), "job")
    overlong, forever, undeclared = sorted(key_problems(redis))
    assert overlong.startswith("crmsync:lock:call:c2: expires in 1") and overlong.endswith("lives at most 60 s")
    assert forever == (
        "crmsync:lock:call:c3: expires in -1 s, but the lock of a call's running job (written by jobs) "
        "lives at most 60 s"
    )
    assert undeclared == "crmsync:scratch:c1: no key family matches it"
    redis.delete("crmsync:scratch:c1", store.call_lock_key("c2"), store.call_lock_key("c3"))


def test_every_key_store_names_is_in_its_family():
    keys = {
        store.seen_key("d"): "crmsync:seen:*",
        store.events_key("c"): "crmsync:call:*:events",
        store.receipts_key("c"): "crmsync:call:*:receipts",
        store.status_key("c"): "crmsync:status:*",
        store.call_lock_key("c"): "crmsync:lock:call:*",
        store.quarantine_key("q"): "crmsync:quarantine:*",
        store.FAILED_KEY: "crmsync:calls:failed",
        store.QUARANTINE_INDEX: "crmsync:quarantine",
    }
    assert {key: store.key_family(key).pattern for key in keys} == keys
    assert len({family.pattern for family in store.KEY_FAMILIES}) == len(store.KEY_FAMILIES)


def test_the_declared_ttls_cover_what_the_code_sets():
    assert store.key_family(store.call_lock_key("c")).ttl == store.CALL_LOCK_TTL
    assert store.CALL_LOCK_TTL > queue.JOB_TIMEOUT  # a lock outlives the job that holds it
    assert store.key_family(store.status_key("c")).ttl == store.STATUS_TTL
