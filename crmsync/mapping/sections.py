"""The sections of a mapping file (SPEC §6), checked and built into a ``Mapping``.

``MappingChecker(path, located).mapping()`` walks ``version``, ``crm``, the routing lists,
``redact``, ``match``, ``activity``, ``link``, ``follow_up`` and ``fields``, and returns
the ``Mapping`` with every usable part; the problems are in ``.problems`` (the checks are
``crmsync.mapping.checks``'). ``crmsync.mapping.loader`` reads the file and raises them.
The ``*_KEYS`` tuples are each section's valid keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsync.canonical import CALL_STATUSES  # the statuses a mapping may ask to log (``statuses:``)
from crmsync.crm.profiles import names, profile
from crmsync.mapping.checks import Checker
from crmsync.mapping.coerce import TYPES
from crmsync.mapping.model import (
    EVENTS,
    LINK_DEAL,
    ON_MISSING,
    ON_MULTIPLE,
    PRIORITIES,
    PROVIDERS,
    WRITE_MODES,
    ActivitySpec,
    FieldRule,
    FollowUpSpec,
    Link,
    Mapping,
    Match,
)
from crmsync.mapping.redact import TRANSCRIPT_MODES, Redactor, parse_rules
from crmsync.mapping.source import KeyPath, Located
from crmsync.mapping.templates import Template

TOP_KEYS = (
    "version",
    "crm",
    "events",
    "statuses",
    "providers",
    "agents",
    "projects",
    "link",
    "follow_up",
    "match",
    "activity",
    "fields",
    "redact",
)
LINK_KEYS = ("company", "deal")
FOLLOW_UP_KEYS = ("when", "due", "title", "body", "priority", "owner")
MATCH_KEYS = ("phone", "objects", "on_multiple", "on_missing", "create")
CREATE_KEYS = ("object", "properties")
ACTIVITY_KEYS = ("title", "body", "disposition", "properties", "transcript")
DISPOSITION_KEYS = ("from", "values")
FIELD_KEYS = ("from", "value", "to", "type", "values", "write", "when", "object")


class MappingChecker(Checker):
    """Walks one parsed file, collecting problems while building the ``Mapping``."""

    def __init__(self, path: Path, located: Located) -> None:
        super().__init__(path, located)
        self.crm = names()[0]  # until the file names its CRM

    def mapping(self) -> Mapping:
        data = self.located.data
        result = Mapping(path=self.file, crm=self.crm, lines=self.located.lines)
        if not self.keys((), data, TOP_KEYS, required=("version", "crm")):
            return result
        if "version" in data and (data["version"] != 1 or isinstance(data["version"], bool)):
            self.err(("version",), f"{data['version']!r} is not supported: write version: 1")
        crm = self.choice(("crm",), data.get("crm"), names()) if "crm" in data else None
        if crm:
            result.crm = self.crm = crm
            stem = self.file.stem
            if stem in names() and stem != crm:
                self.err(
                    ("crm",),
                    f'"{crm}" does not match the file name {self.file.name}: write crm: {stem}, or rename the file',
                )
        if "events" in data:
            events = self.string_list(("events",), data["events"], "[call.ended]") or []
            result.events = [e for i, e in enumerate(events) if self.choice(("events", i), e, EVENTS)]
        if "statuses" in data:
            statuses = self.string_list(("statuses",), data["statuses"], "[completed, no_answer]") or []
            result.statuses = [s for i, s in enumerate(statuses) if self.choice(("statuses", i), s, CALL_STATUSES)]
        if "providers" in data:
            providers = self.string_list(("providers",), data["providers"], "[hamsa, retell]") or []
            result.providers = [p for i, p in enumerate(providers) if self.choice(("providers", i), p, PROVIDERS)]
        for key, example in (("agents", "[agent-growth-2]"), ("projects", "[p-77]")):
            if key in data:
                ids = self.string_list((key,), data[key], example) or []
                setattr(result, key, [str(i).strip() for n, i in enumerate(ids) if self.routing_id((key, n), i)])
        if "redact" in data:
            result.redact = self.redact(data["redact"])
        result.match = self.match(data.get("match", {}))
        result.activity = self.activity(data.get("activity", {}))
        result.link = self.link(data.get("link"))
        if data.get("follow_up") is not None:
            result.follow_up = self.follow_up(data["follow_up"])
        fields = data.get("fields", [])
        if not isinstance(fields, list):
            self.err(("fields",), "must be a list of entries, each starting with - to: ...")
            fields = []
        objects = set(result.match.objects) | {result.match.create_object}
        if result.link.deal != "none":
            objects.add(profile(self.crm).deal_object)
        result.fields = [r for i, f in enumerate(fields) if (r := self.field(i, f, objects)) is not None]
        return result

    def match(self, data: Any) -> Match:
        crm = profile(self.crm)
        match = Match(objects=list(crm.match_objects[:1]))
        path: KeyPath = ("match",)
        if data is None or not self.keys(path, data, MATCH_KEYS):
            return match
        if "phone" in data:
            paths = self.string_list((*path, "phone"), data["phone"], "[call.customer_number, outcome.phone]")
            match.phone = [p for i, p in enumerate(paths or []) if self.source_path((*path, "phone", i), p)]
        valid = crm.match_objects
        if "objects" in data:
            objects = self.string_list((*path, "objects"), data["objects"], f"[{', '.join(valid)}]") or []
            match.objects = [o for i, o in enumerate(objects) if self.choice((*path, "objects", i), o, valid)]
        if "on_multiple" in data:
            chosen = self.choice((*path, "on_multiple"), data["on_multiple"], ON_MULTIPLE)
            match.on_multiple = chosen or "most_recent"
        if "on_missing" in data:
            match.on_missing = self.choice((*path, "on_missing"), data["on_missing"], ON_MISSING) or "skip"
        create = data.get("create")
        if match.on_missing == "create" and create is None:
            self.err(
                path,
                f'on_missing is create, so "create" is required (create: {{object: {crm.create_objects[0]}, '
                "properties: {...}})",
            )
        if create is not None and self.keys((*path, "create"), create, CREATE_KEYS, required=("object",)):
            if "object" in create:
                match.create_object = self.choice((*path, "create", "object"), create["object"], crm.create_objects)
            properties = create.get("properties", {})
            match.create_properties = self.properties((*path, "create", "properties"), properties)
        return match

    def properties(self, path: KeyPath, data: Any) -> dict[str, Template]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.err(path, 'must be a mapping of CRM field -> template, such as {lastname: "{{ outcome.name }}"}')
            return {}
        out = {}
        for name, value in data.items():
            if (template := self.template((*path, self.located.key_text(path, name)), value)) is not None:
                out[str(name)] = template
        return out

    def activity(self, data: Any) -> ActivitySpec:
        spec = ActivitySpec()
        path: KeyPath = ("activity",)
        if data is None or not self.keys(path, data, ACTIVITY_KEYS):
            return spec
        if "title" in data:
            spec.title = self.template((*path, "title"), data["title"])
        if data.get("body") is not None:
            spec.body = self.template((*path, "body"), data["body"])
        disposition = data.get("disposition")
        where = (*path, "disposition")
        if disposition is not None and self.keys(where, disposition, DISPOSITION_KEYS, required=("from",)):
            if "from" in disposition:
                spec.disposition_from = self.source_path((*where, "from"), disposition["from"])
            if "values" in disposition:
                spec.disposition_values = self.value_map((*where, "values"), disposition["values"])
        spec.properties = self.properties((*path, "properties"), data.get("properties", {}))
        if "transcript" in data:
            spec.transcript = self.choice((*path, "transcript"), data["transcript"], TRANSCRIPT_MODES) or "full"
        return spec

    def redact(self, data: Any) -> Redactor:
        example = '[card_number, iban, email, {pattern: "EMP-[0-9]{6}", replacement: "[employee id]"}]'
        items = self.string_list(("redact",), data, example) or []
        redactor, problems = parse_rules(items)
        for where, message in problems:
            self.err(("redact", *where), message)
        return redactor

    def link(self, data: Any) -> Link:
        link = Link()
        path: KeyPath = ("link",)
        if data is None or not self.keys(path, data, LINK_KEYS):
            return link
        if "company" in data:
            if isinstance(data["company"], bool):
                link.company = data["company"]
            else:
                self.err((*path, "company"), "must be true or false")
        if "deal" in data:
            link.deal = self.choice((*path, "deal"), data["deal"], LINK_DEAL) or "none"
        return link

    def follow_up(self, data: Any) -> FollowUpSpec:
        spec = FollowUpSpec()
        path: KeyPath = ("follow_up",)
        if not self.keys(path, data, FOLLOW_UP_KEYS, required=("title",)):
            return spec
        for name in ("when", "title", "body", "owner"):
            if data.get(name) is not None:
                setattr(spec, name, self.template((*path, name), data[name]))
        due = data.get("due")
        if due is not None:
            if isinstance(due, str) and "{" in due:
                spec.due_template = self.template((*path, "due"), due)
            else:
                spec.due_path = self.source_path((*path, "due"), due)
        if "priority" in data:
            spec.priority = self.choice((*path, "priority"), data["priority"], PRIORITIES) or "normal"
        return spec

    def field(self, index: int, data: Any, objects: set[str | None]) -> FieldRule | None:
        path: KeyPath = ("fields", index)
        if not self.keys(path, data, FIELD_KEYS, required=("to",)):
            return None
        rule = FieldRule(to="", line=self.located.line(path))
        ok = True
        if not isinstance(data.get("to", ""), str) or ("to" in data and not data["to"].strip()):
            self.err((*path, "to"), "must be the CRM field name to write, such as expected_salary")
            ok = False
        rule.to = str(data.get("to", "")).strip()
        if "type" in data:
            rule.type = self.choice((*path, "type"), data["type"], TYPES) or "string"
        if ("from" in data) == ("value" in data):
            self.err(path, 'needs exactly one of "from" (a path such as outcome.budget) or "value" (a template)')
            ok = False
        elif "from" in data:
            rule.source = self.source_path((*path, "from"), data["from"])
            ok = ok and rule.source is not None
        else:
            rule.value = self.template((*path, "value"), data["value"])
            ok = ok and rule.value is not None
        if "values" in data:
            rule.values = self.value_map((*path, "values"), data["values"])
        elif rule.type == "enum":
            self.err(path, 'type enum needs "values": a map of source value -> CRM picklist value')
        if "write" in data:
            rule.write = self.choice((*path, "write"), data["write"], WRITE_MODES) or "always"
            if rule.write == "append" and rule.type != "string":
                self.err((*path, "write"), f"append adds a line of text: it needs type string, not {rule.type}")
        if "when" in data:
            rule.when = self.template((*path, "when"), data["when"])
        if "object" in data:
            crm = profile(self.crm)
            rule.object = self.choice(
                (*path, "object"),
                data["object"],
                tuple(dict.fromkeys((*crm.match_objects, *crm.create_objects, crm.deal_object))),
            )
            if rule.object == crm.deal_object and rule.object not in objects:
                self.err((*path, "object"), f'"{rule.object}" is the linked deal: it needs link.deal: most_recent_open')
            elif rule.object and rule.object not in objects:
                self.err(
                    (*path, "object"),
                    f'"{rule.object}" is never matched or created by this mapping '
                    "(see match.objects and match.create.object)",
                )
        return rule if ok else None
