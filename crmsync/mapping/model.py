"""A loaded mapping: the parts of SPEC §6, compiled, and the questions the pipeline asks of it.

Built only by ``crmsync.mapping.sections`` (which validates first). Every method here is pure:
no I/O, the same answers for the same inputs, so the worker, the preview command and the
tests all see the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmsync import phones
from crmsync.canonical import CallContext, CallView
from crmsync.crm.base import Profile
from crmsync.crm.profiles import names, profile
from crmsync.mapping.coerce import is_empty, map_key
from crmsync.mapping.context import resolve
from crmsync.mapping.engine import FieldPlan, Plan, plan, plan_fields
from crmsync.mapping.redact import Redactor
from crmsync.mapping.rules import ActivitySpec, FieldRule, FollowUpSpec, Link, Match

__all__ = ["ActivitySpec", "FieldRule", "FollowUpSpec", "Link", "Mapping", "Match", "map_key"]

EVENTS = ("call.started", "call.answered", "transcription.update", "tool.executed", "call.ended")
# The platforms a call may come from (``call.provider``; ``hamsa`` for Hamsa's calls) and which
# a mapping may be limited to (``providers:``).
PROVIDERS = ("hamsa", "retell", "vapi", "elevenlabs", "bland")
WRITE_MODES = ("always", "if_empty", "append")
ON_MULTIPLE = ("most_recent", "first", "skip")
ON_MISSING = ("create", "skip")
LINK_DEAL = ("none", "most_recent_open")
PRIORITIES = ("low", "normal", "high")


@dataclass
class Mapping:
    """A valid mapping file. ``plan`` decides what one call writes; see ``engine.plan``."""

    path: Path
    crm: str = field(default_factory=lambda: names()[0])  # a name of ``crmsync.crm.profiles``
    version: int = 1
    events: list[str] = field(default_factory=lambda: ["call.ended"])
    statuses: list[str] = field(default_factory=lambda: ["completed"])  # which call statuses are logged
    providers: list[str] | None = None  # the platforms whose calls it serves; None: every platform
    agents: list[str] | None = None  # routing (crmsync.mapping.routing): Hamsa agent ids it serves
    projects: list[str] | None = None  # routing: project ids it serves
    match: Match = field(default_factory=Match)
    activity: ActivitySpec = field(default_factory=ActivitySpec)
    link: Link = field(default_factory=Link)
    follow_up: FollowUpSpec | None = None
    fields: list[FieldRule] = field(default_factory=list)
    redact: Redactor = field(default_factory=Redactor)  # redact: rules, applied to every text sent to the CRM
    digest: str = ""  # sha256 of the file's content (12 hex digits): the audit names the version that wrote
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict, repr=False)  # key path -> line

    @property
    def profile(self) -> Profile:
        """The CRM's profile: objects, owner field, activity shape, wire form."""
        return profile(self.crm)

    def refuses_provider(self, call: CallView) -> str | None:
        """Why this mapping does not serve the call's platform (``providers:``), or None when it does.

        A call without ``call.provider`` is a Hamsa call. Choosing among several files by
        agent, project and provider is routing's work; this answers for one file.
        """
        provider = call.get("provider") or "hamsa"
        if self.providers is None or provider in self.providers:
            return None
        return f"the call comes from {provider}: the mapping serves {', '.join(self.providers)} (providers:)"

    def lookup_number(self, context: CallContext, default_region: str) -> str | None:
        """The first non-empty ``match.phone`` value, in E.164 where it parses."""
        for path in self.match.phone:
            value = resolve(context, path)
            if not is_empty(value) and isinstance(value, str | int):
                return phones.normalise(str(value), default_region)
        return None

    def read_fields(self, object: str) -> list[str]:
        """The CRM fields of ``object`` whose current values ``plan`` compares with (every
        target, for if_empty, append and the unchanged check), in file order, once each."""
        names: list[str] = []
        for rule in self.fields:
            if rule.applies_to(object) and rule.to not in names:
                names.append(rule.to)
        return names

    def create_properties(self, context: CallContext) -> dict[str, str]:
        """The new person's properties (``match.create.properties``); empty renders, and
        templates that fail on this call, are left out."""
        out: dict[str, str] = {}
        for name, template in self.match.create_properties.items():
            try:
                text = template.render(context).strip()
            except Exception:  # an admin's template may fail in any way; the CRM reports what is missing
                continue
            if text:
                out[name] = text
        return out

    def plan(
        self, context: CallContext, person_object: str | None, current: dict[str, Any], region: str = "US"
    ) -> Plan:
        """What this call writes on a ``person_object`` whose fields hold ``current``.

        ``person_object`` None plans every entry regardless of ``object:``; ``region``
        reads phone-type sources written without a country code.
        """
        return plan(self.fields, self.activity, self.profile, context, person_object, current, region, self.redact)

    def deal_fields(self) -> list[FieldRule]:
        """The entries written onto the linked deal (``object: deal`` / ``Opportunity``)."""
        return [rule for rule in self.fields if rule.object == self.profile.deal_object]

    def plan_deal(self, context: CallContext, current: dict[str, Any], region: str = "US") -> list[FieldPlan]:
        """What this call writes on the linked deal whose fields hold ``current``."""
        return plan_fields(self.deal_fields(), self.profile, context, current, region, self.redact)
