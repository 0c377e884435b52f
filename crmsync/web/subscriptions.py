"""Which event types become jobs: the active mapping's ``events:`` (SPEC §5)."""

from __future__ import annotations

import logging

from crmsync.errors import ConfigurationError
from crmsync.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_EVENTS = ("call.ended",)


class Subscriptions:
    """Loaded once at start; ``problem`` says why the mapping could not be loaded.

    With no loadable mapping the receiver still stores every event (nothing is lost) and
    queues ``call.ended`` only; ``/readyz`` reports the problem.
    """

    def __init__(self, settings: Settings) -> None:
        self.events: tuple[str, ...] = DEFAULT_EVENTS
        self.problem: str | None = None
        if not settings.crm:
            self.problem = "CRM is not set, so no mapping is active"
            return
        try:
            from crmsync.mapping import load_mapping

            mapping = load_mapping(settings.mapping_path)
        except (ConfigurationError, OSError) as exc:
            self.problem = f"the mapping {settings.mapping_path} did not load: {str(exc).splitlines()[0]}"
            log.error("mapping not loaded", extra={"problem": self.problem})
            return
        self.events = tuple(mapping.events)

    @property
    def loaded(self) -> bool:
        return self.problem is None

    def wants(self, event: str) -> bool:
        return event in self.events
