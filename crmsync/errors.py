"""crmsync's own errors, grouped by what the caller must do.

    CrmsyncError
    ├── ConfigurationError        fix a setting, a credential or a mapping; retrying alone won't help
    │   ├── SettingsError         a missing or contradictory environment variable (stops the process)
    │   ├── MappingError          a mapping file that does not validate
    │   └── CredentialsError      the CRM refused our credentials (401, revoked token, wrong instance)
    └── SyncError                 one CRM request failed
        ├── RetryableError        timeouts, 5xx, 429, Salesforce REQUEST_LIMIT_EXCEEDED, expired sessions
        │   └── RateLimited       the CRM (or our shared limiter) says wait ``retry_after`` seconds
        └── PermanentError        validation errors, missing fields: the same request fails again

Vendor exceptions (``SalesforceError``, HubSpot's per-package ``ApiException``,
``urllib3`` and ``requests`` errors) are caught inside ``crm/`` and re-raised as one of
these with ``raise ... from exc``. Messages never carry a secret, a full phone number or
transcript text.
"""

from __future__ import annotations

from typing import Any


class CrmsyncError(Exception):
    """Base of every error crmsync raises on purpose."""


class ConfigurationError(CrmsyncError):
    """A person must change a setting, a credential or a mapping."""


class SettingsError(ConfigurationError):
    """A missing or contradictory environment variable; ``variable`` names it."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable} {message}")
        self.variable = variable


class MappingError(ConfigurationError):
    """A mapping file that does not validate; ``problems`` lists every error found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class CredentialsError(ConfigurationError):
    """The CRM refused crmsync's credentials; calls wait until a person fixes them."""

    def __init__(self, crm: str, message: str) -> None:
        super().__init__(f"{crm}: {message}")
        self.crm = crm


class SyncError(CrmsyncError):
    """A CRM request failed.

    ``crm`` names the CRM, ``status`` is the HTTP status (0 for network errors),
    ``code`` the CRM's own error code (``REQUIRED_FIELD_MISSING``, ``VALIDATION_ERROR``),
    ``fields`` the fields it blamed, and ``message`` its own words.
    """

    def __init__(
        self,
        crm: str,
        message: str,
        *,
        status: int = 0,
        code: str | None = None,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(f"{crm}: {message}")
        self.crm = crm
        self.message = message
        self.status = status
        self.code = code
        self.fields = fields or []

    def to_dict(self) -> dict[str, Any]:
        return {
            "crm": self.crm,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "fields": self.fields,
        }


class RetryableError(SyncError):
    """Try the same request again later: the CRM was down, slow or busy."""


class RateLimited(RetryableError):
    """The CRM or the shared limiter asks to wait ``retry_after`` seconds."""

    def __init__(self, crm: str, message: str, *, retry_after: float, status: int = 429, **kw: Any) -> None:
        super().__init__(crm, message, status=status, **kw)
        self.retry_after = retry_after


class PermanentError(SyncError):
    """The CRM refused the request itself; it will fail again until data or mapping change."""
