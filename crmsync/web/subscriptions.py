"""Which event types become jobs: the ``events:`` of the active CRM's mapping files (SPEC §5)."""

from __future__ import annotations

import logging

from crmsync.errors import ConfigurationError
from crmsync.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_EVENTS = ("call.ended",)


class Subscriptions:
    """Loaded once at start; ``problem`` says why the mapping files could not be loaded;
    ``routes`` is the routing table (``crmsync.mapping.routing.Routes.table``), for ``/readyz``.

    With no loadable mapping the receiver still stores every event (nothing is lost) and
    queues ``call.ended`` only; ``/readyz`` reports the problem.
    """

    def __init__(self, settings: Settings) -> None:
        self.events: tuple[str, ...] = DEFAULT_EVENTS
        self.problem: str | None = None
        self.routes: list[dict[str, object]] = []
        if not settings.crm:
            self.problem = "CRM is not set, so no mapping is active"
            return
        try:
            from crmsync.mapping.routing import load_routes

            routes = load_routes(settings.mappings_dir, settings.crm)
        except (ConfigurationError, OSError) as exc:
            self.problem = f"the mappings in {settings.mappings_dir} did not load: {str(exc).splitlines()[0]}"
            log.error("mapping not loaded", extra={"problem": self.problem})
            return
        self.events = tuple(routes.events)
        self.routes = [{"file": row["file"], "serves": row["serves"]} for row in routes.table()]

    @property
    def loaded(self) -> bool:
        return self.problem is None

    def wants(self, event: str) -> bool:
        return event in self.events
