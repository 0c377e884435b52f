"""``follow_up:`` for one call (SPEC §6): the task a rep gets when the outcome asks for it. Pure.

* ``when`` renders false (empty, ``false``, ``no``, ``0``, ``none`` …): no task.
* ``due`` is a path or a template giving a date (``2026-03-04``: a task due that day) or a
  date and time (ISO 8601 or epoch ms). Empty or absent: ``DEFAULT_DUE`` after the call ended
  (the next day, same time), so a callback the customer asked for is never left undated.
  A value that is no date is a problem (reported, the call becomes ``partial``) and the
  default applies: the task is still created.
* ``title`` (required), ``body``, ``priority`` (``low`` | ``normal`` | ``high``), ``owner``
  (a CRM user id; default: the person's owner).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmsync import times
from crmsync.canonical import CallContext
from crmsync.crm.base import FollowUp
from crmsync.mapping.coerce import CoercionError, coerce, is_empty, short
from crmsync.mapping.context import resolve
from crmsync.mapping.rules import FollowUpSpec

DEFAULT_DUE = timedelta(days=1)  # after the call ended, when ``due`` is absent or empty
_DAY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def follow_up(spec: FollowUpSpec, context: CallContext, region: str) -> tuple[FollowUp | None, str, list[str]]:
    """(the task, or None; why not when None; problems). Templates that fail are problems."""
    problems: list[str] = []
    call = context["call"]

    def render(name: str, template: Any, default: str = "") -> str:
        if template is None:
            return default
        try:
            return str(template.render(context)).strip()
        except Exception as exc:  # an admin's template may fail in any way
            problems.append(f"follow_up.{name}: template failed: {type(exc).__name__}")
            return default

    try:
        if spec.when is not None and not spec.when.truthy(context):
            return None, "when is false", problems
    except Exception as exc:  # see render
        return None, "when failed", [f"follow_up.when: template failed: {type(exc).__name__}"]
    title = render("title", spec.title, "Follow up") or "Follow up"
    due = _due(spec, context, region, problems)
    return (
        FollowUp(
            call_id=str(call.get("id") or ""),
            title=title,
            body=render("body", spec.body),
            due=due,
            priority=spec.priority,
            owner_id=render("owner", spec.owner) or None,
        ),
        "",
        problems,
    )


def _due(spec: FollowUpSpec, context: CallContext, region: str, problems: list[str]) -> date | datetime:
    raw: Any = None
    try:
        if spec.due_template is not None:
            raw = spec.due_template.render(context)
        elif spec.due_path is not None:
            raw = resolve(context, spec.due_path)
    except Exception as exc:  # an admin's template may fail in any way
        problems.append(f"follow_up.due: template failed: {type(exc).__name__}")
    if not is_empty(raw):
        try:
            if isinstance(raw, str) and _DAY.match(raw):
                return coerce(raw, "date", region)
            return coerce(raw, "datetime", region)
        except CoercionError:
            problems.append(
                f"follow_up.due: {short(raw)} is not a date or a date and time: due "
                f"{DEFAULT_DUE.days} day after the call instead"
            )
    ended = times.parse(context["call"].get("ended_at") or context["call"].get("started_at") or "")
    return (ended or datetime.now(UTC)) + DEFAULT_DUE
