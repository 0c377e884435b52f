"""Translating what hubspot-api-client raises into crmsync's errors (the boundary).

hubspot-api-client has one ``ApiException`` class *per generated package* (contacts,
objects.calls, properties, ...), none of them related, and network failures arrive as
urllib3 exceptions instead. ``API_EXCEPTIONS`` lists the packages the connector uses; any
other exception carrying an int ``status`` and a ``body`` is treated the same way.

    status        raised as
    401, 403      CredentialsError      (a person must fix the token or its scopes)
    429           RateLimited           (``Retry-After`` honoured)
    5xx, 0        RetryableError        (timeouts, refused or dropped connections too)
    400 and else  PermanentError        (HubSpot's own message; ``fields`` names properties)

Messages keep HubSpot's words but never a token or a phone number: digit runs that look
like phone numbers are masked, and network errors are named by type only (urllib3's
text carries URLs).
"""

from __future__ import annotations

import json
import re
from typing import Any

import hubspot.crm.contacts as hs_contacts
import hubspot.crm.objects.calls as hs_calls
import hubspot.crm.properties as hs_properties
import urllib3.exceptions

from crmsync.crm.network import wrong_host
from crmsync.errors import CredentialsError, PermanentError, RateLimited, RetryableError, SyncError
from crmsync.phones import mask

CRM = "hubspot"
API_EXCEPTIONS: tuple[type[Exception], ...] = (
    hs_contacts.ApiException,
    hs_calls.ApiException,
    hs_properties.ApiException,
)
DEFAULT_RETRY_AFTER = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0, "DAILY": 3600.0}  # seconds
_PHONEISH = re.compile(r"(?<!\w)\+?\d[\d\s().\-]{5,}\d(?!\w)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_MESSAGE = 500  # characters


def scrub(text: str, secrets: tuple[str, ...] = (), limit: int | None = MAX_MESSAGE) -> str:
    """``text`` without secrets, with phone-like digit runs masked, cut at ``limit`` characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _PHONEISH.sub(_mask_phone, text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _DATE.fullmatch(text.strip()) or len(re.sub(r"\D", "", text)) < 7:
        return text
    return mask(text)


def is_api_exception(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, API_EXCEPTIONS):
        return True
    return isinstance(getattr(exc, "status", None), int) and hasattr(exc, "body") and hasattr(exc, "reason")


def is_network_error(exc: BaseException) -> bool:
    """urllib3 / socket failures, and the client's ``ApiException(status=0)`` for TLS errors,
    which its own ``e.body.decode()`` turns into an ``AttributeError``."""
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return True
    return isinstance(exc, AttributeError) and is_api_exception(exc.__context__)


def error_body(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def property_errors(body: dict[str, Any]) -> dict[str, str]:
    """Refused property -> HubSpot's message for it, from ``errors[]`` (v3) or the legacy
    JSON list embedded in ``message`` ("Property values were not valid: [...]")."""
    found: dict[str, str] = {}
    for entry in body.get("errors") or []:
        if not isinstance(entry, dict):
            continue
        names = (entry.get("context") or {}).get("propertyName") or []
        if entry.get("name"):
            names = [*names, entry["name"]]
        for name in names:
            found.setdefault(str(name), str(entry.get("message") or body.get("message") or ""))
    message = str(body.get("message") or "")
    if "[" in message and not found:
        try:
            legacy = json.loads(message[message.index("[") :])
        except ValueError:
            legacy = []
        for entry in legacy if isinstance(legacy, list) else []:
            if isinstance(entry, dict) and entry.get("name"):
                found.setdefault(str(entry["name"]), str(entry.get("message") or ""))
    return found


def translate(exc: BaseException, *, secrets: tuple[str, ...] = ()) -> SyncError | CredentialsError:
    """The crmsync error for a failed HubSpot request (``raise translate(e) from e``)."""
    if not is_api_exception(exc):
        if problem := wrong_host(exc):
            return CredentialsError(CRM, f"HubSpot could not be reached because {problem}; check HUBSPOT_BASE_URL")
        kind = type(exc).__name__
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            kind = f"{kind} ({type(reason).__name__})"
        return RetryableError(CRM, f"HubSpot did not answer: {kind}", status=0)
    status = int(getattr(exc, "status", 0) or 0)
    body = error_body(exc)
    category = body.get("category") or body.get("errorType")
    message = scrub(str(body.get("message") or getattr(exc, "reason", "") or f"HTTP {status}"), secrets)
    if status in (401, 403):
        return CredentialsError(CRM, f"HubSpot refused the access token ({status} {category or ''}): {message}".strip())
    if status == 429:
        policy = body.get("policyName")
        headers = getattr(exc, "headers", None) or {}
        retry_after = _seconds(headers.get("Retry-After")) or DEFAULT_RETRY_AFTER.get(str(policy), 10.0)
        return RateLimited(CRM, message, retry_after=retry_after, status=429, code=policy or category)
    if status == 0 or status >= 500:
        return RetryableError(CRM, message, status=status, code=category)
    fields = property_errors(body)
    if fields:
        details = "; ".join(f"{name}: {scrub(text, secrets)}" for name, text in fields.items())
        message = f"{category or 'VALIDATION_ERROR'}: {details}"
    return PermanentError(CRM, message, status=status, code=category, fields=list(fields))


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None
