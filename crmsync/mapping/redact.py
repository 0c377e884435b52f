"""Redaction: what a mapping's ``redact:`` rules take out of text before it leaves crmsync.

Built-in rules (``redact: [card_number, iban, email]``):

* ``card_number``: 13 to 19 digits, alone or in groups split by spaces or dashes, that pass
  the Luhn check (an order number that fails it is left); digits of any script count (Arabic
  ``٤١١١ ١١١١ …`` as well as ``4111 1111 …``). Digits right after a ``+`` are a phone
  number, never a card.
* ``iban``: a country code, two check digits and 11 to 30 letters or digits (spaces allowed
  every few characters) whose ISO 7064 mod-97 check is 1.
* ``email``: ``name@domain.tld``, letters of any script.

An admin adds patterns as ``{pattern: REGEX, replacement: TEXT}`` (``replacement`` defaults
to ``[redacted]``). ``Redactor(rules)(text)`` applies every rule in order. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

BUILTIN = ("card_number", "iban", "email")
DEFAULT_REPLACEMENT = "[redacted]"
TRANSCRIPT_MODES = ("full", "redacted", "none")


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    replacement: str
    check: Callable[[str], bool] | None = None  # the match is redacted only when this holds


def _digits(text: str) -> str:
    return "".join(str(unicodedata.digit(c)) for c in text if unicodedata.digit(c, None) is not None)


def luhn(text: str) -> bool:
    """Whether the digits of ``text`` (any script) pass the Luhn check."""
    digits = [int(d) for d in _digits(text)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return bool(digits) and total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_CARD = re.compile(r"(?<![\d+])\d(?:[ \-]?\d){12,18}(?!\d)")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")

RULES = {
    "card_number": Rule("card_number", _CARD, "[card number]", luhn),
    "iban": Rule("iban", _IBAN, "[IBAN]", iban_valid),
    "email": Rule("email", _EMAIL, "[e-mail]"),
}


def custom(pattern: str, replacement: str = DEFAULT_REPLACEMENT) -> Rule:
    """An admin's rule; ``re.error`` when ``pattern`` is no regular expression."""
    return Rule(f"pattern {pattern}", re.compile(pattern), replacement)


@dataclass(frozen=True)
class Redactor:
    """Every rule applied in order; an empty one changes nothing."""

    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __call__(self, text: str) -> str:
        for rule in self.rules:
            text = rule.pattern.sub(partial(_replace, rule=rule), text)
        return text

    def names(self) -> list[str]:
        return [rule.name for rule in self.rules]


def _replace(match: re.Match[str], *, rule: Rule) -> str:
    found = match.group(0)
    if rule.check is None or rule.check(found):
        return rule.replacement
    if rule.name == "iban":  # the pattern may have run into the next word: try shorter, at spaces
        parts = found.split(" ")
        for end in range(len(parts) - 1, 0, -1):
            head = " ".join(parts[:end])
            if iban_valid(head):
                return rule.replacement + found[len(head) :]
    return found


def builtin(names: Sequence[str]) -> Redactor:
    return Redactor(tuple(RULES[name] for name in names))


REDACT_KEYS = ("pattern", "replacement")


def parse_rules(items: Sequence[Any]) -> tuple[Redactor, list[tuple[tuple[int | str, ...], str]]]:
    """A mapping's ``redact:`` list: the redactor, and every problem as (key path under
    ``redact``, what would be valid)."""
    rules: list[Rule] = []
    problems: list[tuple[tuple[int | str, ...], str]] = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item in RULES:
            rules.append(RULES[item])
        elif isinstance(item, dict):
            unknown = [str(k) for k in item if k not in REDACT_KEYS]
            pattern, replacement = item.get("pattern"), item.get("replacement", DEFAULT_REPLACEMENT)
            if unknown:
                problems.append(((i, unknown[0]), f'unknown key "{unknown[0]}"; valid keys: pattern, replacement'))
            elif not isinstance(pattern, str) or not pattern or not isinstance(replacement, str):
                problems.append(
                    (
                        (i,),
                        'needs "pattern" (a regular expression, as text) and optionally '
                        '"replacement" (text, default [redacted])',
                    )
                )
            else:
                try:
                    rules.append(custom(pattern, replacement))
                except re.error as exc:
                    problems.append(
                        (
                            (i, "pattern"),
                            f"is no regular expression ({exc}); put it in single quotes "
                            "so that YAML keeps every backslash",
                        )
                    )
        else:
            shown = f'"{item}"' if isinstance(item, str) else repr(item)
            problems.append(
                ((i,), f"{shown} is not one of {', '.join(BUILTIN)}, or {{pattern: REGEX, replacement: TEXT}}")
            )
    return Redactor(tuple(rules)), problems
