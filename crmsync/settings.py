"""Settings: one value object built from the environment, validated at start (SPEC §3).

``Settings.from_env()`` is called once per process and passed in explicitly; nothing
here is global: the web process reads it in ``create_app`` (gunicorn builds the app once,
in its master), the worker and every other ``crmsync`` command when it starts. A missing
or contradictory variable raises ``SettingsError`` naming it and saying how to fix it;
the entry points print that one line and exit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from crmsync.errors import SettingsError
from crmsync.provider_settings import ProviderSettings
from crmsync.sub_settings import (
    BatchSettings,
    Getter,
    HubSpotSettings,
    ReconcileSettings,
    SalesforceSettings,
    int_var,
)

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEDUPE_TTL = 7 * 24 * 3600  # seconds
AUDIT_TTL = 90 * 24 * 3600  # seconds the field-write audit is kept
MAX_BODY_BYTES = 2 * 1024 * 1024  # bytes
SECRET_KEY_MIN = 16  # characters
CRMS = ("salesforce", "hubspot")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


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
        dedupe_ttl = int_var(get, "DEDUPE_TTL", DEDUPE_TTL, minimum=60)
        raw_body_ttl = int_var(get, "RAW_BODY_TTL", dedupe_ttl, minimum=60)
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
            hubspot=HubSpotSettings.from_env(get),
            salesforce=SalesforceSettings.from_env(get),
            hamsa_api_key=get("HAMSA_API_KEY"),
            hamsa_base_url=(get("HAMSA_BASE_URL") or "https://api.tryhamsa.com").rstrip("/"),
            reconcile=ReconcileSettings.from_env(get, dedupe_ttl),
            batch=BatchSettings.from_env(get),
            default_region=region,
            dedupe_ttl=dedupe_ttl,
            raw_body_ttl=raw_body_ttl,
            audit_ttl=int_var(get, "AUDIT_TTL", AUDIT_TTL, minimum=60),
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


def _secret_key(get: Getter) -> str | None:
    key = get("SECRET_KEY")
    if key is not None and len(key) < SECRET_KEY_MIN:
        raise SettingsError("SECRET_KEY", f"is too short: use at least {SECRET_KEY_MIN} random characters")
    return key
