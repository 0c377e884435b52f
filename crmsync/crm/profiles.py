"""Every CRM crmsync speaks to, by the name a mapping's ``crm:`` and ``CRM`` use.

Light to import (no HTTP client is loaded): the mapping loader and the engine read it.
"""

from __future__ import annotations

from crmsync.crm.base import Profile
from crmsync.crm.hubspot_calls import HUBSPOT
from crmsync.crm.salesforce_task import SALESFORCE

PROFILES: dict[str, Profile] = {p.name: p for p in (HUBSPOT, SALESFORCE)}


def names() -> tuple[str, ...]:
    """The CRM names, in the order messages list them."""
    return tuple(PROFILES)


def profile(name: str) -> Profile:
    """The profile of CRM ``name``; ``KeyError`` for a name crmsync does not know."""
    return PROFILES[name]
