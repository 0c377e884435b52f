"""The default activity body: what a salesperson reads on the call in the CRM.

Used when a mapping has no ``activity.body``. In order: the outcome as a short list, the
recording link, the duration, the tools the agent used, then the transcript as
``Speaker: text`` lines, in the body format of the CRM's profile: ``html`` (HubSpot's
``hs_call_body`` renders it) or ``text`` (Salesforce's ``Task.Description`` is a plain
textarea). The profile cuts every body, default or templated, to the CRM's limit
(``crmsync.crm.base.Profile.fit_activity``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import escape

from crmsync.canonical import CallContext
from crmsync.mapping.coerce import as_list, is_empty

BODY_FORMATS = ("html", "text")
_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[_\-]+")


def label(key: str) -> str:
    """``interest_level`` / ``expectedSalary`` → ``Interest level`` / ``Expected salary``."""
    words = [w for w in _WORDS.split(str(key)) if w]
    text = " ".join(w if w.isupper() else w.lower() for w in words)
    return text[:1].upper() + text[1:] if text else str(key)


def display(value: Any) -> str:
    """An outcome value for people: JSON arrays inside strings become ``a, b``."""
    items = as_list(value)
    if items is not None:
        return ", ".join(display(item) for item in items)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).strip()


def duration(seconds: Any) -> str | None:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return None
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def default_body(context: CallContext, body_format: str) -> str:
    """The body in ``body_format`` (``html`` or ``text``), uncut; ``ValueError`` for another format."""
    if body_format not in BODY_FORMATS:
        raise ValueError(f"body format {body_format!r} is not one of {', '.join(BODY_FORMATS)}")
    call = context["call"]
    outcome = {k: v for k, v in (context.get("outcome") or {}).items() if not is_empty(v)}
    tools = [t for t in context.get("tools") or [] if isinstance(t, dict)]
    turns = [t for t in context.get("transcript") or [] if isinstance(t, dict)]
    html = body_format == "html"
    lines: list[str] = []

    def heading(text: str) -> None:
        lines.append(f"<h3>{escape(text)}</h3>" if html else ("\n" if lines else "") + text)

    if outcome:
        heading("Outcome")
        items = [(label(k), display(v)) for k, v in outcome.items()]
        if html:
            lis = "".join(f"<li><b>{escape(k)}:</b> {escape(v)}</li>" for k, v in items)
            lines.append(f"<ul>{lis}</ul>")
        else:
            lines.extend(f"- {k}: {v}" for k, v in items)
    facts = []
    if call.get("recording_url"):
        url = str(call["recording_url"])
        facts.append(("Recording", f'<a href="{escape(url)}">{escape(url)}</a>' if html else url))
    if duration(call.get("duration_seconds")):
        facts.append(("Duration", duration(call.get("duration_seconds")) or ""))
    if facts:
        heading("Call")
        for name, text in facts:
            lines.append(f"<p><b>{name}:</b> {text}</p>" if html else f"{name}: {text}")
    if tools:
        heading("Tools used")
        for tool in tools:
            name = str(tool.get("name") or "tool")
            result = display(tool.get("output")) if not is_empty(tool.get("output")) else "no result"
            lines.append(f"<p><b>{escape(name)}:</b> {escape(result)}</p>" if html else f"- {name}: {result}")
    if turns:
        heading("Transcript")
        for turn in turns:
            speaker, text = str(turn.get("speaker") or "Unknown"), str(turn.get("text") or "")
            lines.append(f"<p><b>{escape(speaker)}:</b> {escape(text)}</p>" if html else f"{speaker}: {text}")
    if not lines:
        text = "No outcome or transcript was received for this call."
        return f"<p>{text}</p>" if html else text
    return "\n".join(lines)
