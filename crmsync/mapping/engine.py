"""The mapping engine: canonical call + the person's current CRM values → a plan. Pure.

The rules of SPEC §6, per ``fields:`` entry, in this order:

1. ``object:`` names another object type → the entry is not part of the plan.
2. ``when:`` renders false → skip ("when is false").
3. the source (``from:`` path or ``value:`` template) is missing, null or empty → skip.
4. ``values:`` maps the source; a value not in the map is a *problem*; one mapped to null
   is left alone.
5. the value is coerced to ``type`` (a typed Python value: ``date``, ``datetime``, a
   number, ``bool``, text); failure is a *problem*. The plan keeps that value and, for the
   preview and the comparisons, the CRM's wire form (the profile's ``wire``).
6. ``write: if_empty`` skips a field that has a value; ``append`` adds a line to the text
   (a line already there is not added again, so a replayed call changes nothing).
7. a value equal to the current one is not written ("unchanged").

Redaction (``redact``, the mapping's ``redact:`` rules) is applied to every text that leaves:
the activity's title, body and properties, and each ``type: string`` value (before the
unchanged check, so a replay writes nothing new; for ``append`` only the new line). The
activity sees the transcript as ``activity.transcript`` says: ``full``, ``redacted`` (its
turns pass through the rules, or the built-in card_number, iban and email when the file lists
none) or ``none`` (no transcript at all). The number used for matching is read from the call
itself, never from redacted text.

A problem skips that one field; the rest of the call still syncs. Entries are applied in
file order and later entries see what earlier ones planned for the same field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, cast

from crmsync.canonical import CallContext
from crmsync.crm.base import Activity, Profile
from crmsync.mapping.body import default_body
from crmsync.mapping.coerce import CoercionError, as_list, coerce, is_empty, map_key, readable, short
from crmsync.mapping.context import resolve
from crmsync.mapping.redact import BUILTIN, Redactor, builtin
from crmsync.mapping.rules import ActivitySpec, FieldRule


@dataclass
class FieldPlan:
    """One field's decision. ``value`` is the typed value planned (``date``, ``datetime``,
    number, ``bool``, text; None when there is none), ``new`` the same value in the CRM's
    wire form; ``problem`` is True for coercion failures, unmapped values and template errors,
    False for fields left alone on purpose (empty source, if_empty, when, unchanged)."""

    to: str
    old: Any
    new: Any
    action: str  # "write" | "skip"
    reason: str = ""
    problem: bool = False
    source: str = ""
    object: str | None = None
    type: str = "string"
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``value`` as a person reads it (a date as ``2026-04-01``)."""
        data = asdict(self)
        data["value"] = readable(self.value)
        return data


@dataclass
class Plan:
    """What one call does: the activity, and per field what is written or why not."""

    activity: Activity
    fields: list[FieldPlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # activity-level (disposition, templates)

    @property
    def updates(self) -> dict[str, Any]:
        """Field → typed value, for the fields to write (the last entry wins per field); the
        connector writes them in its wire form."""
        return {f.to: f.value for f in self.fields if f.action == "write"}

    @property
    def wire_updates(self) -> dict[str, Any]:
        """``updates`` in the CRM's wire form."""
        return {f.to: f.new for f in self.fields if f.action == "write"}

    @property
    def skipped(self) -> dict[str, str]:
        return {f.to: f.reason for f in self.fields if f.action == "skip"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "activity": asdict(self.activity),
            "fields": [f.to_dict() for f in self.fields],
            "updates": self.wire_updates,
            "values": {name: readable(value) for name, value in self.updates.items()},
            "problems": self.problems,
        }


def plan(
    rules: list[FieldRule],
    spec: ActivitySpec,
    crm: Profile,
    context: CallContext,
    person_object: str | None,
    current: dict[str, Any],
    region: str,
    redact: Redactor | None = None,
) -> Plan:
    """See the module docstring. ``current`` holds the person's values (missing = empty)."""
    problems: list[str] = []
    redact = redact or Redactor()
    result = Plan(
        activity=_activity(spec, crm, _activity_context(spec, context, redact), problems, redact), problems=problems
    )
    mine = [rule for rule in rules if rule.applies_to(person_object)]
    result.fields = plan_fields(mine, crm, context, current, region, redact)
    return result


def plan_fields(
    rules: list[FieldRule],
    crm: Profile,
    context: CallContext,
    current: dict[str, Any],
    region: str,
    redact: Redactor | None = None,
) -> list[FieldPlan]:
    """Each of ``rules`` decided against ``current`` (the record's values), in order."""
    redact = redact or Redactor()
    working = dict(current)
    decisions = []
    for rule in rules:
        decision = _field(rule, context, working.get(rule.to), crm, region, redact)
        if decision.action == "write":
            working[rule.to] = decision.new
        decisions.append(decision)
    return decisions


def _activity_context(spec: ActivitySpec, context: CallContext, redact: Redactor) -> CallContext:
    """The context the activity renders from: the transcript as ``activity.transcript`` says
    (a copy: the call itself, and its number, stay as received)."""
    if spec.transcript == "full":
        return context
    if spec.transcript == "none":
        return cast(CallContext, {**context, "transcript": [], "transcript_text": ""})
    rules = redact or builtin(BUILTIN)
    turns = [
        {**t, "text": rules(str(t.get("text") or ""))} if isinstance(t, dict) else t
        for t in context.get("transcript") or []
    ]
    text = rules(str(context.get("transcript_text") or ""))
    return cast(CallContext, {**context, "transcript": turns, "transcript_text": text})


def _field(rule: FieldRule, context: CallContext, old: Any, crm: Profile, region: str, redact: Redactor) -> FieldPlan:
    def skip(reason: str, problem: bool = False, value: Any = None) -> FieldPlan:
        new = None if value is None else crm.wire(value)
        return FieldPlan(rule.to, old, new, "skip", reason, problem, rule.origin, rule.object, rule.type, value)

    try:
        if rule.when is not None and not rule.when.truthy(context):
            return skip("when is false")
        raw = rule.value.render(context) if rule.value is not None else resolve(context, rule.source or "")
    except Exception as exc:  # an admin's template may fail in any way (1 / 0, "a" + 1): one field
        return skip(f"template failed: {type(exc).__name__}", problem=True)
    if is_empty(raw):
        return skip("source is empty")
    if rule.values is not None:
        try:
            raw = _map_values(raw, rule.values, rule.type)
        except CoercionError as exc:
            return skip(str(exc), problem=True)
        if raw is None:
            return skip("the value map leaves it alone")
    try:
        value = coerce(raw, rule.type, region)
    except CoercionError as exc:
        return skip(str(exc), problem=True)
    if redact and isinstance(value, str) and rule.type == "string":
        value = redact(value)
    if rule.write == "if_empty" and not is_empty(old):
        return skip("if_empty: the field has a value", value=value)
    if rule.write == "append" and not is_empty(old):
        lines = [line.strip() for line in str(old).splitlines()]
        if str(value).strip() in lines:
            return skip("unchanged: the line is already there", value=value)
        value = str(old).rstrip("\n") + "\n" + str(value)
    elif _same(old, value, crm.wire(value), rule.type, region):
        return skip("unchanged", value=value)
    return FieldPlan(rule.to, old, crm.wire(value), "write", "", False, rule.origin, rule.object, rule.type, value)


def _map_values(raw: Any, values: dict[str, Any], type: str) -> Any:
    """Apply a value map to one value or (for enum) to each value of a list."""
    items = as_list(raw) if type == "enum" else None
    if items is None:
        items = [raw]
    out = []
    for item in items:
        if is_empty(item):
            continue
        key = map_key(item)
        if key not in values:
            allowed = ", ".join(values) or "nothing"
            raise CoercionError(f"{short(item)} is not in the value map ({allowed})")
        if values[key] is not None:
            out.append(values[key])
    if not out:
        return None
    return out if len(out) > 1 else out[0]


def _same(old: Any, value: Any, new: Any, type: str, region: str) -> bool:
    """Whether the current value ``old`` (as the CRM holds it) already is ``value`` (wire form ``new``)."""
    if is_empty(old):
        return False
    if type == "enum":
        return {p.strip() for p in str(old).split(";")} == {p.strip() for p in str(new).split(";")}
    try:
        return bool(coerce(old, type, region) == value)
    except CoercionError:
        return str(old).strip() == str(new).strip()


def _activity(
    spec: ActivitySpec, crm: Profile, context: CallContext, problems: list[str], redact: Redactor
) -> Activity:
    call = context["call"]

    def render(name: str, template: Any, default: str) -> str:
        if template is None:
            return default
        try:
            return str(template.render(context)).strip()
        except Exception as exc:  # see _field
            problems.append(f"activity.{name}: template failed: {type(exc).__name__}")
            return default

    agent = call.get("agent_name")
    title = render("title", spec.title, f"AI call with {agent}" if agent else "AI call") or "AI call"
    body = render("body", spec.body, "") if spec.body is not None else default_body(context, crm.body_format)
    properties: dict[str, Any] = {}
    for name, template in spec.properties.items():
        text = render(f"properties.{name}", template, "")
        if text:
            properties[name] = redact(text) if redact else text
    owner = properties.pop(crm.owner_field, None)
    if redact:
        title, body = redact(title), redact(body)
    inbound = call.get("direction") != "outbound"
    customer, agent_number = call.get("customer_number"), call.get("agent_number")
    return crm.fit_activity(
        Activity(
            call_id=str(call.get("id") or ""),
            title=title,
            body=body,
            timestamp=call.get("ended_at") or call.get("answered_at") or call.get("started_at") or "",
            direction=call.get("direction"),
            duration_seconds=call.get("duration_seconds"),
            status=call.get("status"),
            disposition=_disposition(spec, context, problems),
            from_number=customer if inbound else agent_number,
            to_number=agent_number if inbound else customer,
            recording_url=call.get("recording_url"),
            owner_id=owner,
            properties=properties,
        )
    )


def _disposition(spec: ActivitySpec, context: CallContext, problems: list[str]) -> str | None:
    if spec.disposition_from is None:
        return None
    raw = resolve(context, spec.disposition_from)
    if is_empty(raw):
        return None
    if spec.disposition_values is None:
        return str(raw).strip()  # cut to the CRM's limit with the rest of the activity
    key = map_key(raw)
    if key not in spec.disposition_values:
        allowed = ", ".join(spec.disposition_values)
        problems.append(f"activity.disposition: {short(raw)} is not in the value map ({allowed})")
        return None
    mapped = spec.disposition_values[key]
    return None if mapped is None else str(mapped)
