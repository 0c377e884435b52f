"""Finding calls in the index: ``Query`` (filters, a call id or a number typed any way,
a page), ``find`` and the ``Page`` it returns. Nothing here scans the keyspace: one sorted
set range (or ``ZINTER`` for combined filters), then one pipelined read per call shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from crmsync import phones
from crmsync.callindex.index import ALL_KEY, CallIndex, Entry, agent_key, mapping_key, phone_key, state_key


@dataclass(frozen=True)
class Query:
    """A filter over the index. ``text`` is a call id or a phone number typed any way;
    ``day`` is a UTC date (``YYYY-MM-DD``)."""

    state: str | None = None
    agent: str | None = None
    mapping: str | None = None
    day: str | None = None
    text: str | None = None
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    total: int
    query: Query

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def day_range(day: str | None) -> tuple[float, float]:
    """The scores of one UTC day (start inclusive, end exclusive); everything for None.
    Raises ValueError for a day that is no ``YYYY-MM-DD`` date."""
    if not day:
        return float("-inf"), float("inf")
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    return start, start + 86400


def find(index: CallIndex, query: Query, region: str) -> Page:
    """The calls that ``query`` selects, newest first, one page of them.

    A ``text`` that is a known call id finds that call; otherwise it is read as a phone
    number and matched as the worker matches a stored number (``phones.matches``).
    """
    low, high = day_range(query.day)
    keys = [
        make(value)
        for make, value in ((state_key, query.state), (agent_key, query.agent), (mapping_key, query.mapping))
        if value
    ]
    start = (max(query.page, 1) - 1) * query.per_page
    if query.text and query.text.strip():
        matches = _text_matches(index, query.text.strip(), region)
        wanted = [e for e in matches if _keeps(e, query, low, high)]
        return Page(wanted[start : start + query.per_page], len(wanted), query)
    redis = index.redis
    if len(keys) <= 1:
        key = keys[0] if keys else ALL_KEY
        pipe = redis.pipeline()
        below = f"({high}" if high != float("inf") else "+inf"  # the day's end is not in it
        pipe.zrevrangebyscore(key, below, low, start=start, num=query.per_page)
        pipe.zcount(key, low, below)
        ids, total = pipe.execute()
        return Page(index.entries(i.decode() for i in ids), int(total), query)
    scored: list[tuple[bytes, float]] = redis.zinter(keys, withscores=True)  # type: ignore[assignment]
    pairs = sorted(((m.decode(), s) for m, s in scored if low <= s < high), key=lambda pair: -pair[1])
    return Page(index.entries(m for m, _ in pairs[start : start + query.per_page]), len(pairs), query)


def _keeps(entry: Entry, query: Query, low: float, high: float) -> bool:
    return (
        (not query.state or entry.state == query.state)
        and (not query.agent or entry.agent_id == query.agent)
        and (not query.mapping or entry.mapping == query.mapping)
        and low <= entry.at < high
    )


def _text_matches(index: CallIndex, text: str, region: str) -> list[Entry]:
    """The call with id ``text``, else the calls whose number ``text`` is, newest first."""
    exact = index.entries([text])
    if exact:
        return exact
    candidates: set[str] = set()
    for national in _national_forms(text, region):
        candidates.update(m.decode() for m in index.redis.zrange(phone_key(national), 0, -1))  # type: ignore[union-attr]
    found = [e for e in index.entries(sorted(candidates)) if e.number and phones.matches(text, e.number)]
    return sorted(found, key=lambda e: -e.at)


def _national_forms(text: str, region: str) -> set[str]:
    """The national numbers ``text`` may be: as typed (its digits), and as parsed in
    ``region`` when it has no country code, or as written when it has one."""
    forms = {phones.digits(text).lstrip("0")}
    parsed = phones.to_e164(text, "ZZ" if phones.has_country_code(text) else region)
    if parsed:
        forms.add(phones.national_digits(parsed).lstrip("0"))
    return {f for f in forms if len(f) >= 4}
