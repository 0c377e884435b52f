"""Hamsa webhook bodies → canonical call events, and events → the call a mapping sees.

``normalise(body, region)`` validates one webhook body (raising ``InvalidEvent`` with
every problem at once) and returns a canonical event; ``call_context(events)`` merges the
events recorded for one call into the context of SPEC §5; ``dedupe_key(event)`` says
which deliveries are the same event.
"""

from crmsync.events.context import call_context
from crmsync.events.normalise import KNOWN_EVENTS, InvalidEvent, dedupe_key, normalise

__all__ = ["KNOWN_EVENTS", "InvalidEvent", "call_context", "dedupe_key", "normalise"]
