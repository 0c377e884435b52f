import pytest

from crmsync import phones
from tests.phone_cases import PHONE_CASES


@pytest.mark.parametrize("case", PHONE_CASES, ids=lambda c: f"{c.stored}~{c.received}")
def test_matching_rule(case):
    caller = phones.to_e164(case.received, case.region)
    assert caller is not None, f"{case.received} should parse in {case.region}"
    assert phones.matches(case.stored, caller) is case.match, case.why


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("+1 (555) 123-4567", "US", "+15551234567"),
        ("0551234567", "SA", "+966551234567"),
        ("00966 55 123 4567", "US", "+966551234567"),
        ("not a number", "US", "not a number"),
        ("  ", "US", None),
        (None, "US", None),
    ],
)
def test_normalise(raw, region, expected):
    assert phones.normalise(raw, region) == expected


@pytest.mark.parametrize(
    "number, masked",
    [("+966501234567", "+9665*****567"), ("+14155551212", "+1415****212"), ("12345", "12***"), (None, "")],
)
def test_mask_hides_the_middle(number, masked):
    assert phones.mask(number) == masked


def test_country_count():
    assert len(PHONE_CASES) >= 30
    countries = {
        phones.national_digits(phones.to_e164(c.received, c.region)) and phones.parse(c.received, c.region).country_code
        for c in PHONE_CASES
    }
    assert len(countries) >= 8
