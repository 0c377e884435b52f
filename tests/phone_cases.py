"""The phone matching table (SPEC §5), shared by the rule's own tests and by both CRM
connectors' tests against their sandboxes.

Each case: the number as stored in the CRM, the number as received from the call, the
``DEFAULT_REGION`` in force, and whether they are the same person.
"""

from __future__ import annotations

from typing import NamedTuple


class PhoneCase(NamedTuple):
    stored: str
    received: str
    region: str
    match: bool
    why: str


PHONE_CASES: list[PhoneCase] = [
    # United States / Canada (+1)
    PhoneCase("(415) 555-1212", "+14155551212", "US", True, "US UI format, no country code"),
    PhoneCase("415-555-1212", "+1 415 555 1212", "US", True, "dashes"),
    PhoneCase("+1 415 555 1212", "(415) 555-1212", "US", True, "received national, region US"),
    PhoneCase("1-415-555-1212", "+14155551212", "US", True, "trunk 1 written without +"),
    PhoneCase("4155551213", "+14155551212", "US", False, "one digit off"),
    PhoneCase("+1 415 555 1212", "+442079460018", "US", False, "another number entirely"),
    # United Kingdom (+44)
    PhoneCase("020 7946 0018", "+442079460018", "GB", True, "national with trunk 0"),
    PhoneCase("+44 (0)20 7946 0018", "+44 20 7946 0018", "GB", True, "(0) trunk inside international"),
    PhoneCase("0044 20 7946 0018", "02079460018", "GB", True, "00 international prefix; received national"),
    PhoneCase("+44 20 7946 0019", "+442079460018", "GB", False, "last digit differs"),
    # Saudi Arabia (+966)
    PhoneCase("0501234567", "+966501234567", "US", True, "stored national with 0, received E.164"),
    PhoneCase("+966 50 123 4567", "+966501234567", "US", True, "spaced E.164"),
    PhoneCase("00966501234567", "0501234567", "SA", True, "00 prefix; received national in SA"),
    PhoneCase("966501234567", "+966501234567", "SA", True, "country code without +"),
    PhoneCase("+971501234567", "+966501234567", "SA", False, "same national digits, UAE"),
    # United Arab Emirates (+971)
    PhoneCase("050 123 4567", "+971501234567", "AE", True, "national, spaced"),
    PhoneCase("+971-50-123-4567", "+971501234567", "AE", True, "dashed E.164"),
    PhoneCase("+966 50 123 4567", "+971501234567", "AE", False, "same national digits, Saudi"),
    # Egypt (+20)
    PhoneCase("01001234567", "+201001234567", "EG", True, "mobile with trunk 0"),
    PhoneCase("+20 100 123 4567", "01001234567", "EG", True, "received national in EG"),
    PhoneCase("+20 100 123 4568", "+201001234567", "EG", False, "one digit off"),
    # India (+91)
    PhoneCase("098765 43210", "+919876543210", "IN", True, "trunk 0, odd grouping"),
    PhoneCase("+91 98765 43210", "9876543210", "IN", True, "received national in IN"),
    PhoneCase("+91 98765 43210", "+19876543210", "US", False, "same digits, +1"),
    # Germany (+49)
    PhoneCase("030 12345678", "+493012345678", "DE", True, "Berlin with trunk 0"),
    PhoneCase("+49 (0)30 12345678", "+49 30 12345678", "DE", True, "(0) trunk inside international"),
    PhoneCase("+49 30 12345679", "+493012345678", "DE", False, "one digit off"),
    # Brazil (+55)
    PhoneCase("(11) 91234-5678", "+5511912345678", "BR", True, "Sao Paulo mobile, local style"),
    PhoneCase("+55 11 91234 5678", "+5511912345678", "BR", True, "spaced E.164"),
    PhoneCase("+55 21 91234 5678", "+5511912345678", "BR", False, "another area code"),
    # France (+33)
    PhoneCase("06 12 34 56 78", "+33612345678", "FR", True, "French mobile with trunk 0"),
    PhoneCase("+33 6 12 34 56 78", "+34612345678", "FR", False, "same digits, Spain"),
]
