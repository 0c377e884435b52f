"""The compiled parts of a mapping file (SPEC §6): one ``fields:`` entry, ``match:`` and
``activity:``. Plain data, built by ``crmsync.mapping.sections``; ``crmsync.mapping.model.Mapping``
holds them and ``crmsync.mapping.engine`` reads them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmsync.mapping.templates import Template


@dataclass
class FieldRule:
    """One entry of ``fields:``; ``source`` (a path) or ``value`` (a template) is set."""

    to: str
    type: str = "string"
    source: str | None = None
    value: Template | None = None
    values: dict[str, Any] | None = None  # map_key(source value) -> target value (None: leave alone)
    write: str = "always"
    when: Template | None = None
    object: str | None = None
    line: int = 0

    def applies_to(self, person_object: str | None) -> bool:
        return self.object is None or person_object is None or self.object == person_object

    @property
    def origin(self) -> str:
        return self.source if self.source is not None else "value template"


@dataclass
class Match:
    phone: list[str] = field(default_factory=lambda: ["call.customer_number"])
    objects: list[str] = field(default_factory=list)
    on_multiple: str = "most_recent"
    on_missing: str = "skip"
    create_object: str | None = None
    create_properties: dict[str, Template] = field(default_factory=dict)


@dataclass
class Link:
    """``link:``: also attach the activity to the person's company and/or open deal."""

    company: bool = False
    deal: str = "none"  # none | most_recent_open

    @property
    def any(self) -> bool:
        return self.company or self.deal != "none"


@dataclass
class FollowUpSpec:
    """``follow_up:``: a task for the rep, created once per call when ``when`` is true.
    ``due`` is a path (``due_path``) or a template (``due_template``); neither: the default
    offset after the call ended."""

    when: Template | None = None
    due_path: str | None = None
    due_template: Template | None = None
    title: Template | None = None
    body: Template | None = None
    priority: str = "normal"  # low | normal | high
    owner: Template | None = None  # default: the person's owner


@dataclass
class ActivitySpec:
    title: Template | None = None
    body: Template | None = None
    disposition_from: str | None = None
    disposition_values: dict[str, Any] | None = None
    properties: dict[str, Template] = field(default_factory=dict)
    transcript: str = "full"  # full | redacted | none: what of the transcript the activity shows
