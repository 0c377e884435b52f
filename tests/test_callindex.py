"""The call index: listing, filtering and searching calls from its keys alone (real Redis)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from crmsync import callindex
from crmsync.callindex import CallIndex, Query, find

TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
YESTERDAY = TODAY - timedelta(days=1)
DAY1 = (YESTERDAY + timedelta(hours=9)).isoformat()  # calls of the last two days: inside the index's 30 days
DAY2 = (TODAY + timedelta(minutes=30)).isoformat()


def summary(number: str, started: str, agent: str = "agent-a", source: str = "webhook") -> dict:
    context = {"call": {"customer_number": number, "started_at": started, "agent_id": agent, "source": source}}
    return {**callindex.summary(context, "hubspot.yaml"), "time": datetime.fromisoformat(started).timestamp()}


@pytest.fixture
def index(redis):
    index = CallIndex(redis)
    index.write("c-sa-1", "queued", call=summary("+966501234567", DAY1))
    index.write("c-sa-1", "synced", person={"type": "contact", "id": "101"}, crm="hubspot")
    index.write("c-sa-2", "failed", call=summary("+966501234567", DAY2, agent="agent-b"))
    index.write("c-us-1", "partial", call=summary("+14155550100", DAY2))
    index.write("c-ae-1", "synced", call=summary("+971501234567", DAY2))  # same national digits, other country
    return index


def ids(page) -> list[str]:
    return [e.call_id for e in page.entries]


def test_newest_first_and_each_call_in_one_state(index, redis):
    page = find(index, Query(), "SA")
    assert page.total == 4
    assert ids(page)[-1] == "c-sa-1"  # the oldest call
    assert ids(find(index, Query(state="synced"), "SA")) == ["c-ae-1", "c-sa-1"]
    assert ids(find(index, Query(state="queued"), "SA")) == []  # it left queued when it synced
    [entry] = index.entries(["c-sa-1"])
    assert (entry.state, entry.person_id, entry.agent_id, entry.mapping) == ("synced", "101", "agent-a", "hubspot.yaml")
    assert entry.masked == "+9665*****567"


def test_filters_combine(index):
    assert ids(find(index, Query(agent="agent-b"), "SA")) == ["c-sa-2"]
    assert ids(find(index, Query(day=YESTERDAY.date().isoformat()), "SA")) == ["c-sa-1"]
    assert set(ids(find(index, Query(day=TODAY.date().isoformat(), state="synced"), "SA"))) == {"c-ae-1"}
    assert ids(find(index, Query(mapping="hubspot.yaml", agent="agent-a", state="partial"), "SA")) == ["c-us-1"]
    assert find(index, Query(mapping="other.yaml"), "SA").total == 0


@pytest.mark.parametrize(
    "typed", ["050 123 4567", "0501234567", "+966 50 123 4567", "00966501234567", "(050) 123-4567"]
)
def test_a_number_typed_any_way_finds_its_calls(index, typed):
    found = ids(find(index, Query(text=typed), "SA"))
    # no country code: the national digits match, as the worker matches a stored number; with one: only Saudi calls
    expected = ["c-sa-2", "c-sa-1"] + (["c-ae-1"] if not typed.startswith(("+", "00")) else [])
    assert sorted(found) == sorted(expected)


def test_a_number_with_another_country_code_or_one_digit_off_finds_nothing(index):
    assert find(index, Query(text="+971 50 123 4567"), "SA").total == 1
    assert find(index, Query(text="050 123 4568"), "SA").total == 0
    assert ids(find(index, Query(text="(415) 555-0100"), "US")) == ["c-us-1"]


def test_a_call_id_finds_that_call(index):
    assert ids(find(index, Query(text="c-us-1"), "SA")) == ["c-us-1"]


def test_pages(redis):
    index = CallIndex(redis)
    for i in range(7):
        index.write(f"call-{i}", "synced", call={"time": time.time() - 100 + i})
    first = find(index, Query(per_page=3), "US")
    last = find(index, Query(per_page=3, page=3), "US")
    assert (ids(first), ids(last), first.pages) == (["call-6", "call-5", "call-4"], ["call-0"], 3)


def test_bounded_by_the_ttl(redis):
    index = CallIndex(redis, ttl=3600)
    index.write("old", "synced", call={"time": time.time() - 7200, "agent_id": "a"})
    index.write("new", "synced", call={"time": time.time(), "agent_id": "a"})
    # writing "new" dropped "old" from every set it touched; every key expires
    assert [m.decode() for m in redis.zrange(callindex.ALL_KEY, 0, -1)] == ["new"]
    assert [m.decode() for m in redis.zrange(callindex.agent_key("a"), 0, -1)] == ["new"]
    for key in redis.scan_iter(callindex.PREFIX + "*"):
        assert 0 < redis.ttl(key) <= 3600, key


def test_an_expired_entry_is_skipped_and_leaves_the_index(index, redis):
    redis.delete(callindex.entry_key("c-us-1"))
    assert "c-us-1" not in ids(find(index, Query(), "SA"))
    assert redis.zscore(callindex.ALL_KEY, "c-us-1") is None


def test_no_number_in_key_names(index, redis):
    for key in redis.scan_iter("*"):
        assert b"501234567" not in key and b"4155550100" not in key


def test_crmsync_calls_lists_what_the_console_lists(index, monkeypatch):
    from click.testing import CliRunner

    from crmsync.cli import main

    monkeypatch.setenv("DEFAULT_REGION", "SA")
    done = CliRunner().invoke(main, ["calls", "--search", "050 123 4567", "--json"])
    assert done.exit_code == 0, done.output
    listed = json.loads(done.output)
    assert listed["total"] == 3 and {c["call_id"] for c in listed["calls"]} == {"c-sa-1", "c-sa-2", "c-ae-1"}
    assert all(c["number"].count("*") >= 4 for c in listed["calls"])  # masked, as in the console
    assert ids(find(index, Query(text="050 123 4567"), "SA")) == [c["call_id"] for c in listed["calls"]]
    table = CliRunner().invoke(main, ["calls", "--state", "failed"])
    assert table.exit_code == 0 and "c-sa-2" in table.output and "1 call, page 1 of 1" in table.output
    wrong = CliRunner().invoke(main, ["calls", "--day", "yesterday"])
    assert wrong.exit_code == 2 and "YYYY-MM-DD" in wrong.output
