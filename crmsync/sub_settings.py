"""The sub-settings of ``Settings`` (SPEC §3), each read from its own variables and validated:
each CRM's (``settings.salesforce``, ``settings.hubspot``), the reconciliation sweep's
(``settings.reconcile``) and the batches' (``settings.batch``). ``crmsync.settings`` builds
them (the other platforms' are ``crmsync.provider_settings``'); a bad value raises
``SettingsError`` naming the variable.

``int_var`` and ``rate_var`` read one variable each (``tests/test_docs.py`` finds the
variables crmsync reads by these names and ``get``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import overload

from crmsync.errors import SettingsError

HUBSPOT_RATE_LIMIT = "100/10s"  # requests per window, all workers together
HUBSPOT_SEARCH_RATE_LIMIT = "4/s"  # search requests, all workers together
SALESFORCE_API_VERSION = "59.0"
HUBSPOT_APP_URL = "https://app.hubspot.com"

Getter = Callable[[str], str | None]  # one variable, stripped; None when unset or blank


@dataclass(frozen=True)
class SalesforceSettings:
    instance_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    consumer_key: str | None = None
    consumer_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    domain: str | None = None
    api_version: str = SALESFORCE_API_VERSION
    daily_budget: int | None = None

    @property
    def auth_mode(self) -> str:
        """``access_token`` | ``jwt`` | ``password`` | ``client_credentials`` | ``none``."""
        if self.access_token:
            return "access_token"
        if self.username and self.consumer_key and self.private_key:
            return "jwt"
        if self.username and self.password:
            return "password"
        if self.consumer_key and self.consumer_secret:
            return "client_credentials"
        return "none"

    @classmethod
    def from_env(cls, get: Getter) -> SalesforceSettings:
        return cls(
            instance_url=get("SALESFORCE_INSTANCE_URL"),
            access_token=get("SALESFORCE_ACCESS_TOKEN"),
            username=get("SALESFORCE_USERNAME"),
            password=get("SALESFORCE_PASSWORD"),
            security_token=get("SALESFORCE_SECURITY_TOKEN"),
            consumer_key=get("SALESFORCE_CONSUMER_KEY"),
            consumer_secret=get("SALESFORCE_CONSUMER_SECRET"),
            private_key=get("SALESFORCE_PRIVATE_KEY"),
            domain=get("SALESFORCE_DOMAIN"),
            api_version=get("SALESFORCE_API_VERSION") or SALESFORCE_API_VERSION,
            daily_budget=int_var(get, "SALESFORCE_DAILY_BUDGET", None, minimum=1),
        )


@dataclass(frozen=True)
class HubSpotSettings:
    access_token: str | None = field(default=None, repr=False)
    base_url: str = "https://api.hubapi.com"
    rate_limit: str = HUBSPOT_RATE_LIMIT
    search_rate_limit: str = HUBSPOT_SEARCH_RATE_LIMIT
    portal_id: str | None = None  # the console's links into HubSpot's UI need it
    app_url: str = HUBSPOT_APP_URL

    @classmethod
    def from_env(cls, get: Getter) -> HubSpotSettings:
        return cls(
            access_token=get("HUBSPOT_ACCESS_TOKEN"),
            base_url=(get("HUBSPOT_BASE_URL") or "https://api.hubapi.com").rstrip("/"),
            rate_limit=rate_var(get, "HUBSPOT_RATE_LIMIT", HUBSPOT_RATE_LIMIT),
            search_rate_limit=rate_var(get, "HUBSPOT_SEARCH_RATE_LIMIT", HUBSPOT_SEARCH_RATE_LIMIT),
            portal_id=get("HUBSPOT_PORTAL_ID"),
            app_url=(get("HUBSPOT_APP_URL") or HUBSPOT_APP_URL).rstrip("/"),
        )


@dataclass(frozen=True)
class ReconcileSettings:
    """The reconciliation sweep (SPEC §5), all in seconds; ``interval == 0`` turns it off."""

    interval: int = 300
    lookback: int = 7200
    grace: int = 300
    agent_ids: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, get: Getter, dedupe_ttl: int) -> ReconcileSettings:
        """``HAMSA_RECONCILE_*`` and ``HAMSA_AGENT_IDS``: a look-back must outlast the grace (else
        no call is ever old enough to take) and stay within ``DEDUPE_TTL`` (what crmsync
        remembers receiving)."""
        defaults = cls()
        lookback = int_var(get, "HAMSA_RECONCILE_LOOKBACK", defaults.lookback, minimum=60)
        grace = int_var(get, "HAMSA_RECONCILE_GRACE", defaults.grace, minimum=0)
        if grace >= lookback:
            raise SettingsError(
                "HAMSA_RECONCILE_GRACE",
                f"({grace} s) must be shorter than HAMSA_RECONCILE_LOOKBACK "
                f"({lookback} s): no call would ever be old enough to take",
            )
        if lookback > dedupe_ttl:
            raise SettingsError(
                "HAMSA_RECONCILE_LOOKBACK",
                f"({lookback} s) must not exceed DEDUPE_TTL ({dedupe_ttl} s): "
                "crmsync forgets older webhooks and would log them twice",
            )
        interval = int_var(get, "HAMSA_RECONCILE_INTERVAL", defaults.interval, minimum=0)
        agents = tuple(a.strip() for a in (get("HAMSA_AGENT_IDS") or "").split(",") if a.strip())
        return cls(
            interval=interval,
            lookback=lookback,
            grace=grace,
            agent_ids=agents,
        )


@dataclass(frozen=True)
class BatchSettings:
    """Calls synced together when they queue up (``crmsync.batch``): ``max`` calls at most
    per batch (None: the CRM's per-request maximum; 1: no batches), gathered for at most
    ``window`` seconds once a second call is waiting."""

    max: int | None = None
    window: float = 0.25

    @classmethod
    def from_env(cls, get: Getter) -> BatchSettings:
        """``SYNC_BATCH_MAX`` (at least 1) and ``SYNC_BATCH_WINDOW`` (seconds, 0 to 5)."""
        window = cls.window
        raw = get("SYNC_BATCH_WINDOW")
        if raw is not None:
            try:
                window = float(raw)
            except ValueError:
                raise SettingsError("SYNC_BATCH_WINDOW", f"{raw!r} is not a number of seconds such as 0.25") from None
            if not 0 <= window <= 5:
                raise SettingsError("SYNC_BATCH_WINDOW", "must be between 0 and 5 seconds: calls wait for it")
        return cls(max=int_var(get, "SYNC_BATCH_MAX", None, minimum=1), window=window)


@overload
def int_var(get: Getter, name: str, default: int, *, minimum: int) -> int: ...
@overload
def int_var(get: Getter, name: str, default: None, *, minimum: int) -> int | None: ...
def int_var(get: Getter, name: str, default: int | None, *, minimum: int) -> int | None:
    """Variable ``name`` as a whole number of at least ``minimum``; ``default`` when unset."""
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not a whole number") from None
    if value < minimum:
        raise SettingsError(name, f"must be at least {minimum}")
    return value


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|m|h|d|day)\s*$")


def rate_parts(text: str) -> tuple[int, int, str]:
    """``"100/10s"`` → ``(100, 10, "s")``: requests, windows of ``unit``, and the unit
    (``s``, ``m``, ``h``, ``d`` or ``day``); ValueError naming the text otherwise. The
    grammar of ``HUBSPOT_RATE_LIMIT`` and its kind, read by ``crm.ratelimit``."""
    match = _RATE.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a rate like 100/10s, 4/s or 15000/day")
    amount, multiples, unit = int(match[1]), int(match[2] or 1), match[3]
    if amount < 1 or multiples < 1:
        raise ValueError(f"{text!r} must allow at least one request per window")
    return amount, multiples, unit


def rate_var(get: Getter, name: str, default: str) -> str:
    """Variable ``name`` as a rate like ``100/10s`` (``rate_parts``); ``default`` when unset."""
    raw = get(name) or default
    try:
        rate_parts(raw)
    except ValueError as exc:
        raise SettingsError(name, str(exc)) from None
    return raw
