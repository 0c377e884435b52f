"""What the console's pages read, from the same functions the CLI reads.

``status`` is ``crmsync status --json``'s document, ``replay`` does what ``crmsync replay``
does, ``overview`` adds the call index's counts over time to ``crmsync stats``' figures
(``metrics.snapshot``) and says what is wrong in plain words.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from crmsync import callindex, metrics, store
from crmsync.crm.profiles import PROFILES

REFUSED = ("invalid_json", "invalid_event", "too_large")  # webhook answers that mean a delivery was refused


def overview(console: Any, now: float | None = None) -> dict[str, Any]:
    """Calls by state per hour (24 h) and per day (7 d), the ``crmsync stats`` figures and the alarms."""
    now = time.time() if now is None else now
    hour = float(int(now // 3600) * 3600)
    hours = [(hour - 3600 * i, hour - 3600 * (i - 1)) for i in range(23, -1, -1)]
    day = float(int(now // 86400) * 86400)
    days = [(day - 86400 * i, day - 86400 * (i - 1)) for i in range(6, -1, -1)]
    pipe = console.redis.pipeline()
    for low, high in hours + days:
        for state in callindex.STATES:
            pipe.zcount(callindex.state_key(state), low, f"({high}")
    for low in (now - 86400, now - 7 * 86400):
        pipe.zcount(callindex.source_key("reconcile"), low, "+inf")
    counts = pipe.execute()
    per = len(callindex.STATES)
    buckets = [
        dict(zip(callindex.STATES, counts[i * per : (i + 1) * per], strict=True)) for i in range(len(hours) + len(days))
    ]
    hourly = [(_utc(low, "%H:00"), b) for (low, _), b in zip(hours, buckets[:24], strict=True)]
    daily = [(_utc(low, "%a %d"), b) for (low, _), b in zip(days, buckets[24:], strict=True)]
    figures = metrics.snapshot(console.redis)
    return {
        "hours": hourly,
        "days": daily,
        "totals": {"day": _sum(buckets[:24]), "week": _sum(buckets[24:])},
        "reconciled": {"day": counts[-2], "week": counts[-1]},
        "webhooks": _by_label(figures["events_received_total"], "answer"),
        "crm_requests": _by_label(figures["crm_requests_total"], "status"),
        "queue": {k.partition("=")[2]: int(v) for k, v in figures["queue_depth"].items()},
        "alarms": alarms(console, figures),
    }


def alarms(console: Any, figures: dict[str, dict[str, float]]) -> list[str]:
    """What needs the admin, in plain words (empty: nothing)."""
    found = list(metrics.credential_problems(console.redis))
    report, _ = console.mapping_check()
    for entry in report["files"]:
        if not entry["ok"]:
            found.append(
                f"The mapping {entry['path']} is broken ({len(entry['problems'])} problems): calls that use "
                "it wait until it is fixed. See Mappings."
            )
    found += report.get("problems", [])
    refused = sum(v for k, v in figures["events_received_total"].items() if _label(k, "answer") in REFUSED)
    if refused:
        found.append(
            f"{int(refused)} webhook {'delivery was' if refused == 1 else 'deliveries were'} refused as invalid "
            "(see Quarantine for the bodies kept); Hamsa may be sending a shape crmsync does not read."
        )
    ui = PROFILES.get(console.settings.crm or "")
    if ui is not None and (budget := ui.budget_alarm(console.redis)):
        found.append(budget)
    failed = int(console.redis.zcard(store.FAILED_KEY))
    if failed:
        found.append(
            f"{failed} {'call' if failed == 1 else 'calls'} failed and wait{'s' if failed == 1 else ''} for a replay "
            "(see Failed)."
        )
    return found


def _utc(moment: float, form: str) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime(form)


def _label(field: str, name: str) -> str:
    return metrics.parse_field(field).get(name, "")


def _by_label(values: dict[str, float], name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for field, value in values.items():
        key = _label(field, name) or "-"
        out[key] = out.get(key, 0) + int(value)
    return dict(sorted(out.items()))


def _sum(buckets: list[dict[str, int]]) -> dict[str, int]:
    return {state: sum(b[state] for b in buckets) for state in callindex.STATES}
