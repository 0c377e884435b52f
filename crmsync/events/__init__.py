"""Webhook bodies → canonical call events, and events → the call a mapping sees.

``normalise(body, region)`` validates one webhook body (raising ``InvalidEvent`` with
every problem at once) and returns a ``CanonicalEvent``; ``call_context(events)`` merges
the events recorded for one call into the ``CallContext`` of SPEC §5; ``dedupe_key(event)``
says which deliveries are the same event. Where each field may arrive is one table,
``aliases.TABLE``, read by both the validator and the extraction.
"""

from crmsync.canonical import CallContext, CallFields, CallView, CanonicalEvent, ToolRun, Turn
from crmsync.events.context import call_context
from crmsync.events.normalise import KNOWN_EVENTS, InvalidEvent, dedupe_key, normalise

__all__ = [
    "KNOWN_EVENTS",
    "CallContext",
    "CallFields",
    "CallView",
    "CanonicalEvent",
    "InvalidEvent",
    "ToolRun",
    "Turn",
    "call_context",
    "dedupe_key",
    "normalise",
]
