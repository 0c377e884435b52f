"""What every platform's signature check shares: header reading, HMAC, constant-time
comparison against every accepted secret, and timestamp windows.

A check reads only the headers and the raw body bytes, before anything is parsed, and
raises ``SignatureRefused`` whose message is safe to return and to log: it names the
header and the setting, never a secret or a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping, Sequence


class SignatureRefused(Exception):
    """The request is not signed by the platform; answered 401 ``unauthorized``."""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's stripped value (names compared case-insensitively); None when absent or empty."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    value = (value or "").strip()
    return value or None


def required_header(headers: Mapping[str, str], name: str, form: str) -> str:
    value = header(headers, name)
    if value is None:
        raise SignatureRefused(f"The {name} header is missing: the request must be signed ({form}).")
    return value


def pairs(value: str) -> dict[str, list[str]]:
    """``"t=1,v0=ab,v0=cd"`` → ``{"t": ["1"], "v0": ["ab", "cd"]}``; blank parts are ignored."""
    found: dict[str, list[str]] = {}
    for part in value.split(","):
        key, sep, item = part.strip().partition("=")
        if sep and key.strip() and item.strip():
            found.setdefault(key.strip().lower(), []).append(item.strip())
    return found


def stamped_signatures(
    headers: Mapping[str, str], name: str, form: str, stamp_key: str, signature_key: str
) -> tuple[str, list[bytes]]:
    """A ``<stamp_key>=<digits>,<signature_key>=<hex>[,<signature_key>=<hex>…]`` header
    (ElevenLabs', Retell's) as (the stamp, each signature as ``hex_bytes``)."""
    parts = pairs(required_header(headers, name, form))
    if len(parts.get(stamp_key, [])) != 1 or not parts.get(signature_key) or not parts[stamp_key][0].isdigit():
        raise SignatureRefused(f"The {name} header is not in the expected form {form}.")
    return parts[stamp_key][0], [hex_bytes(value, name, form) for value in parts[signature_key]]


def hmac_digest(secret: str, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).digest()


def matches_any(given: Sequence[bytes], secrets: Iterable[str], expected: Callable[[str], bytes]) -> bool:
    """True when one of ``given`` equals ``expected(secret)`` for one of ``secrets``.

    Every pair is compared with ``hmac.compare_digest`` and none is skipped, so the time
    taken does not tell which secret, or how much of a signature, matched.
    """
    matched = False
    for secret in secrets:
        want = expected(secret)
        for candidate in given:
            matched |= hmac.compare_digest(candidate, want)
    return matched


def hex_hmac_matches(given: Sequence[bytes], secrets: Iterable[str], message: bytes) -> bool:
    """``matches_any`` for signatures in lower-case hex (``hex_bytes``) of HMAC-SHA256(secret, ``message``)."""
    return matches_any(given, secrets, lambda secret: hmac_digest(secret, message).hex().encode())


def equals_any(given: str, secrets: Iterable[str]) -> bool:
    """A verbatim secret (or token) compared in constant time against each accepted one."""
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(given.encode(), secret.encode())
    return matched


def hex_bytes(value: str, name: str, form: str, size: int = 32) -> bytes:
    """A hex signature of ``size`` bytes as text bytes to compare (lower case); anything else
    (other characters, another length) is the wrong form."""
    text = value.strip().lower()
    if len(text) != 2 * size or any(c not in "0123456789abcdef" for c in text):
        raise SignatureRefused(f"The {name} header is not in the expected form {form}.")
    return text.encode()


def epoch_seconds(value: str, name: str, form: str, *, milliseconds: bool | None = False) -> float:
    """A header's epoch timestamp in seconds. ``milliseconds=None``: guessed from its size."""
    try:
        number = float(value)
    except ValueError:
        raise SignatureRefused(f"The {name} header is not in the expected form {form}.") from None
    if number != number or number <= 0:  # NaN or not a time
        raise SignatureRefused(f"The {name} header is not in the expected form {form}.")
    if milliseconds or (milliseconds is None and number > 1e11):
        number /= 1000
    return number


def check_age(signed_at: float, tolerance: float, name: str, now: float | None = None) -> None:
    """Refuse a signature made more than ``tolerance`` seconds away from now (either way)."""
    current = time.time() if now is None else now
    if abs(current - signed_at) > tolerance:
        minutes = tolerance / 60
        window = f"{minutes:g} minutes" if tolerance >= 60 else f"{tolerance:g} seconds"
        raise SignatureRefused(
            f"The {name} timestamp is more than {window} from this server's clock: a replayed or delayed "
            "request, or a clock that is wrong."
        )
