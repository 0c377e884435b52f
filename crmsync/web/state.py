"""What one web process builds once and every request reuses (``app.extensions["crmsync"]``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from redis import Redis

from crmsync import store
from crmsync.ingest import Ingest
from crmsync.metrics import Metrics
from crmsync.settings import Settings
from crmsync.web.subscriptions import Subscriptions


@dataclass(frozen=True)
class WebState:
    """The settings (validated once, by ``create_app``), the Redis client, the ingest
    script, the active mapping's subscriptions and the metrics writer. Nothing here
    connects: the first request does."""

    settings: Settings
    redis: Redis
    ingest: Ingest
    subscriptions: Subscriptions
    metrics: Metrics

    @classmethod
    def build(cls, settings: Settings, redis: Redis | None = None) -> WebState:
        client = redis or store.redis_client(settings)
        return cls(
            settings=settings,
            redis=client,
            ingest=Ingest(client, settings.dedupe_ttl, settings.raw_body_ttl),
            subscriptions=Subscriptions(settings),
            metrics=Metrics(client),
        )


def state() -> WebState:
    """The current app's state (inside a request or an app context)."""
    web: WebState = current_app.extensions["crmsync"]
    return web
