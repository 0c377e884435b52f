"""What a CRM is, as the mapping layer needs to know it: the connector's profile.

A ``Profile`` names the objects a mapping may match and create, the owner field, the
activity object, and how the call's activity is shaped for the CRM (body format and
length limits). ``wire`` turns a typed value the mapping engine planned (``str``,
``int``/``float``, ``bool``, ``date``, ``datetime``) into the CRM's wire form. The mapping
loader, the engine and ``mappings check --remote`` read a profile by the mapping's
``crm:``; the connector uses the same one, so each CRM's rules are written once, in
``crmsync.crm``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from markupsafe import escape

from crmsync.crm.base import Activity


@dataclass(frozen=True)
class Profile:
    """One CRM's shape. ``match_objects[0]`` is the default of ``match.objects``."""

    name: str
    match_objects: tuple[str, ...]  # objects found by phone (and named by fields[].object)
    create_objects: tuple[str, ...]  # objects match.create.object may name
    owner_field: str  # the person's and the activity's owner property
    activity_object: str  # the object a call is logged as (describe'd for activity.properties)
    body_format: str  # "html" | "text": what the activity body field renders
    body_limit: int  # characters the activity body field holds
    title_limit: int | None  # characters of the activity title, None: no limit
    disposition_limit: int | None  # characters of a free-text disposition, None: no limit
    wire: Callable[[Any], Any]  # typed value -> the CRM's wire form

    @property
    def html(self) -> bool:
        return self.body_format == "html"

    def fit_activity(self, activity: Activity) -> Activity:
        """``activity`` with title, disposition and body cut to this CRM's limits (the body at a
        line boundary, with a marker); idempotent."""
        title, disposition = activity.title, activity.disposition
        if self.title_limit is not None:
            title = title[: self.title_limit]
        if disposition is not None and self.disposition_limit is not None:
            disposition = disposition[: self.disposition_limit]
        body = truncate(activity.body, self.body_limit, html=self.html)
        return replace(activity, title=title, disposition=disposition, body=body)

    def wire_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Every value of ``values`` in the wire form."""
        return {name: self.wire(value) for name, value in values.items()}


def truncate(body: str, limit: int, *, html: bool) -> str:
    """``body`` cut at a line boundary so that it and a marker fit in ``limit`` characters.

    In the HTML body every line is a whole element, so a cut there keeps the markup valid.
    A first line longer than the limit is cut inside.
    """
    if len(body) <= limit:
        return body
    lines = body.split("\n")
    kept: list[str] = []
    size = 0
    for line in lines:
        marker = _marker(len(lines) - len(kept), html)
        if size + len(line) + 1 + len(marker) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    marker = _marker(len(lines) - len(kept), html)
    if not kept:  # one huge line: cut inside it, as plain text
        room = max(limit - len(marker) - 1, 0)
        first = re.sub(r"<[^>]*>", "", lines[0]) if html else lines[0]
        return (first[:room] + "\n" + marker)[:limit]
    return "\n".join(kept) + "\n" + marker


def _marker(cut_lines: int, html: bool) -> str:
    text = f"[… {cut_lines} more lines cut to fit the CRM limit]"
    return f"<p><i>{escape(text)}</i></p>" if html else text
