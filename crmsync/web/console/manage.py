"""Failed calls (replay one or all) and the quarantine (read, replay, drop): what
``crmsync replay --failed`` and ``crmsync quarantine`` do, from the browser."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, redirect, request, url_for

from crmsync import jobs, quarantine, store
from crmsync.web.console.pages import Console, page

PER_PAGE = 50
NOTES = {
    "replayed-all": "Every failed call whose events are kept was queued again.",
    "dropped": "The body was dropped from the quarantine.",
    "gone": "That body is no longer in the quarantine (replayed, dropped or expired).",
}


def add_routes(blueprint: Blueprint, console: Console) -> None:
    _failed_routes(blueprint, console)
    _quarantine_routes(blueprint, console)


def _failed_routes(blueprint: Blueprint, console: Console) -> None:
    redis = console.redis

    @blueprint.get("/failed")
    def failed() -> Response:
        ids = jobs.failed_calls(redis)
        number = max(int(request.args.get("page", "1")) if request.args.get("page", "1").isdigit() else 1, 1)
        shown = ids[(number - 1) * PER_PAGE : number * PER_PAGE]
        pipe = redis.pipeline()
        for call_id in shown:
            pipe.hget(store.status_key(call_id), "reason")
        reasons = {call_id: json.loads(r) if r else None for call_id, r in zip(shown, pipe.execute(), strict=True)}
        entries = {e.call_id: e for e in console.index.entries(shown)}
        return page(
            "failed.html",
            title="Failed calls",
            ids=shown,
            total=len(ids),
            reasons=reasons,
            entries=entries,
            page_number=number,
            pages=max(1, -(-len(ids) // PER_PAGE)),
            note=NOTES.get(request.args.get("note", "")),
        )

    @blueprint.post("/failed/replay")
    def replay_failed() -> Response:
        jobs.replay_calls(redis, jobs.failed_calls(redis))
        return redirect(url_for("console.failed", note="replayed-all"), 303)  # type: ignore[return-value]


def _quarantine_routes(blueprint: Blueprint, console: Console) -> None:
    redis = console.redis

    @blueprint.get("/quarantine")
    def quarantined() -> Response:
        return page(
            "quarantine.html",
            title="Quarantine",
            bodies=quarantine.newest(redis),
            note=NOTES.get(request.args.get("note", "")),
        )

    @blueprint.get("/quarantine/<qid>")
    def quarantined_body(qid: str) -> Response:
        kept = quarantine.get(redis, qid)
        if kept is None:
            abort(404)
        return page(
            "quarantined.html",
            title=f"Quarantined body {qid}",
            kept=kept,
            body=pretty(kept.body or b""),
            problem=request.args.get("problem") == "1",
        )

    @blueprint.post("/quarantine/<qid>/replay")
    def replay_quarantined(qid: str) -> Response:
        settings = console.settings
        try:
            done = quarantine.replay(
                redis, qid, console.web.ingest, console.web.subscriptions.wants, settings.default_region
            )
        except LookupError:
            return redirect(url_for("console.quarantined", note="gone"), 303)  # type: ignore[return-value]
        except quarantine.StillInvalid as still:
            kept = quarantine.get(redis, qid)
            return page(
                "quarantined.html",
                422,
                title=f"Quarantined body {qid}",
                kept=kept,
                body=pretty(kept.body if kept and kept.body else b""),
                still=still,
            )
        return redirect(url_for("console.call", call_id=done.call_id), 303)  # type: ignore[return-value]

    @blueprint.post("/quarantine/<qid>/drop")
    def drop_quarantined(qid: str) -> Response:
        note = "dropped" if quarantine.drop(redis, qid) else "gone"
        return redirect(url_for("console.quarantined", note=note), 303)  # type: ignore[return-value]


def pretty(body: bytes) -> str:
    """The body as text, pretty-printed when it is JSON (the template escapes it)."""
    text = body.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
