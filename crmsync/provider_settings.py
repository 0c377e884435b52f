"""The other platforms' webhook settings (SPEC §3), part of ``Settings`` (``settings.providers``).

Each platform is on only while its secret setting is set; every secret setting takes
several comma-separated values, so a secret can be rotated without refusing calls:

    RETELL_API_KEY              Retell API key(s) (the key with the webhook badge)
    ELEVENLABS_WEBHOOK_SECRET   the ElevenLabs webhook's HMAC secret(s)
    BLAND_WEBHOOK_SECRET        Bland's webhook signing secret(s)
    VAPI_WEBHOOK_SECRET         Vapi's secret(s), read as VAPI_AUTH says:
    VAPI_AUTH                   secret (default): the legacy ``x-vapi-secret`` header, verbatim
                                bearer: a Bearer Token credential (header VAPI_BEARER_HEADER)
                                hmac: an HMAC credential, described by the VAPI_HMAC_* settings
    VAPI_BEARER_HEADER          Authorization
    VAPI_HMAC_ALGORITHM         sha256 | sha512 | sha1
    VAPI_HMAC_SIGNATURE_HEADER  x-signature
    VAPI_HMAC_TIMESTAMP_HEADER  x-timestamp
    VAPI_HMAC_PAYLOAD_FORMAT    {timestamp}.{body}   (placeholders: {timestamp}, {body}, {method})
    VAPI_HMAC_ENCODING          hex | base64
    VAPI_HMAC_PREFIX            (none), e.g. sha256=
    VAPI_HMAC_TOLERANCE         300 seconds; 0: no timestamp check

A bad or contradictory value raises ``SettingsError`` naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from crmsync.errors import SettingsError

VAPI_AUTH_MODES = ("secret", "bearer", "hmac")
HMAC_ALGORITHMS = ("sha256", "sha512", "sha1")
HMAC_ENCODINGS = ("hex", "base64")
PAYLOAD_PLACEHOLDERS = ("{timestamp}", "{body}", "{method}")
VAPI_HMAC_TOLERANCE = 300  # seconds
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class VapiHmac:
    """Vapi's HMAC credential as its dashboard describes it."""

    algorithm: str = "sha256"
    signature_header: str = "x-signature"
    timestamp_header: str = "x-timestamp"
    payload_format: str = "{timestamp}.{body}"
    encoding: str = "hex"
    prefix: str = ""
    tolerance: int = VAPI_HMAC_TOLERANCE  # seconds

    @property
    def signs_timestamp(self) -> bool:
        return "{timestamp}" in self.payload_format


@dataclass(frozen=True)
class ProviderSettings:
    retell_api_keys: tuple[str, ...] = field(default=(), repr=False)
    vapi_secrets: tuple[str, ...] = field(default=(), repr=False)
    vapi_auth: str = "secret"
    vapi_bearer_header: str = "Authorization"
    vapi_hmac: VapiHmac = field(default_factory=VapiHmac)
    elevenlabs_secrets: tuple[str, ...] = field(default=(), repr=False)
    bland_secrets: tuple[str, ...] = field(default=(), repr=False)

    def secrets(self, platform: str) -> tuple[str, ...]:
        """The accepted secrets of ``platform``; empty: its webhook answers 404."""
        return {
            "retell": self.retell_api_keys,
            "vapi": self.vapi_secrets,
            "elevenlabs": self.elevenlabs_secrets,
            "bland": self.bland_secrets,
        }.get(platform, ())

    def all_secrets(self) -> tuple[str, ...]:
        return self.retell_api_keys + self.vapi_secrets + self.elevenlabs_secrets + self.bland_secrets

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> ProviderSettings:
        """``get(name)`` returns a variable's stripped value, or None when unset or empty."""
        vapi_secrets = _list(get("VAPI_WEBHOOK_SECRET"))
        auth = (get("VAPI_AUTH") or "secret").lower()
        if auth not in VAPI_AUTH_MODES:
            raise SettingsError("VAPI_AUTH", f"{auth!r} is not valid: set it to secret, bearer or hmac")
        if get("VAPI_AUTH") and not vapi_secrets:
            raise SettingsError("VAPI_WEBHOOK_SECRET", "is not set but VAPI_AUTH is: set the secret Vapi sends")
        hmac_names = [name for name in _HMAC_VARIABLES if get(name)]
        if hmac_names and auth != "hmac":
            raise SettingsError(hmac_names[0], "is set but VAPI_AUTH is not hmac: set VAPI_AUTH=hmac, or unset it")
        if get("VAPI_BEARER_HEADER") and auth != "bearer":
            raise SettingsError("VAPI_BEARER_HEADER", "is set but VAPI_AUTH is not bearer: set VAPI_AUTH=bearer")
        return cls(
            retell_api_keys=_list(get("RETELL_API_KEY")),
            vapi_secrets=vapi_secrets,
            vapi_auth=auth,
            vapi_bearer_header=get("VAPI_BEARER_HEADER") or "Authorization",
            vapi_hmac=_vapi_hmac(get),
            elevenlabs_secrets=_list(get("ELEVENLABS_WEBHOOK_SECRET")),
            bland_secrets=_list(get("BLAND_WEBHOOK_SECRET")),
        )


_HMAC_VARIABLES = (
    "VAPI_HMAC_ALGORITHM",
    "VAPI_HMAC_SIGNATURE_HEADER",
    "VAPI_HMAC_TIMESTAMP_HEADER",
    "VAPI_HMAC_PAYLOAD_FORMAT",
    "VAPI_HMAC_ENCODING",
    "VAPI_HMAC_PREFIX",
    "VAPI_HMAC_TOLERANCE",
)


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(value.strip() for value in (raw or "").split(",") if value.strip())


def _vapi_hmac(get: Callable[[str], str | None]) -> VapiHmac:
    algorithm = (get("VAPI_HMAC_ALGORITHM") or "sha256").lower()
    if algorithm not in HMAC_ALGORITHMS:
        raise SettingsError("VAPI_HMAC_ALGORITHM", f"{algorithm!r} is not one of {', '.join(HMAC_ALGORITHMS)}")
    encoding = (get("VAPI_HMAC_ENCODING") or "hex").lower()
    if encoding not in HMAC_ENCODINGS:
        raise SettingsError("VAPI_HMAC_ENCODING", f"{encoding!r} is not valid: set it to hex or base64")
    payload = get("VAPI_HMAC_PAYLOAD_FORMAT") or "{timestamp}.{body}"
    unknown = [p for p in _PLACEHOLDER.findall(payload) if p not in PAYLOAD_PLACEHOLDERS]
    if unknown:
        raise SettingsError(
            "VAPI_HMAC_PAYLOAD_FORMAT",
            f"{unknown[0]} is not supported: use {', '.join(PAYLOAD_PLACEHOLDERS)} "
            "(Vapi's default is {timestamp}.{body})",
        )
    if "{body}" not in payload:
        raise SettingsError(
            "VAPI_HMAC_PAYLOAD_FORMAT", "must contain {body}: a signature that omits the body proves nothing"
        )
    raw_tolerance = get("VAPI_HMAC_TOLERANCE")
    try:
        tolerance = VAPI_HMAC_TOLERANCE if raw_tolerance is None else int(raw_tolerance)
    except ValueError:
        raise SettingsError("VAPI_HMAC_TOLERANCE", f"{raw_tolerance!r} is not a whole number of seconds") from None
    if tolerance < 0:
        raise SettingsError("VAPI_HMAC_TOLERANCE", "must be 0 (no check) or more seconds")
    return VapiHmac(
        algorithm=algorithm,
        signature_header=get("VAPI_HMAC_SIGNATURE_HEADER") or "x-signature",
        timestamp_header=get("VAPI_HMAC_TIMESTAMP_HEADER") or "x-timestamp",
        payload_format=payload,
        encoding=encoding,
        prefix=get("VAPI_HMAC_PREFIX") or "",
        tolerance=tolerance,
    )
