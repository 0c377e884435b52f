"""What one column of ``bench.burst`` measured (:class:`Run`), and the report made of it:
the set-up it ran with (the sandbox's HubSpot limits, processes, lone calls), a markdown table
per CRM, HubSpot's limit-bound minimum drain, and each goal met or missed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import api_requests, breakdown, machine, table

GENERAL = (100, 10.0)  # HubSpot Starter: requests per rolling window (seconds)
SEARCH = (4, 1.0)  # searches per second
WORKERS = 2
POSTERS = 8  # webhook deliveries in flight at once
LONE = 10  # lone calls per run
LONE_GAP = 1.0  # seconds the workers idle before each lone call
MODES = {"batching on": {}, "batching off": {"SYNC_BATCH_MAX": "1"}}
GOALS = {"drain": 30.0, "share_429": 0.01, "salesforce_per_call": 0.2}  # seconds, share, requests


@dataclass
class Run:
    """What one burst and its lone calls measured."""

    crm: str
    mode: str
    calls: int
    answers: dict[str, int]
    accepted: list[str]
    post_seconds: float
    drained: float | None
    timeout: float
    done: int
    made: dict[str, int]  # activities per call id in the sandbox
    recorded: list[Any]  # the sandbox's requests during the burst
    sample: dict[str, Any]
    lone: list[float]
    dead: list[str]

    @property
    def lost(self) -> int:
        return len(self.accepted) - self.done

    @property
    def duplicates(self) -> int:
        return sum(1 for c in self.accepted if self.made.get(c, 0) > 1)

    @property
    def single(self) -> int:
        return sum(1 for c in self.accepted if self.made.get(c) == 1)

    @property
    def per_call(self) -> list[Any]:
        """The burst's requests less the one-offs (logins, describes, property lists)."""
        return api_requests(self.recorded)[0]

    def count(self, search: bool | None = None, ok: bool = True) -> int:
        """Per-call requests answered 2xx (``ok``) or not; ``search``: only searches, or none."""
        return sum(
            1
            for r in self.per_call
            if (200 <= r.status < 300) == ok and (search is None or r.path.endswith("/search") == search)
        )

    @property
    def rejected(self) -> int:
        """429 answers, one-offs included."""
        return sum(1 for r in self.recorded if r.status == 429)

    @property
    def share_429(self) -> float:
        return self.rejected / max(1, len(self.recorded))


def floor(r: Run) -> tuple[float, str]:
    """HubSpot's limit-bound minimum drain, from this run's 2xx requests per call and both
    limits (searches are exempt from the 10-second limit: the two run in parallel)."""
    searches = len(r.accepted) * r.count(search=True) / max(1, r.done) / (SEARCH[0] / SEARCH[1])
    general = len(r.accepted) * r.count(search=False) / max(1, r.done) / (GENERAL[0] / GENERAL[1])
    return (searches, "searches") if searches >= general else (general, "other requests")


def floor_text(r: Run) -> str:
    seconds, binding = floor(r)
    return f"{seconds:.1f} s ({binding})"


def max_window(r: Run, seconds: float, *, search: bool) -> int:
    """Most requests the sandbox received in any ``seconds`` window (429s included)."""
    times = sorted(q.at for q in r.recorded if q.path.endswith("/search") == search)
    best = start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def drain_text(r: Run) -> str:
    return f"**{r.drained:.1f} s**" if r.drained is not None else f"**NOT drained within {r.timeout:.0f} s**"


def per_call_text(r: Run) -> str:
    calls = max(1, len(r.accepted))
    text = f"**{len(r.per_call) / calls:.3f}** ({len(r.per_call)} requests"
    if r.crm == "hubspot":
        text += f": {r.count(search=True) / calls:.3f} search + {r.count(search=False) / calls:.3f} other (2xx)"
    return text + ")"


def rejected_text(r: Run) -> str:
    per_call = r.rejected / max(1, len(r.accepted))
    return f"**{r.rejected}** ({r.share_429:.2%} of {len(r.recorded)}; {per_call:.2%} per call)"


def lone_text(r: Run) -> str:
    if not r.lone:
        return "not measured (the burst did not drain)"
    ms = sorted(1000 * s for s in r.lone)
    return f"**{statistics.median(ms):.0f} ms** ({ms[0]:.0f}–{ms[-1]:.0f} ms, {len(ms)} calls)"


FIGURES: list[tuple[str, Callable[[Run], object], tuple[str, ...]]] = [
    ("webhooks accepted (posting time)", lambda r: f"{len(r.accepted)} / {r.calls} ({r.post_seconds:.1f} s)", ()),
    ("time to drain (first post → all synced/partial)", drain_text, ()),
    ("limit-bound minimum (this run's requests per call)", floor_text, ("hubspot",)),
    ("calls lost (accepted − synced/partial)", lambda r: f"**{r.lost}**", ()),
    ("calls with exactly one activity / with duplicates", lambda r: f"{r.single} / **{r.duplicates}**", ()),
    ("429 answers (share of all requests; per call)", rejected_text, ()),
    ("other non-2xx answers", lambda r: r.count(ok=False) - r.rejected, ()),
    ("CRM requests per call (one-offs excluded)", per_call_text, ()),
    ("one-off requests (logins, describes, properties)", lambda r: len(r.recorded) - len(r.per_call), ()),
    (
        f"most requests in any 10 s / searches in any 1 s (limits {GENERAL[0]}, {SEARCH[0]})",
        lambda r: f"{max_window(r, 10.0, search=False)} / {max_window(r, 1.0, search=True)}",
        ("hubspot",),
    ),
    ("lone call, POST → synced: median (min–max)", lone_text, ()),
    (
        "`crmsync status --json` of the last call",
        lambda r: f"{r.sample.get('state')}, {r.sample.get('attempts')} attempt(s)",
        (),
    ),
]


def crm_table(runs: list[Run]) -> list[str]:
    """One CRM's figures, a column per mode."""
    header = ["figure", *(f"{r.mode} ({r.calls} calls{', SYNC_BATCH_MAX=1' if MODES[r.mode] else ''})" for r in runs)]
    rows = [(name, *(figure(r) for r in runs)) for name, figure, crms in FIGURES if not crms or runs[0].crm in crms]
    dead = [f"{r.mode}: {', '.join(r.dead)}" for r in runs if r.dead]
    if dead:
        rows.append(("processes that died", *("; ".join(dead) for _ in runs)))
    return table(header, rows)


def goals(runs: list[Run]) -> list[str]:
    """Each goal, met or missed, from the runs that measure it."""

    def verdict(met: bool) -> str:
        return "met" if met else "**MISSED**"

    lines = []
    for r in runs:
        lines.append(
            f"- {r.crm}, {r.mode}: lost {r.lost}, duplicates {r.duplicates}: {verdict(r.lost == r.duplicates == 0)}"
        )
        if r.mode != "batching on":
            continue
        if r.crm == "hubspot":
            drained = drain_text(r).strip("*")
            lines.append(
                f"- hubspot drain under {GOALS['drain']:.0f} s with batching: {drained}, "
                f"{verdict(r.drained is not None and r.drained < GOALS['drain'])}"
            )
            lines.append(
                f"- hubspot 429 share under {GOALS['share_429']:.0%}: {r.share_429:.2%}, "
                f"{verdict(r.share_429 < GOALS['share_429'])}"
            )
        else:
            ratio = len(r.per_call) / max(1, len(r.accepted))
            lines.append(
                f"- salesforce requests per call ≤ {GOALS['salesforce_per_call']}: {ratio:.3f}, "
                f"{verdict(ratio <= GOALS['salesforce_per_call'])}"
            )
    return lines


def report(runs: list[Run], skipped: bool) -> list[str]:
    lines = [
        f"Bursts of `call.ended` webhooks (documented fixture, distinct known callers) posted over HTTP to the "
        f"Procfile `web` process ({POSTERS} in flight), synced by {WORKERS} Procfile `worker` processes, with "
        "worker batching on (default settings) and off (`SYNC_BATCH_MAX=1`, each call alone as before batching); "
        f"fresh processes, Redis and sandbox for every column. HubSpot's sandbox enforces Starter limits "
        f"({GENERAL[0]} requests / {GENERAL[1]:g} s rolling, {SEARCH[0]} searches / {SEARCH[1]:g} s, 429 with "
        "Retry-After beyond), crmsync at its default limits (`HUBSPOT_RATE_LIMIT=100/10s`, "
        f"`HUBSPOT_SEARCH_RATE_LIMIT=4/s`). Lone calls: {LONE} per column after the burst, each posted once the "
        f"last was synced and the workers had idled {LONE_GAP:g} s.",
        "",
    ]
    if skipped:
        lines += ["Baseline skipped (`--skip-baseline`): batching off was not measured in this run.", ""]
    for crm in dict.fromkeys(r.crm for r in runs):
        lines += [f"### {crm}", "", *crm_table([r for r in runs if r.crm == crm]), ""]
    lines += ["Requests per kind (per-call requests only):", ""]
    lines += [f"- {r.crm}, {r.mode}: {breakdown(r.per_call)}" for r in runs]
    lines += ["", "Goals:", "", *goals(runs), "", f"Load average after the run: {machine()['load']}"]
    return lines
