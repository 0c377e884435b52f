"""What one sync of a call did (``Outcome``), as the sync record, the audit and the logs
keep it: built from the connector's answer to the write (``of_write``), or a skip with its
reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmsync.crm.base import Connector, FollowUp, Person, WriteResult
from crmsync.mapping.coerce import readable
from crmsync.mapping.engine import FieldPlan, Plan
from crmsync.record import SyncState


@dataclass
class Outcome:
    """What one sync did, for the sync record."""

    state: SyncState  # synced | partial | skipped
    person: dict[str, Any] | None = None
    activity_id: str | None = None
    activity_created: bool = False  # this sync created the activity (the audit records it; rollback deletes it)
    written: dict[str, Any] = field(default_factory=dict)  # field -> the value as the CRM took it (wire form)
    values: dict[str, Any] = field(default_factory=dict)  # the same fields' values as a person reads them
    previous: dict[str, Any] = field(default_factory=dict)  # the values the written fields replaced
    skipped: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    links: dict[str, Any] = field(default_factory=dict)  # company / deal the activity is on, follow-up task


@dataclass
class Extras:
    """What ``link:`` and ``follow_up:`` add to one call: the follow-up task (or why none),
    the deal's field plan, and their problems."""

    follow_up: FollowUp | None = None
    follow_up_reason: str = ""
    deal_fields: list[FieldPlan] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def of_write(
    connector: Connector, person: Person, plan: Plan, at_create: dict[str, Any], result: WriteResult, extras: Extras
) -> Outcome:
    """The outcome of a call whose write came back as ``result``: what was written (with the
    fields the create wrote, ``at_create``), skipped and refused, and its state."""
    deal = connector.profile.deal_object
    written = {**connector.profile.wire_values(at_create), **result.written}
    values = {k: readable(v) for k, v in at_create.items()} | {
        f.to: readable(f.value) for f in plan.fields if f.action == "write" and f.to in result.written
    }
    skipped = {f.to: f.reason for f in plan.fields if f.action == "skip" and f.to not in at_create}
    previous = {f.to: f.old for f in plan.fields if f.action == "write" and f.to in result.written}
    problems: list[Any] = [f for f in plan.fields + extras.deal_fields if f.action == "skip" and f.problem]
    problems += [*plan.problems, *extras.problems]
    rejected = result.rejected | {f"{deal}.{name}": reason for name, reason in result.deal_rejected.items()}
    for plan_field in extras.deal_fields:  # the deal's fields, named deal.<field> (Opportunity.<field>)
        name = f"{deal}.{plan_field.to}"
        if plan_field.action == "write" and plan_field.to in result.deal_written:
            written[name] = result.deal_written[plan_field.to]
            values[name] = readable(plan_field.value)
            previous[name] = plan_field.old
        elif plan_field.action == "skip":
            skipped[name] = plan_field.reason
    for name, reason in rejected.items():
        skipped[name] = f"refused by the CRM: {reason}"
    errors: list[dict[str, Any]] = [{"field": name, "message": reason} for name, reason in rejected.items()]
    errors += [{"message": problem} for problem in [*plan.problems, *extras.problems]]
    state = SyncState.PARTIAL if problems or rejected else SyncState.SYNCED
    links = dict(result.linked)
    if extras.follow_up is not None or extras.follow_up_reason:
        links["follow_up"] = result.follow_up_id or f"not created: {extras.follow_up_reason}"
    return Outcome(
        state=state,
        person=person.to_dict(),
        activity_id=result.activity_id,
        activity_created=result.activity_created,
        written=written,
        values=values,
        previous=previous | dict.fromkeys(at_create),
        skipped=skipped,
        errors=errors,
        links=links,
    )
