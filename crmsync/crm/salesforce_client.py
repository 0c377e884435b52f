"""The Salesforce transport: one ``requests`` session with a default timeout, login and
session renewal, the daily API budget, metrics, and vendor errors translated at the
boundary into ``crmsync.errors``.

Sessions: with ``SALESFORCE_ACCESS_TOKEN`` the token is used as given and a 401 is a
``CredentialsError``. The refreshable modes (password, JWT bearer, client credentials)
log in with ``simple_salesforce.SalesforceLogin`` and hand the session to a direct-session
``Salesforce`` object, so the library never re-logs in by itself (its ``SFType`` methods
would recurse without bound while a 401 keeps coming); ``call`` renews an expired session
at most once per request, then gives up with ``CredentialsError``.

Budget: with ``SALESFORCE_DAILY_BUDGET`` every API request takes one unit from the shared
limiter ``salesforce:daily``; without it the org's own ``Sforce-Limit-Info`` reading,
shared through Redis, stops crmsync while fewer than ``max(50, 1 %)`` requests remain.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from redis import Redis
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError, SalesforceExpiredSession
from simple_salesforce.util import Usage

from crmsync import phones
from crmsync.crm.network import wrong_host
from crmsync.crm.ratelimit import SharedLimiter
from crmsync.errors import CredentialsError, PermanentError, RateLimited, RetryableError, SettingsError, SyncError
from crmsync.metrics import Metrics
from crmsync.sub_settings import SalesforceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
CRM = "salesforce"
USAGE_KEY = "crmsync:salesforce:api_usage"
USAGE_TTL = 300  # seconds a Sforce-Limit-Info reading is trusted; then one request may refresh it
LIMIT_RETRY_AFTER = 60.0  # seconds, after REQUEST_LIMIT_EXCEEDED (Salesforce sends no Retry-After)
_ECHOED_VALUE = re.compile(r"(data value too large):.*?(\s*\(max length=\d+\)|$)", re.DOTALL)
_LONG_DIGITS = re.compile(r"(?<![\w])\+?\d[\d\s().\-]{5,}\d(?![\w])")


class TimeoutSession(requests.Session):
    """A ``requests.Session`` whose requests time out after ``default_timeout`` unless told
    otherwise (simple-salesforce sets none). ``trust_env`` stays on: ``REQUESTS_CA_BUNDLE``
    and proxy variables apply."""

    def __init__(self, timeout: float | tuple[float, float] = (3.05, 20)) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def apply_timeout(session: requests.Session, timeout: float | tuple[float, float]) -> None:
    """Give a session made elsewhere the same default timeout as ``TimeoutSession``."""
    if isinstance(session, TimeoutSession):
        return
    original = session.request

    def request(method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout
        return original(method, url, *args, **kwargs)

    session.request = request  # type: ignore[method-assign]


def scrub(text: str, limit: int = 500) -> str:
    """A vendor message safe for logs and ``crmsync status``: the value Salesforce repeats in
    a ``STRING_TOO_LONG`` (it may be a summary or transcript) left out, long digit runs
    (phone numbers) masked, dates and record ids kept, cut to ``limit`` characters."""
    text = _ECHOED_VALUE.sub(r"\1 (value not repeated)\2", text)

    def mask(match: re.Match[str]) -> str:
        value = match.group()
        if re.fullmatch(r"\d{4}-\d\d-\d\d", value) or len(phones.digits(value)) < 7:
            return value
        return phones.mask(value)

    return _LONG_DIGITS.sub(mask, text)[:limit]


def error_details(content: Any) -> tuple[str | None, str, list[str]]:
    """``(errorCode, message, fields)`` from a Salesforce error body (a JSON list of errors)."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        codes = [str(e.get("errorCode")) for e in content if isinstance(e, dict) and e.get("errorCode")]
        messages = [scrub(str(e.get("message") or "")) for e in content if isinstance(e, dict)]
        fields = [str(f) for e in content if isinstance(e, dict) for f in (e.get("fields") or [])]
        return (codes[0] if codes else None), "; ".join(m for m in messages if m), fields
    if isinstance(content, dict) and content.get("error"):
        return str(content["error"]), scrub(str(content.get("error_description") or "")), []
    return None, "", []


def error_from(status: int, content: Any, what: str) -> SyncError:
    """The crmsync error for a Salesforce error answer; built from the code and message
    only, never from the vendor exception's text (which holds the URL)."""
    code, message, fields = error_details(content)
    message = message or f"HTTP {status} from Salesforce"
    text = f"{what}: {code + ': ' if code else ''}{message}"
    if code == "REQUEST_LIMIT_EXCEEDED" or status == 429:
        return RateLimited(CRM, text, retry_after=LIMIT_RETRY_AFTER, status=status, code=code, fields=fields)
    if status >= 500 or status == 0:
        return RetryableError(CRM, text, status=status, code=code, fields=fields)
    return PermanentError(CRM, text, status=status, code=code, fields=fields)


class SalesforceClient:
    """One logged-in ``Salesforce`` object per connector, behind ``call``."""

    def __init__(
        self,
        settings: SalesforceSettings,
        redis: Redis,
        *,
        session: requests.Session | None,
        timeout: float | tuple[float, float],
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.mode = settings.auth_mode
        if self.mode == "none":
            raise SettingsError("SALESFORCE_ACCESS_TOKEN", "no Salesforce login is configured")
        if self.mode == "access_token" and not settings.instance_url:
            raise SettingsError("SALESFORCE_INSTANCE_URL", "is not set: an access token needs its instance URL")
        self.redis = redis
        self.metrics = metrics
        self.owns_session = session is None
        self.session = session if session is not None else TimeoutSession(timeout)
        apply_timeout(self.session, timeout)
        self.session.hooks["response"].append(self._count)
        self.limiter = (
            SharedLimiter(redis, "salesforce:daily", f"{settings.daily_budget}/day", on_wait=metrics.rate_limit_wait)
            if settings.daily_budget
            else None
        )
        self._sf: Salesforce | None = None
        self._lock = threading.Lock()

    @property
    def refreshable(self) -> bool:
        return self.mode != "access_token"

    def close(self) -> None:
        if self.owns_session:
            self.session.close()

    # -- requests --------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run one API request ``fn(sf)``; ``what`` names it in error messages."""
        renewed = False
        while True:
            sf = self._connect()
            self._spend()
            try:
                result = fn(sf)
            except SalesforceExpiredSession as exc:
                if self.refreshable and not renewed:
                    log.info("salesforce session expired; logging in again")
                    renewed = True
                    self._drop(sf)
                    continue
                self.metrics.incr("credential_errors_total", crm=CRM)
                raise CredentialsError(
                    CRM,
                    f"{what}: Salesforce refused the session (401 INVALID_SESSION_ID); "
                    "check the SALESFORCE_* credentials",
                ) from exc
            except SalesforceError as exc:
                raise error_from(exc.status, exc.content, what) from exc
            except requests.Timeout as exc:
                self.metrics.crm_request(CRM, "timeout")
                raise RetryableError(CRM, f"{what}: Salesforce did not answer in time") from exc
            except requests.RequestException as exc:
                self.metrics.crm_request(CRM, "error")
                if problem := wrong_host(exc):
                    raise CredentialsError(
                        CRM, f"{what}: Salesforce could not be reached because {problem}; check SALESFORCE_INSTANCE_URL"
                    ) from exc
                raise RetryableError(CRM, f"{what}: could not reach Salesforce ({type(exc).__name__})") from exc
            self._note_usage(sf)
            return result

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.metrics.crm_request(CRM, response.status_code)

    # -- sessions --------------------------------------------------------------------------
    def _connect(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                s = self.settings
                if self.mode == "access_token":
                    url = s.instance_url or ""
                    url = url if "://" in url else f"https://{url}"  # simple-salesforce uses https whatever is set
                    self._sf = Salesforce(
                        session_id=s.access_token,
                        instance_url=url,
                        session=self.session,
                        version=s.api_version,
                        object_pairs_hook=dict,
                    )
                else:
                    session_id, instance = self._login()
                    self._sf = Salesforce(
                        session_id=session_id,
                        instance=instance,
                        session=self.session,
                        version=s.api_version,
                        object_pairs_hook=dict,
                    )
            return self._sf

    def _drop(self, sf: Salesforce) -> None:
        with self._lock:
            if self._sf is sf:
                self._sf = None

    def _login(self) -> tuple[str, str]:
        s = self.settings
        domain = re.sub(r"^https?://|\.salesforce\.com/?$", "", s.domain or "login")
        kwargs: dict[str, Any] = {"session": self.session, "domain": domain, "sf_version": s.api_version}
        if self.mode == "jwt":
            key = s.private_key or ""
            kwargs.update(
                username=s.username,
                consumer_key=s.consumer_key,
                privatekey=key.replace("\\n", "\n") if "\n" not in key else key,
            )
        elif self.mode == "client_credentials":
            kwargs.update(consumer_key=s.consumer_key, consumer_secret=s.consumer_secret)
        elif s.consumer_key and s.consumer_secret:  # OAuth username-password flow
            kwargs.update(
                username=s.username,
                password=(s.password or "") + (s.security_token or ""),
                consumer_key=s.consumer_key,
                consumer_secret=s.consumer_secret,
            )
        else:  # SOAP login; an empty security token suits trusted IP ranges
            kwargs.update(username=s.username, password=s.password, security_token=s.security_token or "")
        try:
            session_id, instance = SalesforceLogin(**kwargs)
        except SalesforceAuthenticationFailed as exc:
            self.metrics.incr("credential_errors_total", crm=CRM)
            if isinstance(exc.code, int) and (exc.code >= 500 or exc.code == 429):
                raise RetryableError(CRM, f"login: Salesforce answered HTTP {exc.code}", status=exc.code) from exc
            raise CredentialsError(
                CRM,
                f"login refused ({exc.code}): {scrub(exc.auth_message, 200)}; "
                f"check the SALESFORCE_* credentials ({self.mode} login)",
            ) from exc
        except requests.Timeout as exc:
            self.metrics.crm_request(CRM, "timeout")
            raise RetryableError(CRM, "login: Salesforce did not answer in time") from exc
        except requests.RequestException as exc:
            self.metrics.crm_request(CRM, "error")
            if problem := wrong_host(exc):
                raise CredentialsError(
                    CRM, f"login: Salesforce could not be reached because {problem}; check SALESFORCE_DOMAIN"
                ) from exc
            raise RetryableError(CRM, f"login: could not reach Salesforce ({type(exc).__name__})") from exc
        except (ValueError, TypeError) as exc:  # e.g. a private key that is no PEM key
            raise CredentialsError(
                CRM,
                f"login could not be attempted ({type(exc).__name__}); check "
                "SALESFORCE_PRIVATE_KEY and the other SALESFORCE_* settings",
            ) from exc
        log.info("salesforce login succeeded (%s)", self.mode)
        return str(session_id), str(instance)

    # -- the daily budget -------------------------------------------------------------------
    def _spend(self) -> None:
        if self.limiter is not None:
            self.limiter.acquire(cost=1, crm=CRM)
            return
        reading = self.redis.get(USAGE_KEY)
        if not reading:
            return
        used, _, total = (reading.decode() if isinstance(reading, bytes) else str(reading)).partition("/")
        remaining = int(total) - int(used)
        floor = max(50, int(total) // 100)
        if remaining < floor:
            raise RateLimited(
                CRM,
                f"only {remaining} of the org's {total} daily API requests remain; crmsync "
                f"leaves the last {floor} to other integrations",
                retry_after=float(USAGE_TTL),
                status=0,
                code="DAILY_BUDGET",
            )

    def _note_usage(self, sf: Salesforce) -> None:
        usage = sf.api_usage.get("api-usage")
        if isinstance(usage, Usage):
            self.redis.set(USAGE_KEY, f"{usage.used}/{usage.total}", ex=USAGE_TTL)
