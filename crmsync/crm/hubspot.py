"""The HubSpot connector: contacts found by phone, calls logged as engagements.

A synced call costs three requests: one contact search (every stored form of the number
ORed in one request), one call create (or update), one contact update. Every request
first takes room in the shared limits in Redis (``hubspot:general``, e.g. 100/10 s, and
``hubspot:search``, e.g. 4/s; searches are exempt from HubSpot's 10-second limit, so
they take only the search limit), so all workers together wait before HubSpot refuses.

One call, one activity; one caller, one contact: the in-flight ledger
(``crmsync.crm.ledger``) records, for calls by call id and for contacts by phone, a create
in flight (``pending`` and when it was sent) and then the id HubSpot answered. When an
earlier create's answer was lost, a call is searched by ``hs_call_external_id`` before
creating (a contact was searched by the pipeline just before). HubSpot's search index lags
behind writes, so "not found" is trusted only once the lost create is older than
``index_lag`` seconds; before that the connector raises ``RetryableError`` and the worker
comes back later, which costs a delay but never a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import phonenumbers
from hubspot import HubSpot
from redis import Redis
from urllib3.util.retry import Retry

from crmsync import phones
from crmsync.crm import hubspot_batch
from crmsync.crm import hubspot_links as links_
from crmsync.crm.base import Activity, CallWrite, Deal, FieldInfo, FollowUp, Found, Links, Person, WriteResult, Written
from crmsync.crm.hubspot_calls import HUBSPOT, OBJECTS, call_properties, person_from, wire
from crmsync.crm.hubspot_errors import (
    CRM,
    error_body,
    is_api_exception,
    is_network_error,
    property_errors,
    scrub,
    translate,
)
from crmsync.crm.ledger import Ledger, person_name
from crmsync.crm.ratelimit import SharedLimiter
from crmsync.errors import CredentialsError, PermanentError, RetryableError, SyncError
from crmsync.metrics import Metrics
from crmsync.settings import HubSpotSettings

log = logging.getLogger(__name__)

INDEX_LAG = 60.0  # seconds HubSpot's search may lag a write (third-party reports: 10 s create, 60 s update)
MAX_PAGES = 5  # contact search pages of 100 followed for one number
PHONE_FIELDS = ("phone", "mobilephone")


# No urllib3 retries of anything sent: a retried POST may duplicate a call. Only connection
# attempts (nothing sent yet) are retried; the worker retries the rest.
_NO_RESEND = Retry(
    total=1, connect=1, read=0, status=0, other=0, redirect=0, raise_on_status=False, respect_retry_after_header=False
)


class HubSpotConnector:
    """``crmsync.crm.base.Connector`` for HubSpot. Build one per worker process."""

    name = CRM
    profile = HUBSPOT
    batch_size = hubspot_batch.MAX_INPUTS

    def __init__(
        self,
        settings: HubSpotSettings,
        redis: Redis,
        *,
        timeout: float | tuple[float, float] = (3.05, 20),
        metrics: Metrics | None = None,
        index_lag: float = INDEX_LAG,
        max_wait: float = 30.0,
    ) -> None:
        self._token = settings.access_token or ""
        self._timeout = timeout
        self._metrics = metrics if metrics is not None else Metrics(redis)
        self._index_lag = index_lag
        self._build_apis(HubSpot(access_token=self._token, host=settings.base_url.rstrip("/"), retry=_NO_RESEND))
        self._general = SharedLimiter(
            redis, "hubspot:general", settings.rate_limit, max_wait=max_wait, on_wait=self._metrics.rate_limit_wait
        )
        self._search = SharedLimiter(
            redis,
            "hubspot:search",
            settings.search_rate_limit,
            max_wait=max_wait,
            on_wait=self._metrics.rate_limit_wait,
        )
        self._ledger = Ledger(redis, CRM, "activity")
        self._people = Ledger(redis, CRM, "person")
        self._follow_ups = Ledger(redis, CRM, "follow_up")

    def _build_apis(self, client: HubSpot) -> None:
        # Each attribute access builds a new ApiClient and connection pool: once only.
        self._contacts = client.crm.contacts.basic_api
        self._contacts_search = client.crm.contacts.search_api
        self._calls = client.crm.objects.calls.basic_api
        self._calls_search = client.crm.objects.calls.search_api
        self._properties = client.crm.properties.core_api
        self._objects = client.crm.objects.basic_api
        self._deals = client.crm.deals.basic_api
        self._deals_search = client.crm.deals.search_api
        self._tasks = client.crm.objects.tasks.basic_api
        self._tasks_search = client.crm.objects.tasks.search_api
        self._calls_batch = client.crm.objects.calls.batch_api
        self._contacts_batch = client.crm.contacts.batch_api
        self._apis = [
            self._contacts,
            self._contacts_search,
            self._calls,
            self._calls_search,
            self._properties,
            self._objects,
            self._deals,
            self._deals_search,
            self._tasks,
            self._tasks_search,
            self._calls_batch,
            self._contacts_batch,
        ]

    def close(self) -> None:
        """Close the connection pools (tests; a worker keeps the connector for its life)."""
        for api in self._apis:
            api.api_client.rest_client.pool_manager.clear()

    # -- requests ------------------------------------------------------------------------
    def _send(self, method: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any) -> Any:
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

    # -- people --------------------------------------------------------------------------
    def find_people(self, e164: str, objects: Sequence[str] = ("contact",), fields: Sequence[str] = ()) -> list[Person]:
        """Every contact whose ``phone`` or ``mobilephone`` is the caller's number, in one
        search ORing the number's stored forms, each hit re-checked by ``phones.matches``."""
        for name in objects:
            if OBJECTS.get(name.lower()) != "contacts":
                raise PermanentError(CRM, f"object {name!r} cannot be matched by phone in HubSpot: use contact")
        try:
            national = phones.national_digits(e164)
        except phonenumbers.NumberParseException:
            raise PermanentError(CRM, "the caller's number is not E.164 (+ and country code)") from None
        wanted = list(
            dict.fromkeys(
                ["phone", "mobilephone", "hubspot_owner_id", "lastmodifieddate", links_.COMPANY_PROPERTY, *fields]
            )
        )
        groups = [
            {"filters": [{"propertyName": "phone", "operator": "EQ", "value": e164}]},
            {"filters": [{"propertyName": "mobilephone", "operator": "EQ", "value": e164}]},
            {
                "filters": [
                    {"propertyName": "hs_searchable_calculated_phone_number", "operator": "EQ", "value": national}
                ]
            },
            {
                "filters": [
                    {
                        "propertyName": "hs_searchable_calculated_phone_number",
                        "operator": "CONTAINS_TOKEN",
                        "value": f"*{national}",
                    }
                ]
            },
            {
                "filters": [
                    {
                        "propertyName": "hs_searchable_calculated_mobile_number",
                        "operator": "CONTAINS_TOKEN",
                        "value": f"*{national}",
                    }
                ]
            },
        ]
        people: list[Person] = []
        after: str | None = None
        for _ in range(MAX_PAGES):
            request: dict[str, Any] = {"filterGroups": groups, "properties": wanted, "limit": 100}
            if after:
                request["after"] = after
            page = self._send(self._contacts_search.do_search_with_http_info, request, search=True)
            for hit in page.results or []:
                props = hit.properties or {}
                numbers = {"phone": props.get("phone"), "mobilephone": props.get("mobilephone")}
                if any(phones.matches(v, e164) for v in numbers.values()):
                    people.append(_person(hit.id, props, fields))
            paging = getattr(page, "paging", None)
            after = paging.next.after if paging is not None and paging.next is not None else None
            if not after:
                break
        return people

    def create_person(self, object: str, properties: Mapping[str, Any], fields: Sequence[str] = ()) -> Person:
        """Create a contact. The ledger keys it by phone (``person_name``): a create whose
        answer was lost is not repeated blindly (within ``index_lag`` the call waits for the
        search index, which the pipeline searched just before), and a contact the ledger
        already knows is read back instead of created again."""
        if OBJECTS.get(object.lower()) != "contacts":
            raise PermanentError(CRM, f"cannot create a {object!r} in HubSpot: use contact")
        values = {k: wire(v) for k, v in properties.items()}
        name = person_name("contact", values, PHONE_FIELDS)
        names = list(dict.fromkeys(["phone", "mobilephone", "hubspot_owner_id", "lastmodifieddate", *fields]))
        entry = self._people.get(name)
        if entry is not None and entry.id:
            try:
                found = self._send(self._contacts.get_by_id_with_http_info, entry.id, properties=names)
                return _person(found.id, found.properties or {}, fields, created=True)
            except PermanentError as err:
                if err.status != 404:
                    raise
        elif entry is not None and entry.age() < self._index_lag:
            raise RetryableError(
                CRM,
                f"an earlier contact create got no answer {entry.age():.0f}s ago: waiting "
                f"{self._index_lag:.0f}s for HubSpot's search index",
                code="INDEX_LAG",
            )
        created = self._create(
            self._people, name, self._contacts.create_with_http_info, {"properties": values, "associations": []}
        )
        return _person(created.id, created.properties or {}, fields, created=True)

    def _create(self, ledger: Ledger, name: str, method: Callable[..., Any], body: dict[str, Any]) -> Any:
        """Send a create whose answer may be lost: ``pending`` in the ledger before, the new
        id after (one write each). A crash in between leaves ``pending`` (look first), never
        nothing (which would create again)."""
        ledger.begin(name)
        try:
            created = self._send(method, body)
        except (SyncError, CredentialsError) as err:
            status = getattr(err, "status", 0)
            if isinstance(err, CredentialsError) or 400 <= status < 500:
                ledger.clear(name)  # HubSpot answered with a refusal: nothing was created
            raise
        ledger.record(name, str(created.id))
        return created

    def create_with_call(
        self,
        object: str,
        properties: Mapping[str, Any],
        fields: Sequence[str],
        activity: Activity,
        follow_up: FollowUp | None = None,
    ) -> tuple[Person, WriteResult] | None:
        """HubSpot has no request that creates a contact and a call together: always None
        (the caller uses ``create_person`` and ``write_call``)."""
        return None

    # -- calls ---------------------------------------------------------------------------
    def find_deal(self, person: Person, fields: Sequence[str]) -> Deal | None:
        """The contact's open deal modified last (one deal search), with ``fields``."""
        request = links_.deal_search(person.id, list(fields))
        page = self._send(self._deals_search.do_search_with_http_info, request, search=True)
        hits = page.results or []
        if not hits:
            return None
        props = hits[0].properties or {}
        return Deal(
            id=str(hits[0].id), values={f: props.get(f) for f in fields}, modified_at=props.get("hs_lastmodifieddate")
        )

    def write_call(
        self, person: Person, activity: Activity, updates: Mapping[str, Any], links: Links | None = None
    ) -> WriteResult:
        """Upsert the call engagement on the contact (created with its company and deal
        associations), write ``updates`` on the contact and ``links.deal_updates`` on the deal,
        then create the follow-up task; properties HubSpot refuses are retried without and
        reported in ``rejected`` / ``deal_rejected``."""
        links = links or Links()
        props = call_properties(activity, person)
        linked = {
            "company": person.company_id if links.company else None,
            "deal": links.deal.id if links.deal else None,
        }
        to = links_.associations(
            [
                (person.id, links_.CALL_TO_CONTACT),
                (linked["company"], links_.CALL_TO_COMPANY),
                (linked["deal"], links_.CALL_TO_DEAL),
            ]
        )
        activity_id, created = self._upsert_call(person, activity.call_id, props, to)
        written, rejected = self._update(self._contacts, person.id, {k: wire(v) for k, v in updates.items()})
        result = WriteResult(activity_id, created, written, rejected, linked={k: v for k, v in linked.items() if v})
        if links.deal is not None and links.deal_updates:
            result.deal_written, result.deal_rejected = self._update(
                self._deals, links.deal.id, {k: wire(v) for k, v in links.deal_updates.items()}
            )
        if links.follow_up is not None:
            result.follow_up_id = self._follow_up(person, links.follow_up, linked["deal"])
        return result

    def _follow_up(self, person: Person, follow_up: FollowUp, deal_id: str | None) -> str:
        """The call's follow-up task, created once: the ledger (by call id) says whether an
        earlier attempt created it, or sent it and lost the answer (then it is searched for)."""
        entry = self._follow_ups.get(follow_up.call_id)
        if entry is not None and entry.id:
            return entry.id
        if entry is not None:
            page = self._send(
                self._tasks_search.do_search_with_http_info, links_.task_search(follow_up, person.id), search=True
            )
            found = sorted((str(hit.id) for hit in page.results or []), key=lambda i: (len(i), i))
            if found:
                self._follow_ups.record(follow_up.call_id, found[0])
                return found[0]
            if entry.age() < self._index_lag:
                raise RetryableError(
                    CRM,
                    f"an earlier task create got no answer {entry.age():.0f}s ago: waiting "
                    f"{self._index_lag:.0f}s for HubSpot's search index",
                    code="INDEX_LAG",
                )
        body = {
            "properties": links_.task_properties(follow_up, person),
            "associations": links_.associations([(person.id, links_.TASK_TO_CONTACT), (deal_id, links_.TASK_TO_DEAL)]),
        }
        created = self._create(self._follow_ups, follow_up.call_id, self._tasks.create_with_http_info, body)
        return str(created.id)

    def _upsert_call(
        self, person: Person, call_id: str, props: dict[str, str], associations: list[dict[str, Any]]
    ) -> tuple[str, bool]:
        entry = self._ledger.get(call_id)
        if entry is not None and entry.id:
            try:
                self._send(self._calls.update_with_http_info, entry.id, {"properties": props})
                return entry.id, False
            except PermanentError as err:
                if err.status != 404:
                    raise
                log.warning("hubspot call was deleted in HubSpot; logging it again", extra={"call_id": call_id})
        elif entry is not None:  # an earlier create got no answer: it may exist
            found = self._find_call(call_id)
            if found:
                self._ledger.record(call_id, found)
                self._send(self._calls.update_with_http_info, found, {"properties": props})
                return found, False
            age = entry.age()
            if age < self._index_lag:
                raise RetryableError(
                    CRM,
                    f"an earlier call create got no answer {age:.0f}s ago: waiting "
                    f"{self._index_lag:.0f}s for HubSpot's search index",
                    code="INDEX_LAG",
                )
            # older than the index lag and still not found: that create never landed
        created = self._create(
            self._ledger,
            call_id,
            self._calls.create_with_http_info,
            {"properties": props, "associations": associations},
        )
        return str(created.id), True

    def _find_call(self, call_id: str) -> str | None:
        request = {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_call_external_id", "operator": "EQ", "value": call_id}]}
            ],
            "properties": ["hs_call_external_id"],
            "limit": 10,
        }
        page = self._send(self._calls_search.do_search_with_http_info, request, search=True)
        ids = sorted((hit.id for hit in page.results or []), key=lambda i: (len(i), i))
        return ids[0] if ids else None

    def _update(self, api: Any, record_id: str, values: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """PATCH ``values`` onto a contact or deal; refused properties are dropped and retried."""
        if not values:
            return {}, {}
        try:
            self._send(api.update_with_http_info, record_id, {"properties": values})
            return dict(values), {}
        except PermanentError as err:
            refused = property_errors(error_body(err.__cause__)) if err.__cause__ else {}
            refused = {k: scrub(v, (self._token,)) for k, v in refused.items() if k in values}
            if err.status != 400 or not refused:
                raise
        rest = {k: v for k, v in values.items() if k not in refused}
        if rest:
            self._send(api.update_with_http_info, record_id, {"properties": rest})
        return rest, refused

    # -- batches (crmsync.crm.hubspot_batch) ---------------------------------------------
    def find_people_many(
        self, numbers: Sequence[str], objects: Sequence[str] = ("contact",), fields: Sequence[str] = ()
    ) -> dict[str, Found]:
        """``find_people`` for many numbers: one ``IN`` search per 50 (``hubspot_batch``)."""
        return hubspot_batch.find_many(self, numbers, objects, fields)

    def write_calls(self, writes: Sequence[CallWrite]) -> list[Written]:
        """``write_call`` for many calls in batch requests of 100 (``hubspot_batch``)."""
        return hubspot_batch.write_many(self, writes)

    # -- metadata ------------------------------------------------------------------------
    def describe(self, object: str) -> dict[str, FieldInfo]:
        kind = OBJECTS.get(object.lower())
        if kind is None:
            raise PermanentError(CRM, f"unknown HubSpot object {object!r}: use contact or call")
        result = self._send(self._properties.get_all_with_http_info, kind)
        fields: dict[str, FieldInfo] = {}
        for prop in result.results or []:
            meta = prop.modification_metadata
            read_only = bool(meta is not None and meta.read_only_value) or bool(prop.calculated)
            options = [o.value for o in prop.options or []] if prop.type in ("enumeration", "bool") else None
            fields[prop.name] = FieldInfo(
                name=prop.name,
                type=prop.type or "string",
                label=prop.label or "",
                options=options,
                updateable=not read_only,
            )
        return fields

    def check_credentials(self) -> None:
        self._send(self._properties.get_by_name_with_http_info, "contacts", "phone")

    # -- rollback ------------------------------------------------------------------------
    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One GET of the record's ``fields`` (strings, as HubSpot stores them); None on 404."""
        try:
            found = self._send(
                self._objects.get_by_id_with_http_info, _plural(object), record_id, properties=list(fields)
            )
        except PermanentError as err:
            if err.status == 404:
                return None
            raise
        props = found.properties or {}
        return {name: props.get(name) for name in fields}

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """One PATCH; None clears the property (HubSpot's empty string)."""
        self._send(
            self._objects.update_with_http_info,
            _plural(object),
            record_id,
            {"properties": {k: wire(v) for k, v in values.items()}},
        )

    def delete_activity(self, object: str, record_id: str) -> bool:
        """Archive the call (or task) engagement; False when HubSpot no longer has it."""
        try:
            self._send(self._objects.archive_with_http_info, _plural(object), record_id)
        except PermanentError as err:
            if err.status == 404:
                return False
            raise
        return True


def _plural(object: str) -> str:
    """HubSpot's object type in a URL: ``contact`` -> ``contacts``, ``call`` -> ``calls``."""
    name = object.lower()
    return name if name.endswith("s") else name + "s"


def _person(pid: str, props: Mapping[str, Any], fields: Sequence[str], *, created: bool = False) -> Person:
    return person_from(pid, props, fields, created=created)
