"""Phone numbers: normalising what Hamsa sends, and matching what a CRM stores.

The matching rule (SPEC §5): a number stored *with* a country code matches only that
country's number; a number stored *without* one matches a caller whose national number
has the same digits, trunk prefixes (a leading 0, or 1 in North America) aside. The same
national digits in another country, or one digit off, never match. ``phonenumbers`` does
the parsing; this module only decides which way to read a stored value.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

_NON_DIGITS = re.compile(r"\D")


def parse(raw: str | None, region: str) -> PhoneNumber | None:
    """A received number as a ``PhoneNumber``, or None when it is no possible number.

    ``region`` applies only to numbers written without a country code. ``00`` is read
    as the international prefix whatever the region.
    """
    if not raw or not isinstance(raw, str):
        return None
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def to_e164(raw: str | None, region: str) -> str | None:
    """``raw`` written E.164 where it parses, else None."""
    number = parse(raw, region)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164) if number else None


def normalise(raw: str | None, region: str) -> str | None:
    """E.164 where ``raw`` parses, else ``raw`` as received (stripped); None when empty."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    return to_e164(text, region) or text


def digits(raw: str) -> str:
    return _NON_DIGITS.sub("", raw)


def national_digits(e164: str) -> str:
    """The national significant number of an E.164 number (``+966501234567`` → ``501234567``)."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.national_significant_number(number)


def has_country_code(stored: str) -> bool:
    text = stored.strip()
    return text.startswith("+") or text.startswith("00")


def matches(stored: str | None, caller_e164: str) -> bool:
    """Whether a number as stored in the CRM is the caller's number (the SPEC §5 rule)."""
    if not stored or not stored.strip():
        return False
    try:
        caller = phonenumbers.parse(caller_e164, None)
    except NumberParseException:
        return False
    if has_country_code(stored):
        candidate = parse(stored, "ZZ")
        return candidate is not None and _same(candidate, caller)
    region = phonenumbers.region_code_for_number(caller) or "ZZ"
    candidate = parse(stored, region)
    if candidate is not None and _same(candidate, caller):
        return True
    # Stored without a country code: compare national digits, trunk zeros aside.
    return digits(stored).lstrip("0") == phonenumbers.national_significant_number(caller).lstrip("0")


def _same(a: PhoneNumber, b: PhoneNumber) -> bool:
    return a.country_code == b.country_code and phonenumbers.national_significant_number(
        a
    ) == phonenumbers.national_significant_number(b)


def mask(number: str | None) -> str:
    """A number safe for logs: ``+966501234567`` → ``+9665*****567``."""
    if not number:
        return ""
    text = str(number)
    if len(text) <= 8:
        return text[:2] + "*" * max(len(text) - 2, 0)
    return text[:5] + "*" * (len(text) - 8) + text[-3:]
