"""Settings: one value object built from the environment, validated at start (SPEC §3).

``Settings.from_env()`` is called once per process and passed in explicitly; nothing
here is global: the web process reads it in ``create_app`` (gunicorn builds the app once,
in its master), the worker and every other ``crmsync`` command when it starts. A missing
or contradictory variable raises ``SettingsError`` naming it and saying how to fix it;
the entry points print that one line and exit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from crmsync.errors import SettingsError
from crmsync.provider_settings import ProviderSettings

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEDUPE_TTL = 7 * 24 * 3600  # seconds
AUDIT_TTL = 90 * 24 * 3600  # seconds the field-write audit is kept
MAX_BODY_BYTES = 2 * 1024 * 1024  # bytes
HUBSPOT_RATE_LIMIT = "100/10s"  # requests per window, all workers together
HUBSPOT_SEARCH_RATE_LIMIT = "4/s"  # search requests, all workers together
SALESFORCE_API_VERSION = "59.0"
HUBSPOT_APP_URL = "https://app.hubspot.com"
SECRET_KEY_MIN = 16  # characters
CRMS = ("salesforce", "hubspot")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

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


@dataclass(frozen=True)
class HubSpotSettings:
    access_token: str | None = field(default=None, repr=False)
    base_url: str = "https://api.hubapi.com"
    rate_limit: str = HUBSPOT_RATE_LIMIT
    search_rate_limit: str = HUBSPOT_SEARCH_RATE_LIMIT
    portal_id: str | None = None  # the console's links into HubSpot's UI need it
    app_url: str = HUBSPOT_APP_URL


@dataclass(frozen=True)
class ReconcileSettings:
    """The reconciliation sweep (SPEC §5), all in seconds; ``interval == 0`` turns it off."""

    interval: int = 300
    lookback: int = 7200
    grace: int = 300
    agent_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchSettings:
    """Calls synced together when they queue up (``crmsync.batch``): ``max`` calls at most
    per batch (None: the CRM's per-request maximum; 1: no batches), gathered for at most
    ``window`` seconds once a second call is waiting."""

    max: int | None = None
    window: float = 0.25


@dataclass(frozen=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    redis_ssl_cert_reqs: str | None = None
    webhook_tokens: tuple[str, ...] = field(default=(), repr=False)
    webhook_auth: str = "bearer"  # "bearer" | "none"
    crm: str | None = None
    mappings_dir: Path = Path("mappings")
    salesforce: SalesforceSettings = field(default_factory=SalesforceSettings)
    hubspot: HubSpotSettings = field(default_factory=HubSpotSettings)
    hamsa_api_key: str | None = field(default=None, repr=False)
    hamsa_base_url: str = "https://api.tryhamsa.com"
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    default_region: str = "US"
    dedupe_ttl: int = DEDUPE_TTL
    raw_body_ttl: int = DEDUPE_TTL  # seconds raw webhook bodies are kept (at most dedupe_ttl)
    audit_ttl: int = AUDIT_TTL
    log_level: str = "INFO"
    metrics_token: str | None = field(default=None, repr=False)
    console_password: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    providers: ProviderSettings = field(default_factory=ProviderSettings)  # Retell, Vapi, ElevenLabs, Bland

    @property
    def sweeps_on(self) -> bool:
        """Reconciliation sweeps run: ``HAMSA_API_KEY`` set, ``HAMSA_RECONCILE_INTERVAL`` not 0."""
        return bool(self.hamsa_api_key) and self.reconcile.interval > 0

    @property
    def mapping_path(self) -> Path:
        return self.mappings_dir / f"{self.crm}.yaml"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every variable of SPEC §3 (only their format: which ones a
        process needs is checked by ``require_*``)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        auth, tokens = _webhook_auth(get)
        crm = _crm(get)
        region = (get("DEFAULT_REGION") or "US").upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise SettingsError("DEFAULT_REGION", f"{region!r} is not an ISO 3166 region code such as US, GB or SA")
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in LOG_LEVELS:
            raise SettingsError("LOG_LEVEL", f"{level!r} is not one of {', '.join(LOG_LEVELS)}")
        cert_reqs = get("REDIS_SSL_CERT_REQS")
        if cert_reqs is not None and cert_reqs.lower() not in ("none", "optional", "required"):
            raise SettingsError("REDIS_SSL_CERT_REQS", f"{cert_reqs!r} is not one of none, optional, required")
        redis_url = get("REDIS_URL") or DEFAULT_REDIS_URL
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL", "must start with redis://, rediss:// or unix://")
        dedupe_ttl = _int(get, "DEDUPE_TTL", DEDUPE_TTL, minimum=60) or DEDUPE_TTL
        raw_body_ttl = _int(get, "RAW_BODY_TTL", dedupe_ttl, minimum=60) or dedupe_ttl
        if raw_body_ttl > dedupe_ttl:
            raise SettingsError(
                "RAW_BODY_TTL",
                f"({raw_body_ttl} s) must not exceed DEDUPE_TTL ({dedupe_ttl} s): "
                "a raw body is kept at most as long as its event",
            )
        return cls(
            redis_url=redis_url,
            redis_ssl_cert_reqs=cert_reqs.lower() if cert_reqs else None,
            webhook_tokens=tokens,
            webhook_auth=auth,
            crm=crm,
            mappings_dir=Path(get("MAPPINGS_DIR") or "mappings"),
            hubspot=_hubspot(get),
            salesforce=_salesforce(get),
            hamsa_api_key=get("HAMSA_API_KEY"),
            hamsa_base_url=(get("HAMSA_BASE_URL") or "https://api.tryhamsa.com").rstrip("/"),
            reconcile=_reconcile(get, dedupe_ttl),
            batch=_batch(get),
            default_region=region,
            dedupe_ttl=dedupe_ttl,
            raw_body_ttl=raw_body_ttl,
            audit_ttl=_int(get, "AUDIT_TTL", AUDIT_TTL, minimum=60) or AUDIT_TTL,
            log_level=level,
            metrics_token=get("METRICS_TOKEN"),
            console_password=get("CONSOLE_PASSWORD"),
            secret_key=_secret_key(get),
            providers=ProviderSettings.from_env(get),
        )

    # -- what each process needs ---------------------------------------------------------
    def require_console(self) -> bool:
        """Whether the console is on; with ``CONSOLE_PASSWORD`` a ``SECRET_KEY`` is required."""
        if not self.console_password:
            return False
        if not self.secret_key:
            raise SettingsError(
                "SECRET_KEY",
                "is not set: the console (CONSOLE_PASSWORD) signs its sessions with "
                "it; set the same long random value on every web process",
            )
        return True

    def require_webhook_auth(self) -> None:
        if self.webhook_auth == "bearer" and not self.webhook_tokens:
            raise SettingsError(
                "WEBHOOK_TOKENS",
                "is not set: set it to one or more comma-separated tokens, or WEBHOOK_AUTH=none for local development",
            )

    def require_crm(self) -> str:
        if not self.crm:
            raise SettingsError("CRM", "is not set: set it to salesforce or hubspot")
        return self.crm

    def require_crm_credentials(self) -> None:
        crm = self.require_crm()
        if crm == "hubspot" and not self.hubspot.access_token:
            raise SettingsError("HUBSPOT_ACCESS_TOKEN", "is not set: create a private app in HubSpot and set its token")
        if crm == "salesforce":
            sf = self.salesforce
            if sf.auth_mode == "none":
                raise SettingsError(
                    "SALESFORCE_ACCESS_TOKEN",
                    "is not set and no other Salesforce login is configured: set it with SALESFORCE_INSTANCE_URL, "
                    "or SALESFORCE_USERNAME with SALESFORCE_PASSWORD (password login), SALESFORCE_CONSUMER_KEY "
                    "with SALESFORCE_PRIVATE_KEY (JWT), or SALESFORCE_CONSUMER_KEY with SALESFORCE_CONSUMER_SECRET",
                )
            if sf.auth_mode == "access_token" and not sf.instance_url:
                raise SettingsError(
                    "SALESFORCE_INSTANCE_URL", "is not set: an access token needs the instance URL it belongs to"
                )
            if sf.auth_mode == "client_credentials" and not sf.domain:
                raise SettingsError(
                    "SALESFORCE_DOMAIN", "is not set: client-credentials login needs your My Domain (e.g. acme.my)"
                )


def _webhook_auth(get: Getter) -> tuple[str, tuple[str, ...]]:
    tokens = tuple(t.strip() for t in (get("WEBHOOK_TOKENS") or "").split(",") if t.strip())
    auth = (get("WEBHOOK_AUTH") or "bearer").lower()
    if auth not in ("bearer", "none"):
        raise SettingsError("WEBHOOK_AUTH", f"{auth!r} is not valid: leave it unset, or set it to none")
    if auth == "none" and tokens:
        raise SettingsError(
            "WEBHOOK_AUTH", "is none but WEBHOOK_TOKENS is set: unset one of them (none is for local development)"
        )
    return auth, tokens


def _crm(get: Getter) -> str | None:
    crm = get("CRM")
    if crm is None:
        return None
    if crm.lower() not in CRMS:
        raise SettingsError("CRM", f"{crm.lower()!r} is not valid: set it to salesforce or hubspot")
    return crm.lower()


def _hubspot(get: Getter) -> HubSpotSettings:
    return HubSpotSettings(
        access_token=get("HUBSPOT_ACCESS_TOKEN"),
        base_url=(get("HUBSPOT_BASE_URL") or "https://api.hubapi.com").rstrip("/"),
        rate_limit=_rate(get, "HUBSPOT_RATE_LIMIT", HUBSPOT_RATE_LIMIT),
        search_rate_limit=_rate(get, "HUBSPOT_SEARCH_RATE_LIMIT", HUBSPOT_SEARCH_RATE_LIMIT),
        portal_id=get("HUBSPOT_PORTAL_ID"),
        app_url=(get("HUBSPOT_APP_URL") or HUBSPOT_APP_URL).rstrip("/"),
    )


def _salesforce(get: Getter) -> SalesforceSettings:
    return SalesforceSettings(
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
        daily_budget=_int(get, "SALESFORCE_DAILY_BUDGET", None, minimum=1),
    )


def _int(get: Getter, name: str, default: int | None, *, minimum: int) -> int | None:
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


def _batch(get: Getter) -> BatchSettings:
    """``SYNC_BATCH_MAX`` (at least 1) and ``SYNC_BATCH_WINDOW`` (seconds, 0 to 5)."""
    window = BatchSettings.window
    raw = get("SYNC_BATCH_WINDOW")
    if raw is not None:
        try:
            window = float(raw)
        except ValueError:
            raise SettingsError("SYNC_BATCH_WINDOW", f"{raw!r} is not a number of seconds such as 0.25") from None
        if not 0 <= window <= 5:
            raise SettingsError("SYNC_BATCH_WINDOW", "must be between 0 and 5 seconds: calls wait for it")
    return BatchSettings(max=_int(get, "SYNC_BATCH_MAX", None, minimum=1), window=window)


def _reconcile(get: Getter, dedupe_ttl: int) -> ReconcileSettings:
    """``HAMSA_RECONCILE_*`` and ``HAMSA_AGENT_IDS``: a look-back must outlast the grace (else
    no call is ever old enough to take) and stay within ``DEDUPE_TTL`` (what crmsync
    remembers receiving)."""
    defaults = ReconcileSettings()
    lookback = _int(get, "HAMSA_RECONCILE_LOOKBACK", defaults.lookback, minimum=60) or defaults.lookback
    grace = _int(get, "HAMSA_RECONCILE_GRACE", defaults.grace, minimum=0)
    grace = defaults.grace if grace is None else grace
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
    interval = _int(get, "HAMSA_RECONCILE_INTERVAL", defaults.interval, minimum=0)
    agents = tuple(a.strip() for a in (get("HAMSA_AGENT_IDS") or "").split(",") if a.strip())
    return ReconcileSettings(
        interval=defaults.interval if interval is None else interval, lookback=lookback, grace=grace, agent_ids=agents
    )


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


def _secret_key(get: Getter) -> str | None:
    key = get("SECRET_KEY")
    if key is not None and len(key) < SECRET_KEY_MIN:
        raise SettingsError("SECRET_KEY", f"is too short: use at least {SECRET_KEY_MIN} random characters")
    return key


def _rate(get: Getter, name: str, default: str) -> str:
    raw = get(name) or default
    try:
        rate_parts(raw)
    except ValueError as exc:
        raise SettingsError(name, str(exc)) from None
    return raw
