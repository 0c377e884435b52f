"""The HubSpot transport: hubspot-api-client's API objects (built once), the shared rate
limits, metrics, and vendor errors translated at the boundary (``hubspot_errors``).

Every request first takes room in the shared limits in Redis (``hubspot:general``, e.g.
100/10 s, and ``hubspot:search``, e.g. 4/s; searches are exempt from HubSpot's 10-second
limit, so they take only the search limit), so all workers together wait before HubSpot
refuses. Nothing sent is retried by urllib3 (a retried POST may duplicate a call); the
worker retries.

A create whose answer may be lost goes through ``create``, which marks it in the in-flight
ledger first; HubSpot's search index lags behind writes, so "not found" after a lost answer
is trusted only once the create is older than ``index_lag`` seconds (``wait_for_index``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hubspot import HubSpot
from redis import Redis
from urllib3.util.retry import Retry

from crmsync.crm.hubspot_errors import CRM, is_api_exception, is_network_error, scrub, translate
from crmsync.crm.ledger import Ledger, nothing_created
from crmsync.crm.ratelimit import SharedLimiter
from crmsync.errors import CredentialsError, RetryableError, SyncError
from crmsync.metrics import Metrics
from crmsync.sub_settings import HubSpotSettings

log = logging.getLogger(__name__)

INDEX_LAG = 60.0  # seconds HubSpot's search may lag a write (third-party reports: 10 s create, 60 s update)

# No urllib3 retries of anything sent: a retried POST may duplicate a call. Only connection
# attempts (nothing sent yet) are retried; the worker retries the rest.
_NO_RESEND = Retry(
    total=1, connect=1, read=0, status=0, other=0, redirect=0, raise_on_status=False, respect_retry_after_header=False
)


class HubSpotClient:
    """One HubSpot token's API objects and limits. Build one per connector."""

    def __init__(
        self,
        settings: HubSpotSettings,
        redis: Redis,
        *,
        timeout: float | tuple[float, float],
        metrics: Metrics,
        index_lag: float,
        max_wait: float,
    ) -> None:
        self._token = settings.access_token or ""
        self._timeout = timeout
        self._metrics = metrics
        self.index_lag = index_lag
        self._build_apis(HubSpot(access_token=self._token, host=settings.base_url.rstrip("/"), retry=_NO_RESEND))
        self._general = SharedLimiter(
            redis, "hubspot:general", settings.rate_limit, max_wait=max_wait, on_wait=metrics.rate_limit_wait
        )
        self._search = SharedLimiter(
            redis, "hubspot:search", settings.search_rate_limit, max_wait=max_wait, on_wait=metrics.rate_limit_wait
        )

    def _build_apis(self, client: HubSpot) -> None:
        # Each attribute access builds a new ApiClient and connection pool: once only.
        self.contacts = client.crm.contacts.basic_api
        self.contacts_search = client.crm.contacts.search_api
        self.calls = client.crm.objects.calls.basic_api
        self.calls_search = client.crm.objects.calls.search_api
        self.properties = client.crm.properties.core_api
        self.objects = client.crm.objects.basic_api
        self.deals = client.crm.deals.basic_api
        self.deals_search = client.crm.deals.search_api
        self.tasks = client.crm.objects.tasks.basic_api
        self.tasks_search = client.crm.objects.tasks.search_api
        self.calls_batch = client.crm.objects.calls.batch_api
        self.contacts_batch = client.crm.contacts.batch_api
        self._apis = [
            self.contacts,
            self.contacts_search,
            self.calls,
            self.calls_search,
            self.properties,
            self.objects,
            self.deals,
            self.deals_search,
            self.tasks,
            self.tasks_search,
            self.calls_batch,
            self.contacts_batch,
        ]

    def close(self) -> None:
        """Close the connection pools (tests; a worker keeps the connector for its life)."""
        for api in self._apis:
            api.api_client.rest_client.pool_manager.clear()

    def send(self, method: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any) -> Any:
        """Call one ``*_with_http_info`` API method inside the shared limits; crmsync errors only."""
        (self._search if search else self._general).acquire(crm=CRM)
        try:
            data, status, _headers = method(*args, _request_timeout=self._timeout, **kwargs)
        except Exception as exc:
            api_error = is_api_exception(exc)
            if not (api_error or is_network_error(exc)):
                raise
            error = translate(exc, secrets=(self._token,))
            if api_error and isinstance(getattr(exc, "body", None), str):
                exc.body = scrub(exc.body, (self._token,), limit=None)  # type: ignore[attr-defined]  # chained
            self._metrics.crm_request(CRM, getattr(exc, "status", 0) if api_error else "network")
            if isinstance(error, CredentialsError):
                self._metrics.incr("credential_errors_total", crm=CRM)
            log.info(
                "hubspot request failed",
                extra={"crm_status": getattr(error, "status", None), "crm_code": getattr(error, "code", None)},
            )
            raise error from exc
        self._metrics.crm_request(CRM, status)
        return data

    def scrub(self, text: str) -> str:
        """HubSpot's words without the token or a phone number (``hubspot_errors.scrub``)."""
        return scrub(text, (self._token,))

    def create(self, ledger: Ledger, name: str, method: Callable[..., Any], body: dict[str, Any]) -> Any:
        """Send a create whose answer may be lost: ``pending`` in the ledger before, the new
        id after (one write each). A crash in between leaves ``pending`` (look first), never
        nothing (which would create again)."""
        ledger.begin(name)
        try:
            created = self.send(method, body)
        except (SyncError, CredentialsError) as err:
            if nothing_created(err):
                ledger.clear(name)
            raise
        ledger.record(name, str(created.id))
        return created

    def wait_for_index(self, what: str, age: float) -> None:
        """``RetryableError`` while an earlier create of ``what`` whose answer was lost, ``age``
        seconds ago, may still be missing from HubSpot's search index; else nothing (a search
        that did not find it is then trusted: that create never landed)."""
        if age < self.index_lag:
            raise RetryableError(
                CRM,
                f"an earlier {what} create got no answer {age:.0f}s ago: waiting "
                f"{self.index_lag:.0f}s for HubSpot's search index",
                code="INDEX_LAG",
            )
