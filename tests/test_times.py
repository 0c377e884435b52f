"""crmsync.times: every time format crmsync reads → aware UTC, and the one way it writes them."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from crmsync import times


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2024-01-15T14:35:00.000Z", "2024-01-15T14:35:00.000Z"),
        ("2024-01-15T14:35:00z", "2024-01-15T14:35:00.000Z"),
        ("2024-01-15T16:35:00+02:00", "2024-01-15T14:35:00.000Z"),
        ("2024-01-15T09:35:00-05:00", "2024-01-15T14:35:00.000Z"),
        ("2024-01-15T14:35:00", "2024-01-15T14:35:00.000Z"),  # naive: UTC
        ("2024-01-15 14:35:00.5", "2024-01-15T14:35:00.500Z"),
        ("2024-01-15", "2024-01-15T00:00:00.000Z"),  # a date alone: midnight UTC
        (" 2024-01-15T14:35:00Z ", "2024-01-15T14:35:00.000Z"),
        (1705329300, "2024-01-15T14:35:00.000Z"),  # epoch seconds
        (1705329300.25, "2024-01-15T14:35:00.250Z"),
        (1705329300000, "2024-01-15T14:35:00.000Z"),  # epoch milliseconds
        ("1705329300000", "2024-01-15T14:35:00.000Z"),
        ("1705329300", "2024-01-15T14:35:00.000Z"),
        ("1705329300.5", "2024-01-15T14:35:00.500Z"),
        ("yesterday", None),
        ("", None),
        ("2026-02-30", None),
        (None, None),
        (True, None),
        ({"at": 1}, None),
        (float("nan"), None),
        (float("inf"), None),
        (10**400, None),  # out of any calendar: no time, no error
        (-(10**20), None),
    ],
)
def test_every_format_becomes_utc_iso(value, expected):
    assert times.to_iso(value) == expected


@pytest.mark.parametrize(
    "moment",
    [datetime(2024, 1, 15, 14, 35, tzinfo=UTC), datetime(2024, 1, 15, 17, 35, tzinfo=timezone(timedelta(hours=3)))],
)
def test_parse_gives_aware_utc(moment):
    parsed = times.parse(moment.isoformat())
    assert parsed == moment and parsed.utcoffset() == timedelta(0)
    assert times.epoch_ms(parsed) == 1705329300000
    assert times.parse(times.epoch_ms(parsed)) == moment


def test_now_iso_is_utc_with_milliseconds():
    now = times.now_iso()
    assert now.endswith("Z") and len(now) == len("2024-01-15T14:35:00.000Z")
    assert abs(times.parse(now) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1772442892318", "2026-03-02T09:14:52.318Z"),
        (1772442892318, "2026-03-02T09:14:52.318Z"),
        ("86400000", "1970-01-02T00:00:00.000Z"),  # milliseconds even when small (no seconds guess)
        ("9" * 40, None),
        ("9" * 5000, None),  # more digits than Python reads as one int
        ("12ab", None),
    ],
)
def test_epoch_milliseconds(value, expected):
    moment = times.from_epoch_ms(value)
    assert (times.iso(moment) if moment else None) == expected
