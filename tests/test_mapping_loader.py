"""Loading mapping files: every kind of error, with its exact message and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crmsync.errors import MappingError
from crmsync.mapping import check_dir, load_mapping

ROOT = Path(__file__).resolve().parent.parent
GOOD = """\
version: 1
crm: hubspot
match:
  phone: [call.customer_number]
  objects: [contact]
fields:
  - from: outcome.budget
    to: budget
    type: number
"""


def write(tmp_path: Path, text: str, name: str = "hubspot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    return caught.value.problems


@pytest.mark.parametrize("name", ["hubspot", "salesforce"])
def test_shipped_mappings_load(name: str) -> None:
    mapping = load_mapping(ROOT / "mappings" / f"{name}.yaml")
    assert mapping.crm == name
    assert mapping.events == ["call.ended"]
    assert mapping.match.on_missing == "create"
    assert len(mapping.fields) >= 10
    assert check_dir(ROOT / "mappings") == []


def test_defaults(tmp_path: Path) -> None:
    mapping = load_mapping(write(tmp_path, "version: 1\ncrm: salesforce\n", "salesforce.yaml"))
    assert mapping.events == ["call.ended"]
    assert mapping.match.phone == ["call.customer_number"]
    assert mapping.match.objects == ["Contact"]
    assert (mapping.match.on_multiple, mapping.match.on_missing) == ("most_recent", "skip")
    assert mapping.fields == []


LINE_CASES: list[tuple[str, str | list[str]]] = [
    # (the file's body after the good header, the exact problem)
    (
        "fields:\n  - from: outcome.budget\n    to: budget\n    type: nummber\n",
        '4: fields[0].type: "nummber" is not one of string, number, integer, boolean, date, datetime, enum, '
        'phone (did you mean "number"?)',
    ),
    (
        "fields:\n  - form: outcome.budget\n    to: budget\n",
        [
            '2: fields[0].form: unknown key "form" (did you mean "from"?); valid keys: from, value, to, type, values, '
            "write, when, object",
            '2: fields[0]: needs exactly one of "from" (a path such as outcome.budget) or "value" (a template)',
        ],
    ),
    (
        "match:\n  on_mising: create\n",
        '2: match.on_mising: unknown key "on_mising" (did you mean "on_missing"?); valid keys: phone, objects, '
        "on_multiple, on_missing, create",
    ),
    (
        "evnts: [call.ended]\n",
        '1: evnts: unknown key "evnts" (did you mean "events"?); valid keys: version, crm, events, statuses, '
        "providers, agents, projects, link, follow_up, match, activity, fields, redact",
    ),
    (
        "events: [call.ended, call.endd]\n",
        '1: events[1]: "call.endd" is not one of call.started, call.answered, transcription.update, tool.executed, '
        'call.ended (did you mean "call.ended"?)',
    ),
    (
        "match:\n  objects: [Contact]\n",
        '2: match.objects[0]: "Contact" is not one of contact (did you mean "contact"?)',
    ),
    ("match:\n  on_multiple: newest\n", '2: match.on_multiple: "newest" is not one of most_recent, first, skip'),
    (
        "match:\n  on_missing: create\n",
        '1: match: on_missing is create, so "create" is required (create: {object: contact, properties: {...}})',
    ),
    (
        "match:\n  phone: [outcom.phone]\n",
        '2: match.phone[0]: "outcom" is not one of call, transcript, transcript_text, outcome, tools '
        '(did you mean "outcome"?)',
    ),
    (
        "fields:\n  - from: call.customer_numbr\n    to: phone\n",
        '2: fields[0].from: "customer_numbr" is not a key of call: id, conversation_id, agent_id, agent_name, '
        "project_id, direction, customer_number, agent_number, started_at, answered_at, ended_at, duration_seconds, "
        'status, recording_url, channel, provider, event, source (did you mean "customer_number"?)',
    ),
    (
        "fields:\n  - from: outcome.__class__\n    to: x\n",
        '2: fields[0].from: "__class__": names starting with _ are not allowed',
    ),
    (
        "fields:\n  - to: x\n",
        '2: fields[0]: needs exactly one of "from" (a path such as outcome.budget) or "value" (a template)',
    ),
    (
        "fields:\n  - to: x\n    from: outcome.a\n    value: b\n",
        '2: fields[0]: needs exactly one of "from" (a path such as outcome.budget) or "value" (a template)',
    ),
    ("fields:\n  - from: outcome.a\n", '2: fields[0]: "to" is required'),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    type: enum\n",
        '2: fields[0]: type enum needs "values": a map of source value -> CRM picklist value',
    ),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    write: appendd\n",
        '4: fields[0].write: "appendd" is not one of always, if_empty, append (did you mean "append"?)',
    ),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    type: number\n    write: append\n",
        "5: fields[0].write: append adds a line of text: it needs type string, not number",
    ),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    object: Contact\n",
        '4: fields[0].object: "Contact" is not one of contact, deal (did you mean "contact"?)',
    ),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    type: enum\n    values:\n      yes: A\n",
        '6: fields[0].values.yes: YAML reads this key as true: quote it ("yes": ...) to mean the text',
    ),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    type: enum\n    values: [a, b]\n",
        "5: fields[0].values: must be a mapping of source value -> CRM value, such as {high: High, low: Low}",
    ),
    (
        "fields:\n  - from: outcome.a\n    to: x\n    to: y\n",
        "4: fields[0].to: duplicate key 'to': the one on line 5 would be ignored; keep one",
    ),
    ("fields:\n  from: outcome.a\n", "1: fields: must be a list of entries, each starting with - to: ..."),
    (
        'activity:\n  title: "{{ call.agnet_name }}"\n',
        '2: activity.title: "call.agnet_name" does not exist: call has id, conversation_id, agent_id, agent_name, '
        "project_id, direction, customer_number, agent_number, started_at, answered_at, ended_at, duration_seconds, "
        'status, recording_url, channel, provider, event, source (did you mean "agent_name"?)',
    ),
    (
        'activity:\n  body: "{{ outcom.summary }}"\n',
        '2: activity.body: unknown name "outcom": templates see call, transcript, transcript_text, outcome, tools '
        '(did you mean "outcome"?)',
    ),
    ('activity:\n  title: "{{ call.agent_name }"\n', "2: activity.title: template syntax error: unexpected '}'"),
    ("activity:\n  disposition: {values: {a: b}}\n", '2: activity.disposition: "from" is required'),
    (
        "activity:\n  propertes: {}\n",
        '2: activity.propertes: unknown key "propertes" (did you mean "properties"?); valid keys: title, body, '
        "disposition, properties, transcript",
    ),
]


def case_id(expected: str | list[str]) -> str:
    return (expected if isinstance(expected, str) else expected[0]).split(": ")[1]


@pytest.mark.parametrize(("body", "expected"), LINE_CASES, ids=[case_id(c[1]) for c in LINE_CASES])
def test_each_error_has_its_message_and_line(tmp_path: Path, body: str, expected: str | list[str]) -> None:
    """Each case is written after a two-line header; its line number counts from the body."""
    path = write(tmp_path, "version: 1\ncrm: hubspot\n" + body)
    wanted = []
    for item in [expected] if isinstance(expected, str) else expected:
        line, rest = item.split(": ", 1)
        wanted.append(f"{path}:{int(line) + 2}: {rest}")
    assert problems_of(path) == wanted


def test_every_error_in_a_file_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 2
        crm: hubspot
        fields:
          - from: outcome.budget
            to: budget
            type: nummber
          - form: outcome.x
            to: y
        """,
    )
    problems = problems_of(path)
    assert [p.split(": ")[0] for p in problems] == [f"{path}:1", f"{path}:6", f"{path}:7", f"{path}:7"]
    assert problems[0] == f"{path}:1: version: 2 is not supported: write version: 1"


def test_top_level_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    assert problems_of(path) == [
        f"{path}:1: (top level): must be a mapping with keys version, crm, events, statuses, providers, agents, "
        "projects, link, follow_up, match, activity, fields, redact"
    ]
    path = write(tmp_path, "version: 1\n")
    assert problems_of(path) == [f'{path}:1: (top level): "crm" is required']
    path = write(tmp_path, "version: 1\ncrm: salesforce\n")
    assert problems_of(path) == [
        f'{path}:2: crm: "salesforce" does not match the file name hubspot.yaml: write crm: hubspot, or rename the file'
    ]
    path = write(tmp_path, "version: 1\ncrm: pipedrive\n", "other.yaml")
    assert problems_of(path) == [f'{path}:2: crm: "pipedrive" is not one of hubspot, salesforce']


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ncrm: hubspot\nfields:\n  - to: x\n   from: [\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: YAML syntax error: ")


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\ncrm: !!python/object/apply:os.system ['true']\n")
    (problem,) = problems_of(path)
    assert problem == (
        f"{path}:2: YAML error: the tag tag:yaml.org,2002:python/object/apply:os.system is not "
        "allowed: mapping files are plain YAML"
    )


def test_salesforce_object_filter_must_be_matched_or_created(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        crm: salesforce
        match: {objects: [Contact]}
        fields:
          - {from: outcome.nps, to: NPS__c, type: number, object: Contact}
          - {from: outcome.x, to: X__c, object: Lead}
        """,
        "salesforce.yaml",
    )
    assert problems_of(path) == [
        f'{path}:6: fields[1].object: "Lead" is never matched or created by this mapping '
        "(see match.objects and match.create.object)"
    ]


UNSAFE_TEMPLATES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ call.__class__ }}",
    "{{ outcome.get.__globals__ }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ outcome['__class__'] }}",
    "{{ outcome | attr('__class__') }}",
    "{% set x = outcome.__dict__ %}{{ x }}",
    "{% for c in call.__class__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ _private }}",
]


@pytest.mark.parametrize("template", UNSAFE_TEMPLATES)
def test_templates_reaching_for_internals_are_refused_at_load(tmp_path: Path, template: str) -> None:
    path = write(tmp_path, f'version: 1\ncrm: hubspot\nactivity:\n  title: "{template}"\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f'{path}:4: activity.title: "_')
    assert "is not allowed: templates may not use names starting with _" in problem


@pytest.mark.parametrize("tag", ["{% include 'x' %}", "{% import 'x' as y %}", "{% extends 'x' %}"])
def test_templates_cannot_load_templates(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path, f'version: 1\ncrm: hubspot\nactivity:\n  body: "{tag}"\n')
    (problem,) = problems_of(path)
    assert "is not allowed: a mapping template cannot load others" in problem


def test_templates_in_every_place_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        crm: hubspot
        match:
          on_missing: create
          create:
            object: contact
            properties: {lastname: "{{ call.__class__ }}"}
        activity:
          properties: {x: "{{ call.__class__ }}"}
        fields:
          - {to: a, value: "{{ call.__class__ }}"}
          - {to: b, from: outcome.b, when: "{{ call.__class__ }}"}
        """,
    )
    problems = problems_of(path)
    assert [p.split(": ")[1] for p in problems] == [
        "match.create.properties.lastname",
        "activity.properties.x",
        "fields[0].value",
        "fields[1].when",
    ]


def test_safe_templates_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        version: 1
        crm: hubspot
        activity:
          title: "{{ call.agent_name | default('AI', true) | upper }} {{ outcome['budget'] }}"
          body: "{% for t in transcript %}{{ t.speaker }}: {{ t.text }}{% endfor %}{{ range(3) | list }}"
        """,
    )
    assert load_mapping(path).activity.title is not None


def test_check_dir(tmp_path: Path) -> None:
    assert check_dir(tmp_path) == [
        f"{tmp_path}: no mapping files (*.yaml) found; set MAPPINGS_DIR to the folder that has them"
    ]
    write(tmp_path, GOOD)
    assert check_dir(tmp_path) == []
    bad = write(tmp_path, "version: 1\ncrm: salesforce\nevents: [call.over]\n", "salesforce.yaml")
    assert check_dir(tmp_path) == [
        f'{bad}:3: events[0]: "call.over" is not one of call.started, call.answered, '
        'transcription.update, tool.executed, call.ended (did you mean "call.answered"?)'
    ]


def test_unreadable_file() -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping("/nonexistent/hubspot.yaml")
    assert caught.value.problems == ["/nonexistent/hubspot.yaml: cannot read the file: No such file or directory"]
