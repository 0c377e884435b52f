"""What the admin console shows of each CRM: links into its own web UI, and its API budget.
Each CRM's profile (``crmsync.crm.profiles``) names its functions here.

``*_record_url(settings, object, id)`` returns the address of that record in the CRM's UI,
or None when the settings do not say where that UI is (HubSpot needs ``HUBSPOT_PORTAL_ID``;
Salesforce its instance or My Domain). ``*_budget_alarm(redis)`` says in plain words when
the CRM's daily API allowance is nearly spent, else None.
"""

from __future__ import annotations

from urllib.parse import quote

from redis import Redis

from crmsync.settings import Settings

BUDGET_ALARM = 0.9  # share of the daily allowance spent that raises the alarm

# HubSpot's object type ids, as its record URLs name them
HUBSPOT_TYPES = {"contact": "0-1", "company": "0-2", "deal": "0-3", "call": "0-48", "task": "0-27"}


def hubspot_record_url(settings: Settings, object: str, record_id: str) -> str | None:
    """``https://app.hubspot.com/contacts/<portal>/record/<type id>/<id>``."""
    portal = settings.hubspot.portal_id
    kind = HUBSPOT_TYPES.get(object.lower())
    if not portal or not kind or not record_id:
        return None
    return f"{settings.hubspot.app_url}/contacts/{quote(portal)}/record/{kind}/{quote(str(record_id))}"


def salesforce_record_url(settings: Settings, object: str, record_id: str) -> str | None:
    """Lightning's ``<instance>/lightning/r/<Object>/<Id>/view``."""
    sf = settings.salesforce
    base = sf.instance_url or (f"https://{sf.domain}.salesforce.com" if sf.domain and "." in sf.domain else None)
    if not base or not record_id:
        return None
    return f"{base.rstrip('/')}/lightning/r/{quote(object)}/{quote(str(record_id))}/view"


def salesforce_budget_alarm(redis: Redis) -> str | None:
    """From the last ``Sforce-Limit-Info`` reading the connector kept."""
    from crmsync.crm.salesforce_client import USAGE_KEY

    raw = redis.get(USAGE_KEY)
    if not raw:
        return None
    used, _, total = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition("/")
    if not (used.isdigit() and total.isdigit()) or int(total) == 0 or int(used) < BUDGET_ALARM * int(total):
        return None
    return (
        f"Salesforce's daily API allowance is nearly spent: {int(used):,} of {int(total):,} requests used in "
        "the last 24 hours (shared with the org's other integrations); calls will wait for room"
    )
