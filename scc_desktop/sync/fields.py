"""Neutral field names per kind, and the normalization that makes hashes ignore server rewrites.

Mappers (Graph JSON, Google JSON, Salesforce records) translate to and from these names; the engine
only ever compares normalized values, so a server that re-cases an email, pads a phone number or
re-expresses a time in another zone does not produce a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Literal, cast

Kind = Literal["contact", "event", "task", "task_calendar"]
KINDS: tuple[Kind, ...] = ("contact", "event", "task")
"""The two-way kinds. "task_calendar" is Salesforce Tasks shown as read-only calendar items
(`show_sf_tasks_in_calendar`): one-way, its own links and cursors, run only when wanted."""

FieldValue = str | bool | int | tuple[str, ...] | None
"""A normalized value: text, flag, number, a sorted tuple (attendees), or None for empty."""

Normalizer = Callable[[object], FieldValue]


def _text(value: object) -> FieldValue:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _multiline(value: object) -> FieldValue:
    if value is None:
        return None
    lines = str(value).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    text = "\n".join(line.rstrip() for line in lines).strip()
    return text or None


def _email(value: object) -> FieldValue:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def _enum(value: object) -> FieldValue:
    """Status/priority words: 'In Progress', 'in_progress' and 'in-progress' are one value."""
    if value is None:
        return None
    text = "_".join(str(value).strip().lower().replace("-", " ").split())
    return text or None


def _bool(value: object) -> FieldValue:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "on"}
    return bool(value)


def _datetime(value: object) -> FieldValue:
    """UTC ISO text to the second; a bare date stays a date (all-day items)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        value = datetime.fromisoformat(text)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not a date or datetime: {value!r}")


def _date(value: object) -> FieldValue:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value).strip()[:10]).isoformat()


def _emails(value: object) -> FieldValue:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else cast(Iterable[object], value)
    return tuple(sorted({e for e in (_email(v) for v in items) if isinstance(e, str)}))


_SCHEMA: dict[Kind, dict[str, Normalizer]] = {
    "contact": {
        "first_name": _text,
        "last_name": _text,
        "email": _email,
        "email2": _email,
        "phone": _text,
        "mobile": _text,
        "title": _text,
        "company": _text,
        "street": _multiline,
        "city": _text,
        "state": _text,
        "postal_code": _text,
        "country": _text,
        "notes": _multiline,
    },
    "event": {
        "subject": _text,
        "start": _datetime,
        "end": _datetime,
        "is_all_day": _bool,
        "location": _text,
        "description": _multiline,
        "show_as": _enum,
        "is_private": _bool,
        "attendees": _emails,
        # attendees' answers, "address:accepted|declined|tentative" (no answer, no entry)
        "responses": _emails,
        "ical_uid": _text,
    },
    "task": {
        "subject": _text,
        "due_date": _date,
        "status": _enum,
        "priority": _enum,
        "description": _multiline,
    },
    "task_calendar": {
        "subject": _text,
        "due_date": _date,
        "description": _multiline,
    },
}

FIELDS: Mapping[Kind, tuple[str, ...]] = {kind: tuple(spec) for kind, spec in _SCHEMA.items()}

MATCH_KEYS: Mapping[Kind, tuple[tuple[str, ...], ...]] = {
    "contact": (("email",), ("first_name", "last_name", "company")),
    "event": (("ical_uid",), ("subject", "start")),
    "task": (("subject", "due_date"),),
    "task_calendar": (("subject", "due_date"),),
}
"""First-run matching keys, strongest first; a key with an empty part never matches."""


def normalize(kind: Kind, fields: Mapping[str, object]) -> dict[str, FieldValue]:
    """Normalize the known fields of `kind`; unknown names are dropped, missing ones stay out."""
    spec = _SCHEMA[kind]
    return {name: spec[name](value) for name, value in fields.items() if name in spec}


def project(
    kind: Kind, fields: Mapping[str, FieldValue], names: Iterable[str]
) -> dict[str, FieldValue]:
    """Exactly `names`, each normalized, missing ones as their empty value."""
    spec = _SCHEMA[kind]
    return {name: spec[name](fields.get(name)) for name in names}


def fields_hash(fields: Mapping[str, FieldValue], names: Iterable[str]) -> str:
    """A stable digest of `names` in `fields`; the change detector of the link table."""
    canonical = json.dumps(
        [[name, _jsonable(fields.get(name))] for name in sorted(names)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _jsonable(value: FieldValue) -> object:
    return list(value) if isinstance(value, tuple) else value


def to_json(fields: Mapping[str, FieldValue]) -> str:
    return json.dumps({k: _jsonable(v) for k, v in sorted(fields.items())}, ensure_ascii=False)


def from_json(kind: Kind, text: str) -> dict[str, FieldValue]:
    raw = json.loads(text) if text else {}
    if not isinstance(raw, dict):
        raise ValueError("stored field values are not an object")
    return normalize(kind, cast(dict[str, object], raw))


def match_keys(kind: Kind, fields: Mapping[str, FieldValue]) -> list[tuple[int, str]]:
    """The (tier, key) pairs an item can be matched on, strongest tier first."""
    keys: list[tuple[int, str]] = []
    for tier, names in enumerate(MATCH_KEYS[kind]):
        parts = [fields.get(name) for name in names]
        if all(part not in (None, "", ()) for part in parts):
            keys.append((tier, json.dumps([_jsonable(p) for p in parts]).lower()))
    return keys
