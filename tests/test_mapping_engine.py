"""The engine: canonical call + current values → plan. Contexts are built by hand (it is pure)."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from crmsync.crm.profiles import profile
from crmsync.crm.text import truncate
from crmsync.mapping import Mapping, load_mapping
from crmsync.mapping.body import default_body, label

CONTEXT: dict[str, Any] = {
    "call": {
        "id": "call-1",
        "conversation_id": "conv-1",
        "event": "call.ended",
        "agent_id": "a1",
        "agent_name": "Noura",
        "project_id": "p1",
        "direction": "inbound",
        "customer_number": "+966501234567",
        "agent_number": "+966112345678",
        "started_at": "2026-03-02T09:11:45.000Z",
        "answered_at": "2026-03-02T09:11:50.000Z",
        "ended_at": "2026-03-02T09:14:52.318Z",
        "duration_seconds": 187,
        "status": "completed",
        "recording_url": "https://rec.example.com/1.mp3",
        "channel": "TELEPHONE",
    },
    "transcript": [{"speaker": "Agent", "text": "Hello <there>"}, {"speaker": "User", "text": "Hi & bye"}],
    "transcript_text": "Agent: Hello <there>\nUser: Hi & bye",
    "outcome": {
        "budget": "80000",
        "interest": "High",
        "callback": "yes",
        "date": "2026-04-01",
        "blank": "",
        "nothing": None,
        "nullish": "null",
        "objections": '["price", "timing"]',
        "bad_number": "lots",
        "phone": "0551234567",
        "expectedSalary": "9000",
    },
    "tools": [
        {
            "name": "check_availability",
            "input": {"city": "Riyadh"},
            "output": {"available": 14},
            "duration_ms": 412,
            "at": "2026-03-02T09:13:10.112Z",
        }
    ],
}


def mapping(tmp_path: Path, body: str, crm: str = "hubspot") -> Mapping:
    path = tmp_path / f"{crm}.yaml"
    path.write_text(f"version: 1\ncrm: {crm}\n" + textwrap.dedent(body), encoding="utf-8")
    return load_mapping(path)


def one(
    tmp_path: Path,
    entry: str,
    current: dict[str, Any] | None = None,
    crm: str = "hubspot",
    context: dict[str, Any] | None = None,
) -> Any:
    m = mapping(tmp_path, "fields:\n" + textwrap.indent(textwrap.dedent(entry), "  "), crm)
    plan = m.plan(context or CONTEXT, None, current or {})
    (field,) = plan.fields
    return field


@pytest.mark.parametrize(
    "source",
    [
        "outcome.missing",
        "outcome.blank",
        "outcome.nothing",
        "outcome.nullish",
        "outcome.budget.deeper",
        "tools.5.output",
    ],
)
def test_an_empty_source_leaves_the_field_alone(tmp_path: Path, source: str) -> None:
    field = one(tmp_path, f"- {{from: {source}, to: x}}", {"x": "kept"})
    assert (field.action, field.reason, field.problem, field.old, field.new) == (
        "skip",
        "source is empty",
        False,
        "kept",
        None,
    )


def test_a_value_that_does_not_coerce_skips_that_field_only(tmp_path: Path) -> None:
    m = mapping(
        tmp_path,
        """\
        fields:
          - {from: outcome.bad_number, to: budget, type: number}
          - {from: outcome.budget, to: budget2, type: number}
        """,
    )
    plan = m.plan(CONTEXT, "contact", {})
    bad, good = plan.fields
    assert (bad.action, bad.reason, bad.problem) == ("skip", '"lots" is not a number', True)
    assert (good.action, good.new, good.value) == ("write", "80000", 80000)
    assert plan.updates == {"budget2": 80000}  # typed: the connector writes its wire form
    assert plan.wire_updates == {"budget2": "80000"}
    assert plan.skipped == {"budget": '"lots" is not a number'}


def test_value_maps(tmp_path: Path) -> None:
    entry = "- {from: outcome.interest, to: lvl, type: enum, values: {high: OPEN_DEAL, low: ~}}"
    assert one(tmp_path, entry).new == "OPEN_DEAL"  # keys match case-insensitively
    ctx = copy.deepcopy(CONTEXT)
    ctx["outcome"]["interest"] = "low"
    field = one(tmp_path, entry, context=ctx)
    assert (field.action, field.reason, field.problem) == ("skip", "the value map leaves it alone", False)
    ctx["outcome"]["interest"] = "maybe"
    field = one(tmp_path, entry, context=ctx)
    assert (field.action, field.reason, field.problem) == ("skip", '"maybe" is not in the value map (high, low)', True)


def test_every_key_of_the_call_is_a_path(tmp_path: Path) -> None:
    # SPEC §5: call.source (webhook, reconcile, backfill) and call.provider are the mapping's too
    ctx = copy.deepcopy(CONTEXT)
    ctx["call"].update(source="reconcile", provider="hamsa")
    assert one(tmp_path, "- {from: call.source, to: came_by}", context=ctx).new == "reconcile"
    assert one(tmp_path, "- {from: call.provider, to: platform}", context=ctx).new == "hamsa"


def test_a_value_map_with_another_type_is_coerced_after_mapping(tmp_path: Path) -> None:
    field = one(tmp_path, "- {from: outcome.interest, to: score, type: integer, values: {high: '3', low: 1}}")
    assert field.new == "3"


def test_multi_select_enum_maps_each_item(tmp_path: Path) -> None:
    field = one(
        tmp_path,
        "- {from: outcome.objections, to: o, type: enum, values: {price: Price, timing: Time}}",
        crm="salesforce",
    )
    assert field.new == "Price;Time"
    field = one(
        tmp_path,
        "- {from: outcome.objections, to: o, type: enum, values: {price: Price, timing: Time}}",
        {"o": "Time;Price"},
        crm="salesforce",
    )
    assert (field.action, field.reason) == ("skip", "unchanged")


def test_if_empty(tmp_path: Path) -> None:
    entry = "- {from: outcome.budget, to: budget, type: number, write: if_empty}"
    assert one(tmp_path, entry, {"budget": ""}).action == "write"
    assert one(tmp_path, entry, {"budget": None}).action == "write"
    field = one(tmp_path, entry, {"budget": "5"})
    assert (field.action, field.reason, field.problem, field.old, field.new) == (
        "skip",
        "if_empty: the field has a value",
        False,
        "5",
        "80000",
    )


def test_append(tmp_path: Path) -> None:
    entry = "- {from: outcome.objections, to: notes, write: append}"
    assert one(tmp_path, entry).new == "price, timing"
    field = one(tmp_path, entry, {"notes": "earlier call: budget"})
    assert (field.action, field.new) == ("write", "earlier call: budget\nprice, timing")
    field = one(tmp_path, entry, {"notes": "earlier call: budget\nprice, timing\n"})
    assert (field.action, field.reason, field.problem) == ("skip", "unchanged: the line is already there", False)


def test_when(tmp_path: Path) -> None:
    yes = one(tmp_path, "- {from: outcome.budget, to: b, when: \"{{ call.status == 'completed' }}\"}")
    assert yes.action == "write"
    for condition in ["{{ call.status == 'busy' }}", "{{ outcome.nothing }}", "{{ outcome.missing }}", "no", "0"]:
        field = one(tmp_path, f'- {{from: outcome.budget, to: b, when: "{condition}"}}')
        assert (field.action, field.reason, field.problem) == ("skip", "when is false", False), condition


@pytest.mark.parametrize(
    ("entry", "old"),
    [
        ("{from: outcome.budget, to: f, type: number}", "80000.0"),
        ("{from: outcome.budget, to: f, type: number}", 80000),
        ("{from: outcome.callback, to: f, type: boolean}", "true"),
        ("{from: outcome.date, to: f, type: date}", "2026-04-01"),
        ("{from: outcome.date, to: f, type: date}", "1775001600000"),
        ("{value: '{{ call.ended_at }}', to: f, type: datetime}", "2026-03-02T09:14:52.318Z"),
        ("{from: call.customer_number, to: f, type: phone}", "+966 50 123 4567"),
        ("{from: outcome.interest, to: f}", "High"),
    ],
)
def test_a_value_equal_to_the_current_one_is_not_written(tmp_path: Path, entry: str, old: Any) -> None:
    field = one(tmp_path, f"- {entry}", {"f": old})
    assert (field.action, field.reason, field.problem) == ("skip", "unchanged", False)


def test_salesforce_object_filter_and_order(tmp_path: Path) -> None:
    m = mapping(
        tmp_path,
        """\
        match: {objects: [Contact, Lead]}
        fields:
          - {from: outcome.budget, to: Budget__c, type: number}
          - {from: outcome.interest, to: Renewal__c, object: Contact}
          - {from: outcome.interest, to: Status, object: Lead}
          - {from: outcome.expectedSalary, to: Budget__c, type: number, write: if_empty}
        """,
        crm="salesforce",
    )
    contact = m.plan(CONTEXT, "Contact", {})
    assert [f.to for f in contact.fields] == ["Budget__c", "Renewal__c", "Budget__c"]
    assert contact.fields[2].reason == "if_empty: the field has a value"  # sees the earlier entry's write
    assert contact.updates == {"Budget__c": 80000, "Renewal__c": "High"}
    assert [f.to for f in m.plan(CONTEXT, "Lead", {}).fields] == ["Budget__c", "Status", "Budget__c"]
    assert m.read_fields("Contact") == ["Budget__c", "Renewal__c"]
    assert m.read_fields("Lead") == ["Budget__c", "Status"]


def test_a_failing_template_is_a_problem_for_that_field(tmp_path: Path) -> None:
    field = one(tmp_path, "- {value: '{{ 1 / 0 }}', to: f}")
    assert (field.action, field.reason, field.problem) == ("skip", "template failed: ZeroDivisionError", True)


def test_activity(tmp_path: Path) -> None:
    m = mapping(
        tmp_path,
        """\
        activity:
          title: "Call {{ call.id }} with {{ call.agent_name }}"
          disposition:
            from: outcome.interest
            values: {high: f240bbac-87c9-4f6e-bf70-924b57d47db7}
          properties:
            hubspot_owner_id: "1002"
            hs_call_source: "{{ call.channel }}"
            empty_one: "{{ outcome.nothing }}"
        """,
    )
    activity = m.plan(CONTEXT, "contact", {}).activity
    assert activity.title == "Call call-1 with Noura"
    assert activity.disposition == "f240bbac-87c9-4f6e-bf70-924b57d47db7"
    assert activity.owner_id == "1002"  # activity.properties may set another owner
    assert activity.properties == {"hs_call_source": "TELEPHONE"}
    assert (activity.call_id, activity.timestamp, activity.duration_seconds) == (
        "call-1",
        "2026-03-02T09:14:52.318Z",
        187,
    )
    assert (activity.from_number, activity.to_number) == ("+966501234567", "+966112345678")
    ctx = copy.deepcopy(CONTEXT)
    ctx["call"]["direction"] = "outbound"
    ctx["outcome"]["interest"] = "lukewarm"
    plan = m.plan(ctx, "contact", {})
    assert (plan.activity.from_number, plan.activity.to_number) == ("+966112345678", "+966501234567")
    assert plan.activity.disposition is None
    assert plan.problems == ['activity.disposition: "lukewarm" is not in the value map (high)']


def test_activity_defaults(tmp_path: Path) -> None:
    activity = mapping(tmp_path, "").plan(CONTEXT, None, {}).activity
    assert activity.title == "AI call with Noura"
    assert activity.disposition is None and activity.owner_id is None
    assert activity.body == default_body(CONTEXT, "html")


def test_lookup_number_create_properties_and_to_dict(tmp_path: Path) -> None:
    m = mapping(
        tmp_path,
        """\
        match:
          phone: [outcome.nothing, outcome.phone, call.customer_number]
          on_missing: create
          create:
            object: contact
            properties:
              lastname: "{{ outcome.last_name | default('Unknown caller', true) }}"
              firstname: "{{ outcome.first_name }}"
              broken: "{{ 1 / 0 }}"
        fields:
          - {from: outcome.budget, to: budget, type: number}
        """,
    )
    assert m.lookup_number(CONTEXT, "SA") == "+966551234567"
    assert m.lookup_number({"call": {}, "outcome": {}}, "SA") is None
    assert m.create_properties(CONTEXT) == {"lastname": "Unknown caller"}
    data = m.plan(CONTEXT, "contact", {"budget": "1"}).to_dict()
    assert data["updates"] == {"budget": "80000"}
    assert data["values"] == {"budget": 80000}
    assert data["fields"][0] == {
        "to": "budget",
        "old": "1",
        "new": "80000",
        "action": "write",
        "reason": "",
        "problem": False,
        "source": "outcome.budget",
        "object": None,
        "type": "number",
        "value": 80000,
    }
    assert data["activity"]["call_id"] == "call-1"


# -- the default activity body ---------------------------------------------------------------


def test_default_body_salesforce_is_plain_text() -> None:
    body = default_body(CONTEXT, "text")
    assert "- Budget: 80000" in body
    assert "- Expected salary: 9000" in body
    assert "- Objections: price, timing" in body  # JSON inside a string, for people
    assert "Blank" not in body and "Nothing" not in body  # empty outcome values are left out
    assert "Recording: https://rec.example.com/1.mp3" in body
    assert "Duration: 3:07" in body
    assert '- check_availability: {"available": 14}' in body
    assert body.endswith("Transcript\nAgent: Hello <there>\nUser: Hi & bye")
    assert "<" not in body.replace("<there>", "")


def test_default_body_hubspot_is_html_and_escaped() -> None:
    body = default_body(CONTEXT, "html")
    assert "<h3>Outcome</h3>" in body
    assert "<li><b>Budget:</b> 80000</li>" in body
    assert '<a href="https://rec.example.com/1.mp3">' in body
    assert "<p><b>Agent:</b> Hello &lt;there&gt;</p>" in body
    assert "<p><b>User:</b> Hi &amp; bye</p>" in body


def test_default_body_without_anything() -> None:
    assert default_body({"call": {}}, "text") == "No outcome or transcript was received for this call."


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_long_transcript_is_cut_at_a_line_with_a_marker_below_the_limit(tmp_path: Path, crm: str) -> None:
    ctx = copy.deepcopy(CONTEXT)
    ctx["transcript"] = [
        {"speaker": "Agent" if i % 2 else "User", "text": f"turn {i} " + "x" * 200} for i in range(1000)
    ]
    body = mapping(tmp_path, "", crm).plan(ctx, None, {}).activity.body
    limit = profile(crm).body_limit
    assert limit - 400 < len(body) <= limit
    *kept, marker = body.split("\n")
    assert "more lines cut to fit the CRM limit]" in marker
    last = kept[-1]
    assert last.endswith("x" * 200 + ("</p>" if crm == "hubspot" else ""))  # a whole line, not half of one
    shown = sum(1 for line in kept if "turn " in line)
    assert f"[… {1000 - shown} more lines cut" in marker


def test_a_templated_body_is_cut_too(tmp_path: Path) -> None:
    m = mapping(tmp_path, 'activity:\n  body: "{% for i in range(5000) %}line {{ i }}\\n{% endfor %}"\n', "salesforce")
    body = m.plan(CONTEXT, None, {}).activity.body
    assert len(body) <= 32_000 and body.splitlines()[-1].startswith("[… ")


def test_truncate_one_huge_line() -> None:
    cut = truncate("<p>" + "y" * 100 + "</p>", 60, html=True)
    assert len(cut) <= 60
    assert truncate("short", 60, html=False) == "short"


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("interest_level", "Interest level"),
        ("expectedSalary", "Expected salary"),
        ("NPS", "NPS"),
        ("follow-up", "Follow up"),
    ],
)
def test_labels(key: str, text: str) -> None:
    assert label(key) == text
