"""Build the connector that ``CRM`` names."""

from __future__ import annotations

from redis import Redis

from crmsync.crm.base import Connector
from crmsync.metrics import Metrics
from crmsync.settings import Settings


def build_connector(settings: Settings, redis: Redis, metrics: Metrics | None = None) -> Connector:
    crm = settings.require_crm()
    settings.require_crm_credentials()
    if crm == "hubspot":
        from crmsync.crm.hubspot import HubSpotConnector

        return HubSpotConnector(settings.hubspot, redis, metrics=metrics)
    from crmsync.crm.salesforce import SalesforceConnector

    return SalesforceConnector(settings.salesforce, redis, metrics=metrics)
