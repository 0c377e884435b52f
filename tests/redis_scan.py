"""Test helper: every key in a Redis database with everything it holds, as text to search.

Values are read whole (strings, hashes, lists, sets, sorted sets, streams); a value that is
zlib-compressed (RQ's job data) is searched decompressed too."""

from __future__ import annotations

import zlib

from redis import Redis


def _texts(value: bytes) -> list[str]:
    out = [value.decode("utf-8", errors="replace")]
    try:
        out.append(zlib.decompress(value).decode("utf-8", errors="replace"))
    except zlib.error:
        pass
    return out


def everything(redis: Redis) -> dict[str, str]:
    """key -> the key's name and every value it holds, joined."""
    found: dict[str, str] = {}
    for raw_key in redis.scan_iter(count=1000):
        kind = redis.type(raw_key).decode()
        parts: list[bytes] = [raw_key]
        if kind == "string":
            parts.append(redis.get(raw_key) or b"")
        elif kind == "hash":
            for field, value in redis.hgetall(raw_key).items():
                parts += [field, value]
        elif kind == "list":
            parts += redis.lrange(raw_key, 0, -1)
        elif kind == "set":
            parts += list(redis.smembers(raw_key))
        elif kind == "zset":
            parts += [member for member, _ in redis.zrange(raw_key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _, fields in redis.xrange(raw_key):
                for field, value in fields.items():
                    parts += [field, value]
        found[raw_key.decode(errors="replace")] = "\n".join(t for p in parts for t in _texts(p))
    return found


def holding(redis: Redis, *needles: str) -> dict[str, list[str]]:
    """The keys whose name or values contain any of ``needles``: key -> the needles found."""
    hits: dict[str, list[str]] = {}
    for key, text in everything(redis).items():
        found = [n for n in needles if n in text]
        if found:
            hits[key] = found
    return hits
