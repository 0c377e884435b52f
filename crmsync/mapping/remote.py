"""What only the live CRM can tell: do the mapping's fields and picklist values exist?

``remote_problems(mapping, describe)`` asks ``describe(object)`` (a connector's, which only
reads metadata) for every object the mapping matches or creates, and for the activity
object the CRM's profile names when the mapping sets ``activity.properties``, and reports each target
field that does not exist, cannot be written, has a type the mapping's ``type`` cannot fill,
or a picklist that lacks a value-map target. Messages have the loader's shape
(``path:line: key.path: message``). ``choose_person`` applies ``match.on_multiple``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from crmsync.crm.base import FieldInfo, Person
from crmsync.errors import CrmsyncError
from crmsync.mapping.context import suggest
from crmsync.mapping.model import Mapping
from crmsync.mapping.source import KeyPath, path_text

Describe = Callable[[str], dict[str, FieldInfo]]
TEXT = {"string", "textarea", "text", "phone", "phone_number", "email", "url", "combobox", "encryptedstring"}
NUMBERS = {"number", "double", "currency", "percent", "int", "long"}
PICKLISTS = {"enumeration", "picklist", "multipicklist", "combobox"}
ACCEPTS: dict[str, set[str]] = {  # mapping type -> CRM field types it can fill (text fields take anything)
    "string": TEXT | PICKLISTS,
    "number": TEXT | NUMBERS,
    "integer": TEXT | NUMBERS,
    "boolean": TEXT | {"bool", "boolean", "booleancheckbox", "enumeration"},
    "date": TEXT | {"date", "datetime"},
    "datetime": TEXT | {"datetime"},
    "enum": TEXT | PICKLISTS,
    "phone": TEXT,
}


def remote_problems(mapping: Mapping, describe: Describe) -> list[str]:
    """Every problem the CRM's metadata reveals; an object it cannot describe is one problem."""
    found: list[tuple[int, str]] = []

    def err(path: KeyPath, message: str) -> None:
        line = mapping.lines.get(path) or mapping.lines.get(path[:-1]) or mapping.lines.get(path[:2]) or 1
        found.append((line, f"{mapping.path}:{line}: {path_text(path)}: {message}"))

    deal = mapping.profile.deal_object if mapping.deal_fields() else None  # the linked deal's fields
    objects = list(dict.fromkeys([*mapping.match.objects, mapping.match.create_object, deal]))
    described: dict[str, dict[str, FieldInfo]] = {}
    for obj in [o for o in objects if o]:
        try:
            described[obj] = describe(obj)
        except CrmsyncError as exc:
            err(("match", "objects"), f"{mapping.crm} could not describe {obj}: {exc}")
    for index, rule in enumerate(mapping.fields):
        for obj, fields in described.items():
            if not rule.applies_to(obj) or (obj == deal and rule.object != deal):
                continue
            path: KeyPath = ("fields", index)
            info = _field(fields, rule.to, obj, (*path, "to"), err)
            if info is None:
                continue
            if rule.type not in ACCEPTS or info.type.lower() not in ACCEPTS[rule.type]:
                err((*path, "type"), f'{rule.type} cannot fill {rule.to} on {obj}, a field of type "{info.type}"')
            if rule.type == "enum" and info.options is not None and rule.values:
                for key, target in rule.values.items():
                    if target is not None and str(target) not in info.options:
                        err(
                            (*path, "values", _written_key(mapping, (*path, "values"), key)),
                            f'"{target}" is not an allowed value of {rule.to} on {obj}: '
                            f"{', '.join(info.options)}{suggest(target, info.options)}",
                        )
    create = mapping.match.create_object
    if create in described:
        for name in mapping.match.create_properties:
            _field(described[create], name, create, ("match", "create", "properties", name), err)
    if mapping.activity.properties:
        activity_object = mapping.profile.activity_object
        try:
            fields = describe(activity_object)
        except CrmsyncError:
            fields = {}  # a connector that cannot describe its activity object: nothing to check
        if fields:
            for name in mapping.activity.properties:
                _field(fields, name, activity_object, ("activity", "properties", name), err)
    return [text for _, text in sorted(found, key=lambda item: item[0])]


def _field(
    fields: dict[str, FieldInfo], name: str, obj: str, path: KeyPath, err: Callable[[KeyPath, str], None]
) -> FieldInfo | None:
    info = fields.get(name)
    if info is None:
        err(path, f'"{name}" does not exist on {obj}{suggest(name, fields)}')
        return None
    if not info.updateable:
        err(path, f'"{name}" on {obj} is read-only: choose a field that can be written')
        return None
    return info


def _written_key(mapping: Mapping, values_path: KeyPath, key: str) -> str:
    """The value-map key as written in the file (the engine keeps it lower-cased)."""
    for path in mapping.lines:
        if len(path) == len(values_path) + 1 and path[:-1] == values_path and str(path[-1]).lower() == key:
            return str(path[-1])
    return key


def choose_person(people: Sequence[Person], on_multiple: str) -> tuple[Person | None, str]:
    """The person a call is logged on, and a word on how it was chosen (``match.on_multiple``).

    ``people`` come in ``match.objects`` order. ``most_recent`` picks the latest
    ``modified_at`` (ties: the earlier object type); ``skip`` with several returns None,
    ``"ambiguous"``.
    """
    if not people:
        return None, "nobody matches"
    if len(people) == 1:
        return people[0], "one match"
    if on_multiple == "skip":
        return None, "ambiguous"
    if on_multiple == "first":
        return people[0], f"first of {len(people)} matches"
    best: Any = max(enumerate(people), key=lambda item: (item[1].modified_at or "", -item[0]))[1]
    return best, f"most recently modified of {len(people)} matches"
