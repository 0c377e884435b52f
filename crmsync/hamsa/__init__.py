"""Hamsa's REST API: filling a call's missing details, and reconciling with the call history.

    client.py        HamsaClient: the call list and one conversation, retries, errors
    enrich.py        a webhook call's missing number or duration, from the conversation API
    conversation.py  a call of Hamsa's history → the canonical call.ended event
    reconcile.py     one run over a window: list, join with what was received, fetch, queue
    sweep.py         the periodic sweep: RQ scheduling, one at a time, the watermark
    backfill.py      the same path on demand over a past period (``crmsync backfill``)

Only ``enrich`` is imported here: the job path stays light.
"""

from crmsync.hamsa.enrich import enrich

__all__ = ["enrich"]
