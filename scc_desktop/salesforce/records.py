"""Plain typed records returned by the reader: Id, SystemModstamp and the selected fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def parse_sf_datetime(value: object) -> datetime | None:
    """Salesforce's `2025-10-08T01:02:03.000+0000` (or ...Z) -> an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _is_child_result(value: object) -> bool:
    """A parent-to-child subquery's nested query result: `{"totalSize", "done", "records"}`."""
    return isinstance(value, Mapping) and "records" in value and "totalSize" in value


def flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Drop `attributes`; parent relationships become dotted keys (`Account.Name`); a child
    subquery's result (`EventRelations`) becomes a tuple of its flattened child records (empty
    when Salesforce returns null for no children)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "attributes":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and "attributes" in value:
            out.update(flatten(value, name + "."))
        elif _is_child_result(value):
            out[name] = tuple(flatten(r) for r in value.get("records") or () if r)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class SfRecord:
    """One Salesforce record as the sync engine sees it."""

    sobject: str
    id: str
    system_modstamp: datetime | None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], sobject: str | None = None) -> SfRecord:
        attributes = raw.get("attributes") or {}
        kind = sobject or str(attributes.get("type", ""))
        fields = flatten(raw)
        return cls(
            sobject=kind,
            id=str(fields.get("Id") or ""),
            system_modstamp=parse_sf_datetime(fields.get("SystemModstamp")),
            fields=fields,
        )


@dataclass(frozen=True)
class DeletedRecord:
    id: str
    deleted_at: datetime | None
