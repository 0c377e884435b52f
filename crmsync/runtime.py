"""What one worker process builds once and every job reuses: settings, Redis, the
mapping files (their routes), the CRM connector, the metrics and the batch claims.

RQ calls job functions by name, so the job finds these through ``Runtime.current()``,
built lazily on the first job of the process (nothing connects at import time).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import ClassVar

from redis import Redis

from crmsync import store
from crmsync.claim import Claims
from crmsync.crm.base import Connector
from crmsync.mapping.routing import Routes
from crmsync.metrics import Metrics
from crmsync.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    routes: Routes  # the mapping files of the CRM, and which one a call uses
    connector: Connector
    metrics: Metrics
    claims: Claims  # waiting calls taken for a batch (crmsync.batch)

    _current: ClassVar[Runtime | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def build(cls, settings: Settings, redis: Redis | None = None) -> Runtime:
        from crmsync.crm.factory import build_connector
        from crmsync.mapping.routing import load_routes

        settings.require_crm_credentials()
        client = redis or store.redis_client(settings)
        metrics = Metrics(client)
        routes = load_routes(settings.mappings_dir, settings.require_crm())
        connector = build_connector(settings, client, metrics)
        return cls(
            settings=settings,
            redis=client,
            routes=routes,
            connector=connector,
            metrics=metrics,
            claims=Claims(client),
        )

    def close(self) -> None:
        self.connector.close()

    @classmethod
    def current(cls) -> Runtime:
        with cls._lock:
            if cls._current is None:
                cls._current = cls.build(Settings.from_env())
            return cls._current

    @classmethod
    def install(cls, runtime: Runtime | None) -> None:
        """Use ``runtime`` for this process's jobs (the worker builds it at start)."""
        with cls._lock:
            cls._current = runtime
