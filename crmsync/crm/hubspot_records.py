"""HubSpot records by object and id: the requests that are no part of a call's sync.
``describe`` (an object's properties), the credentials check, and the rollback's read, write
and archive of one record (``crm/v3/objects/{type}/{id}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.crm.base import FieldInfo
from crmsync.crm.hubspot_calls import OBJECTS, wire
from crmsync.crm.hubspot_client import HubSpotClient
from crmsync.crm.hubspot_errors import CRM
from crmsync.errors import PermanentError


def _plural(object: str) -> str:
    """HubSpot's object type in a URL: ``contact`` -> ``contacts``, ``call`` -> ``calls``."""
    name = object.lower()
    return name if name.endswith("s") else name + "s"


class HubSpotRecords:
    """Describe, the credentials check and the rollback's requests on one record."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def describe(self, object: str) -> dict[str, FieldInfo]:
        kind = OBJECTS.get(object.lower())
        if kind is None:
            raise PermanentError(CRM, f"unknown HubSpot object {object!r}: use contact or call")
        result = self.client.send(self.client.properties.get_all_with_http_info, kind)
        fields: dict[str, FieldInfo] = {}
        for prop in result.results or []:
            meta = prop.modification_metadata
            read_only = bool(meta is not None and meta.read_only_value) or bool(prop.calculated)
            options = [o.value for o in prop.options or []] if prop.type in ("enumeration", "bool") else None
            fields[prop.name] = FieldInfo(
                name=prop.name,
                type=prop.type or "string",
                label=prop.label or "",
                options=options,
                updateable=not read_only,
            )
        return fields

    def check_credentials(self) -> None:
        self.client.send(self.client.properties.get_by_name_with_http_info, "contacts", "phone")

    def read_fields(self, object: str, record_id: str, fields: Sequence[str]) -> dict[str, Any] | None:
        """One GET of the record's ``fields`` (strings, as HubSpot stores them); None on 404."""
        try:
            found = self.client.send(
                self.client.objects.get_by_id_with_http_info, _plural(object), record_id, properties=list(fields)
            )
        except PermanentError as err:
            if err.status == 404:
                return None
            raise
        props = found.properties or {}
        return {name: props.get(name) for name in fields}

    def write_fields(self, object: str, record_id: str, values: Mapping[str, Any]) -> None:
        """One PATCH; None clears the property (HubSpot's empty string)."""
        self.client.send(
            self.client.objects.update_with_http_info,
            _plural(object),
            record_id,
            {"properties": {k: wire(v) for k, v in values.items()}},
        )

    def delete_activity(self, object: str, record_id: str) -> bool:
        """Archive the call (or task) engagement; False when HubSpot no longer has it."""
        try:
            self.client.send(self.client.objects.archive_with_http_info, _plural(object), record_id)
        except PermanentError as err:
            if err.status == 404:
                return False
            raise
        return True
