"""Coercion from what Hamsa sends to each type, written in each CRM's wire form by its
profile — failures included."""

from __future__ import annotations

from typing import Any

import pytest

from crmsync.crm.profiles import profile
from crmsync.mapping.coerce import CoercionError, coerce, is_empty

OK = [
    # (raw, type, Salesforce wire value, HubSpot wire value)
    ("hello", "string", "hello", "hello"),
    ("  padded ", "string", "padded", "padded"),
    (42, "string", "42", "42"),
    (True, "string", "true", "true"),
    ('["price", "timing"]', "string", "price, timing", "price, timing"),
    (["a", None, "b"], "string", "a, b", "a, b"),
    ({"b": 1, "a": 2}, "string", '{"a": 2, "b": 1}', '{"a": 2, "b": 1}'),
    ("80000", "number", 80000, "80000"),
    ("80,000", "number", 80000, "80000"),
    ("1,234,567.5", "number", 1234567.5, "1234567.5"),
    ("12.5", "number", 12.5, "12.5"),
    ("-3", "number", -3, "-3"),
    (" 7 ", "number", 7, "7"),
    ("80000.0", "number", 80000, "80000"),
    (9.0, "number", 9, "9"),
    ("1e3", "number", 1000, "1000"),
    ("42", "integer", 42, "42"),
    ("3.0", "integer", 3, "3"),
    (5, "integer", 5, "5"),
    ("true", "boolean", True, "true"),
    ("Yes", "boolean", True, "true"),
    ("y", "boolean", True, "true"),
    ("1", "boolean", True, "true"),
    ("on", "boolean", True, "true"),
    ("FALSE", "boolean", False, "false"),
    ("no", "boolean", False, "false"),
    ("0", "boolean", False, "false"),
    (1, "boolean", True, "true"),
    (False, "boolean", False, "false"),
    ("2026-04-01", "date", "2026-04-01", "1775001600000"),
    ("2026-04-01T23:30:00+02:00", "date", "2026-04-01", "1775001600000"),
    ("2026-04-01T23:30:00-02:00", "date", "2026-04-02", "1775088000000"),
    (1775001600000, "date", "2026-04-01", "1775001600000"),
    ("1775044800000", "date", "2026-04-01", "1775001600000"),
    ("1775044800", "date", "2026-04-01", "1775001600000"),
    ("2026-03-02T09:14:52.318Z", "datetime", "2026-03-02T09:14:52.318Z", "1772442892318"),
    ("2026-03-02T12:14:52+03:00", "datetime", "2026-03-02T09:14:52.000Z", "1772442892000"),
    ("2026-03-02 09:14:52", "datetime", "2026-03-02T09:14:52.000Z", "1772442892000"),
    ("2026-03-02", "datetime", "2026-03-02T00:00:00.000Z", "1772409600000"),
    (1772442801000, "datetime", "2026-03-02T09:13:21.000Z", "1772442801000"),
    ("1772442801000", "datetime", "2026-03-02T09:13:21.000Z", "1772442801000"),
    (1772442801, "datetime", "2026-03-02T09:13:21.000Z", "1772442801000"),
    ("High", "enum", "High", "High"),
    ('["price", "timing"]', "enum", "price;timing", "price;timing"),
    (["a", "b"], "enum", "a;b", "a;b"),
    ("+966 50 123 4567", "phone", "+966501234567", "+966501234567"),
    ("00966501234567", "phone", "+966501234567", "+966501234567"),
    ("(415) 555-1212", "phone", "+14155551212", "+14155551212"),
]


@pytest.mark.parametrize(("raw", "kind", "salesforce", "hubspot"), OK, ids=[f"{c[1]}:{c[0]!r}" for c in OK])
def test_coercion_per_type_and_crm(raw: Any, kind: str, salesforce: Any, hubspot: str) -> None:
    value = coerce(raw, kind, "US")
    wire = profile("salesforce").wire(value)
    assert (wire, type(wire)) == (salesforce, type(salesforce))  # JSON types: 80000 stays an int
    assert profile("hubspot").wire(value) == hubspot


def test_salesforce_gets_json_types() -> None:
    salesforce = profile("salesforce")
    assert isinstance(salesforce.wire(coerce("80000", "number")), int)
    assert isinstance(salesforce.wire(coerce("12.5", "number")), float)
    assert salesforce.wire(coerce("yes", "boolean")) is True


def test_a_national_phone_number_uses_the_region() -> None:
    assert coerce("0551234567", "phone", "SA") == "+966551234567"


FAILURES = [
    ("eighty thousand", "number", '"eighty thousand" is not a number'),
    ("80.000,00", "number", '"80.000,00" is not a number'),
    ("nan", "number", '"nan" is not a finite number'),
    ("inf", "number", '"inf" is not a finite number'),
    (True, "number", '"true" is a yes/no value, not a number'),
    ("[1, 2]", "number", '"[1, 2]" is not a number'),
    ([1, 2], "number", '"[1, 2]" is a list or object, not one number'),
    ("3.5", "integer", '"3.5" is not a whole number'),
    ("maybe", "boolean", '"maybe" is not one of true/false, yes/no, 1/0'),
    ("2", "boolean", '"2" is not one of true/false, yes/no, 1/0'),
    ("next month", "date", '"next month" is not a date (YYYY-MM-DD, ISO 8601 or epoch ms)'),
    ("2026-02-30", "date", '"2026-02-30" is not a date (YYYY-MM-DD, ISO 8601 or epoch ms)'),
    ("tomorrow 10am", "datetime", '"tomorrow 10am" is not a date and time (ISO 8601 or epoch ms)'),
    ("12345", "phone", "a value of 5 digits is not a phone number"),
    ("call me", "phone", '"call me" is not a phone number'),
    ("a very long value that goes on and on and on", "number", '"a very long value that g…" is not a number'),
]


@pytest.mark.parametrize(("raw", "kind", "message"), FAILURES, ids=[f"{c[1]}:{c[0]!r}" for c in FAILURES])
def test_coercion_failures_say_why(raw: Any, kind: str, message: str) -> None:
    with pytest.raises(CoercionError) as caught:
        coerce(raw, kind, "US")
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [None, "", "   ", "null", "None", "[]", "{}", [], {}])
def test_empty_values(value: Any) -> None:
    assert is_empty(value)


@pytest.mark.parametrize("value", ["0", 0, False, "false", "x", ["a"]])
def test_values_that_are_not_empty(value: Any) -> None:
    assert not is_empty(value)
