"""The canonical event and the call context (SPEC §5), as typed shapes shared by every layer.

``crmsync.events`` builds them; the queue and the store carry them (they sit below events
in the layers, hence this module at the bottom, importing nothing of crmsync); the job,
the pipeline and the mapping read them. They are ``TypedDict``s: plain dicts at run time,
so an event goes through JSON (the store script, RQ's JSON serializer) and comes back as
the same value, while mypy checks every layer that reads one. ``CanonicalEvent`` is what
``normalise`` returns and the store keeps; ``CallContext`` is what ``call_context`` builds
from a call's events and what mappings and templates see (SPEC §5, "The canonical call").
"""

# No ``from __future__ import annotations`` here: TypedDict tells required keys from
# ``NotRequired`` ones at run time, from the annotations as objects.
from typing import Any, NotRequired, TypedDict

# The canonical statuses of an ended call (SPEC §5) that a mapping may ask to log (``statuses:``);
# a ``call.ended`` whose status is none of these is ``completed`` (crmsync.events.values).
CALL_STATUSES = ("completed", "no_answer", "busy", "failed", "terminated", "canceled", "forwarded", "voicemail")


class Turn(TypedDict):
    speaker: str
    text: str


class ToolRun(TypedDict):
    name: str | None
    input: Any
    output: Any
    duration_ms: Any
    at: str | None


class CallFields(TypedDict):
    """What one event tells about its call; times are ISO 8601 UTC (``…Z``), numbers E.164
    where they parse."""

    id: str
    conversation_id: str | None
    agent_id: str | None
    agent_name: str | None
    project_id: str | None
    direction: str | None
    customer_number: str | None
    agent_number: str | None
    started_at: str | None
    answered_at: str | None
    ended_at: str | None
    duration_seconds: int | None
    status: str | None
    recording_url: str | None
    channel: str | None
    provider: NotRequired[str]  # set by the other platforms' normalisers (crmsync/providers/)
    source: NotRequired[str]  # "reconcile" or "backfill" when not a webhook (SPEC §5)


# The keys of ``CallFields`` that an event's normaliser fills (``source`` is set on calls taken
# from Hamsa's history, not by a normaliser); the mappings' ``call.*`` adds ``event`` to them.
CALL_KEYS = tuple(key for key in CallFields.__annotations__ if key != "source")


class CanonicalEvent(TypedDict):
    """One accepted webhook body. ``call_id`` is always a non-empty id found in ``raw``."""

    call_id: str
    event: str
    event_as_sent: str
    timestamp: str | None
    received_at: str
    call: CallFields
    transcript: list[Turn] | None
    outcome: dict[str, Any] | None
    tool: ToolRun | None
    raw: dict[str, Any]
    source: NotRequired[str]  # a call taken from Hamsa's history: "reconcile" or "backfill"
    unavailable: NotRequired[list[str]]  # what that history did not hold (crmsync/hamsa/conversation.py)
    joined_from: NotRequired[str]  # the webhook's own call id, when it joined a reconciled call (ingest.rekey)


class CallView(CallFields):
    """The merged call: every event's fields, plus the type of the latest event."""

    event: str | None


class CallContext(TypedDict):
    """A call as mappings and templates see it (``call.*``, ``transcript``, ``outcome``, ``tools``)."""

    call: CallView
    transcript: list[Turn]
    transcript_text: str
    outcome: dict[str, Any]
    tools: list[ToolRun]
