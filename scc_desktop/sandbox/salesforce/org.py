"""The org on writes: coercion, validation like a real org, derived fields, side effects.

Every write goes through `create`, `update`, `delete` or `upsert`, so the REST single-record
routes, Collections, composite and the seeds all get the same rules. Callers hold `store.lock`
and call `store.commit()` (or roll back to a savepoint) when their request is done.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from scc_desktop.sandbox.salesforce import ids, schema
from scc_desktop.sandbox.salesforce.errors import SfError, invalid_type, not_found
from scc_desktop.sandbox.salesforce.schema import FieldDef, ObjectDef
from scc_desktop.sandbox.salesforce.store import Record, Store
from scc_desktop.sandbox.salesforce.values import fmt_dt, parse_date, parse_dt

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EVENT_MINUTES = 14 * 24 * 60
MAX_CONTACT_WHOS = 50
MAX_INVITEES = 1000
MAX_INVITEES_RECURRING = 100


@dataclass
class Settings:
    """Org switches an admin (or a test) can change at runtime; persisted in the store."""

    daily_api_limit: int = 100_000
    token_lifetime_s: int = 7200
    enhanced_email: bool = True
    rotate_refresh_tokens: bool = True
    attachment_max_bytes: int = 25 * 1024 * 1024
    content_version_max_bytes: int = 37_748_736  # REST non-multipart: 50 MB of base64
    clock_offset_s: float = 0.0
    # chance that a successful write's response is lost (connection dropped after commit):
    # the fault that tests whether a client's retry of a create makes a duplicate
    lost_response_rate: float = 0.0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)


class Org:
    """One org: its records, settings and clock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._settings: Settings | None = None

    def reload(self) -> None:
        """Forget cached settings and the clock's high-water mark (after a reset)."""
        self._settings = None
        self._last_stamp = datetime.min.replace(tzinfo=UTC)

    # -- settings and clock ------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        if self._settings is None:
            saved = self.store.kv_get("settings", {})
            self._settings = Settings(**{k: v for k, v in saved.items() if k in Settings.names()})
        return self._settings

    def update_settings(self, changes: Mapping[str, Any]) -> Settings:
        unknown = set(changes) - set(Settings.names())
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        current = self.settings
        types = {k: type(getattr(current, k)) for k in Settings.names()}
        merged = {k: getattr(current, k) for k in Settings.names()}
        for key, value in changes.items():
            if types[key] is bool and not isinstance(value, bool):
                raise ValueError(f"{key} must be true or false")
            merged[key] = types[key](value)
        self.store.kv_set("settings", merged)
        if merged["clock_offset_s"] != current.clock_offset_s:
            self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._settings = Settings(**merged)
        return self._settings

    def now(self) -> datetime:
        offset = self.settings.clock_offset_s
        return datetime.now(UTC) + timedelta(seconds=offset)

    def stamp(self) -> datetime:
        """A modification time: millisecond precision and strictly increasing."""
        now = self.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def covered(self) -> datetime:
        """The end of a replication window that reaches "now": past every stamp given so far.
        Stamps are strictly increasing by the millisecond, so writes faster than one a
        millisecond (a kept-alive connection) run them a little ahead of the clock."""
        return max(self.now(), self._last_stamp + timedelta(milliseconds=1))

    def api_usage(self) -> tuple[int, int]:
        """(calls used today, daily limit); the day rolls over at midnight UTC."""
        saved = self.store.kv_get("api_usage", {})
        used = int(saved.get("used", 0)) if saved.get("day") == self.now().date().isoformat() else 0
        return used, self.settings.daily_api_limit

    def set_api_usage(self, used: int) -> None:
        self.store.kv_set("api_usage", {"day": self.now().date().isoformat(), "used": used})

    def consume_api_call(self) -> tuple[int, int]:
        """Count one call, or refuse it past the daily limit."""
        used, limit = self.api_usage()
        if used >= limit:
            raise SfError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.set_api_usage(used + 1)
        return used + 1, limit

    @property
    def enhanced(self) -> bool:
        return self.settings.enhanced_email

    # -- metadata helpers --------------------------------------------------------------------
    def object(self, name: str) -> ObjectDef:
        obj = schema.lookup(name)
        if obj is None:
            raise SfError(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        return obj

    def live(self, record_id: str) -> Record:
        rid = ids.normalize(record_id)
        rec = self.store.get(rid) if rid else None
        if rec is None:
            raise not_found()
        if rec.get("IsDeleted"):
            raise SfError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return rec

    # -- coercion ------------------------------------------------------------------------------
    def coerce(self, obj: ObjectDef, name: str, value: Any, creating: bool) -> tuple[FieldDef, Any]:
        f = obj.field(name, self.enhanced)
        if f is None:
            raise SfError(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}"
            )
        allowed = f.createable if creating else f.updateable
        if not allowed:
            verb = "create" if creating else "update"
            raise SfError(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to {verb} fields: {f.name}. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set.",
                [f.name],
            )
        label = schema._label(f.name)
        if value is None or value == "":  # an org stores an empty string as null
            if not f.nillable and not creating:
                raise SfError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{f.name}]",
                    [f.name],
                )
            return f, None
        t = f.type
        if t in ("string", "textarea", "email", "phone", "url", "combobox", "picklist"):
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self.bad_json(f, value)
            text = str(value)
            if f.length and len(text) > f.length:
                raise SfError(
                    400,
                    "STRING_TOO_LONG",
                    f"{label}: data value too large: {text[:40]}... (max length={f.length})",
                    [f.name],
                )
            if t == "email" and text and not _EMAIL_RE.match(text):
                raise SfError(
                    400,
                    "INVALID_EMAIL_ADDRESS",
                    f"{label}: invalid email address: {text}",
                    [f.name],
                )
            if t == "picklist" and f.restricted and text not in f.picklist:
                raise SfError(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{label}: bad value for restricted picklist field: {text}",
                    [f.name],
                )
            return f, text
        if t == "boolean":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return f, value.lower() == "true"
            if not isinstance(value, bool):
                raise self.bad_json(f, value)
            return f, value
        if t == "int":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.bad_json(f, value)
            return f, int(value)
        if t in ("double", "currency", "percent"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise self.bad_json(f, value)
            try:
                return f, float(value)
            except ValueError:
                raise self.bad_json(f, value) from None
        if t == "date":
            try:
                return f, parse_date(str(value)).isoformat()
            except ValueError:
                raise self.bad_json(f, value) from None
        if t == "datetime":
            try:
                return f, fmt_dt(parse_dt(str(value)))
            except ValueError:
                raise self.bad_json(f, value) from None
        if t == "reference":
            return f, self.check_ref(f, value)
        if t == "base64":
            if not isinstance(value, str):
                raise self.bad_json(f, value)
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise self.bad_json(f, "<base64>") from None
            return f, value
        if t == "junctionidlist":
            items = value if isinstance(value, list) else str(value).split(",")
            out = []
            for item in items:
                rid = ids.normalize(str(item).strip())
                if rid is None:
                    raise SfError(
                        400,
                        "MALFORMED_ID",
                        f"{label}: id value of incorrect type: {item}",
                        [f.name],
                    )
                rec = self.store.get(rid)
                if rec is None or rec.get("IsDeleted"):
                    raise SfError(
                        400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name]
                    )
                if rec["attributes"]["type"] not in ("Contact", "Lead", "User"):
                    raise SfError(
                        400,
                        "FIELD_INTEGRITY_EXCEPTION",
                        f"{label}: id value of incorrect type: {item}",
                        [f.name],
                    )
                out.append(rid)
            return f, out
        raise self.bad_json(f, value)

    @staticmethod
    def bad_json(f: FieldDef, value: Any) -> SfError:
        return SfError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {f.type} from value {value!r} for field {f.name}",
            [f.name],
        )

    def check_ref(self, f: FieldDef, value: Any) -> str:
        label = schema._label(f.name)
        rid = ids.normalize(value) if isinstance(value, str) else None
        if rid is None:
            raise SfError(
                400, "MALFORMED_ID", f"{label} ID: id value of incorrect type: {value}", [f.name]
            )
        sobject = schema.type_of_id(rid)
        if sobject not in f.reference_to:
            raise SfError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{label} ID: id value of incorrect type: {value}",
                [f.name],
            )
        rec = self.store.get(rid)
        if rec is None:
            raise SfError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                [f.name],
            )
        if rec.get("IsDeleted"):
            raise SfError(400, "ENTITY_IS_DELETED", "entity is deleted", [f.name])
        if sobject == "User" and not rec.get("IsActive", True):
            raise SfError(
                400, "INACTIVE_OWNER_OR_USER", "operation performed with inactive user", [f.name]
            )
        return rid

    def clean(self, obj: ObjectDef, values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            if name.lower() == "id" and not creating:
                continue
            if name.lower() == "id":
                raise SfError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            f, v = self.coerce(obj, name, value, creating)
            out[f.name] = v
        return out

    # -- writes ----------------------------------------------------------------------------------
    def create(self, sobject: str, values: Mapping[str, Any], user: str) -> str:
        obj = schema.lookup(sobject)
        if obj is None:
            raise invalid_type(sobject)
        if not obj.createable:
            raise SfError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {obj.name} does not support insert",
            )
        fields = self.clean(obj, values, creating=True)
        now = fmt_dt(self.stamp())
        rec: Record = {"attributes": {"type": obj.name}}
        for f in obj.visible_fields(self.enhanced):
            if f.defaulted and f.default is not None:
                rec[f.name] = f.default
            elif f.type == "boolean":
                rec[f.name] = False
            else:
                rec[f.name] = None
        rec.update(fields)
        rid = self.store.next_id(obj.name)
        rec.update(
            Id=rid,
            IsDeleted=False,
            CreatedDate=now,
            LastModifiedDate=now,
            SystemModstamp=now,
            CreatedById=user,
            LastModifiedById=user,
        )
        if obj.field("OwnerId") is not None and not rec.get("OwnerId"):
            rec["OwnerId"] = user
        missing = [
            f.name
            for f in obj.visible_fields(self.enhanced)
            if not f.nillable and f.createable and rec.get(f.name) is None
        ]
        if missing:
            raise SfError(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        self.derive(obj, rec, None, fields, user)
        self.check_rules(obj, rec)
        self.check_unique(obj, rec)
        self.store.put(rec)
        self.after_write(obj, rec, None, user)
        return rid

    def update(
        self, record_id: str, values: Mapping[str, Any], user: str, sobject: str = ""
    ) -> None:
        old = self.live(record_id)
        obj = schema.OBJECTS[old["attributes"]["type"]]
        if sobject and obj.name.lower() != sobject.lower():
            raise SfError(
                400,
                "MALFORMED_ID",
                f"{sobject} ID: id value of incorrect type: {record_id}",
                ["Id"],
            )
        if not obj.updateable:
            raise SfError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {obj.name} does not support update",
            )
        fields = self.clean(obj, values, creating=False)
        if obj.name == "EmailMessage" and old.get("Status") != "5":
            raise SfError(
                400,
                "INSUFFICIENT_ACCESS_OR_READONLY",
                "insufficient access rights on object id: only a draft email can be edited",
            )
        rec = dict(old)
        rec.update(fields)
        now = fmt_dt(self.stamp())
        rec.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=user)
        self.derive(obj, rec, old, fields, user)
        self.check_rules(obj, rec)
        self.check_unique(obj, rec)
        self.store.put(rec)
        self.after_write(obj, rec, old, user)

    def upsert(
        self, sobject: str, ext_field: str, value: str, values: Mapping[str, Any], user: str
    ) -> tuple[str, bool]:
        obj = self.object(sobject)
        f = obj.field(ext_field, self.enhanced)
        if f is None or not (f.external_id or f.type == "id"):
            raise SfError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {ext_field}",
            )
        body = {k: v for k, v in values.items() if k != "attributes"}
        if f.type == "id":
            if value:
                self.update(value, body, user, obj.name)
                return ids.normalize(value) or value, False
            return self.create(obj.name, body, user), True
        given = next((v for k, v in body.items() if k.lower() == f.name.lower()), None)
        if given is not None and str(given).lower() != value.lower():
            raise SfError(
                400,
                "INVALID_FIELD",
                f"The value of {f.name} in the body does not match the value in the URL",
                [f.name],
            )
        body = {k: v for k, v in body.items() if k.lower() != f.name.lower()}
        existing = self.store.find_unique(obj.name, f.name, value)
        if existing is None:
            body[f.name] = value
            return self.create(obj.name, body, user), True
        self.update(existing, body, user, obj.name)
        return existing, False

    def delete(self, record_id: str, user: str, sobject: str = "") -> None:
        old = self.live(record_id)
        obj = schema.OBJECTS[old["attributes"]["type"]]
        if sobject and obj.name.lower() != sobject.lower():
            raise not_found()
        if not obj.deletable:
            raise SfError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {obj.name} does not support delete",
            )
        self.mark_deleted(old, user)
        for child_type, field_name in _CASCADES.get(obj.name, ()):
            for child in self.store.records(child_type):
                if child.get(field_name) == old["Id"] and not child.get("IsDeleted"):
                    self.mark_deleted(child, user)
        if obj.name == "EmailMessage" and old.get("ActivityId"):
            task = self.store.get(old["ActivityId"])
            if task is not None and not task.get("IsDeleted"):
                self.mark_deleted(task, user)

    def mark_deleted(self, old: Record, user: str) -> None:
        stamp = self.stamp()
        rec = dict(old)
        rec.update(
            IsDeleted=True,
            LastModifiedDate=fmt_dt(stamp),
            SystemModstamp=fmt_dt(stamp),
            LastModifiedById=user,
            _DeletedDate=fmt_dt(stamp),
        )
        self.store.put(rec)

    # -- an admin's validation and duplicate rules (set by POST /__sandbox__/salesforce/rules) --
    def rules(self) -> dict[str, list[dict[str, Any]]]:
        saved = self.store.kv_get("rules", {}) or {}
        return {
            "validation": list(saved.get("validation", [])),
            "duplicate": list(saved.get("duplicate", [])),
        }

    def set_rules(self, rules: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Validation rules `{"sobject", "field", "contains", "message"}` (the field's text
        contains the value, case-insensitively) and blocking duplicate rules `{"sobject",
        "fields", "message"}` (another live record has the same non-empty values)."""
        clean: dict[str, list[dict[str, Any]]] = {"validation": [], "duplicate": []}
        for rule in rules.get("validation") or []:
            clean["validation"].append(
                {
                    "sobject": str(rule["sobject"]),
                    "field": str(rule["field"]),
                    "contains": str(rule["contains"]),
                    "message": str(rule.get("message") or "The record failed a validation rule."),
                }
            )
        for rule in rules.get("duplicate") or []:
            clean["duplicate"].append(
                {
                    "sobject": str(rule["sobject"]),
                    "fields": [str(f) for f in rule["fields"]],
                    "message": str(rule.get("message") or "Use one of these records?"),
                }
            )
        self.store.kv_set("rules", clean)
        return clean

    def check_rules(self, obj: ObjectDef, rec: Record) -> None:
        rules = self.rules()
        for rule in rules["validation"]:
            if rule["sobject"] != obj.name:
                continue
            value = str(rec.get(rule["field"]) or "")
            if rule["contains"].lower() in value.lower():
                raise SfError(
                    400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule["message"], [rule["field"]]
                )
        for rule in rules["duplicate"]:
            if rule["sobject"] != obj.name:
                continue
            wanted = [str(rec.get(f) or "").lower() for f in rule["fields"]]
            if not all(wanted):
                continue
            for other in self.store.records(obj.name):
                if other["Id"] == rec.get("Id") or other.get("IsDeleted"):
                    continue
                if [str(other.get(f) or "").lower() for f in rule["fields"]] == wanted:
                    raise SfError(400, "DUPLICATES_DETECTED", rule["message"])

    def check_unique(self, obj: ObjectDef, rec: Record) -> None:
        for f in obj.fields:
            if f.unique and rec.get(f.name):
                other = self.store.find_unique(obj.name, f.name, str(rec[f.name]))
                if other is not None and other != rec["Id"]:
                    raise SfError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: "
                        f"{other}",
                        [f.name],
                    )

    # -- derived fields and object rules --------------------------------------------------------
    def derive(
        self, obj: ObjectDef, rec: Record, old: Record | None, changes: dict[str, Any], user: str
    ) -> None:
        name = obj.name
        if name in ("Contact", "Lead", "User"):
            rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
        if name == "Opportunity":
            stage = str(rec.get("StageName") or "")
            rec["IsClosed"] = stage.startswith("Closed")
            rec["IsWon"] = stage == "Closed Won"
        elif name == "Task":
            closed = rec.get("Status") in schema.CLOSED_TASK_STATUS
            if closed and not (old or {}).get("IsClosed"):
                rec["CompletedDateTime"] = rec["LastModifiedDate"]
            elif not closed:
                rec["CompletedDateTime"] = None
            rec["IsClosed"] = closed
            rec["IsHighPriority"] = rec.get("Priority") == "High"
        who, what = rec.get("WhoId"), rec.get("WhatId")
        if name in ("Task", "Event") and who and what and schema.type_of_id(who) == "Lead":
            raise _integrity(
                "You can't associate a lead with a Related To record (WhatId).", "WhatId"
            )
        if name == "Event":
            self.derive_event(rec, old, changes)
        elif name == "EventRelation":
            self.check_event_relation(rec, old, changes)
        elif name == "EmailMessage" and old is None:
            if rec.get("ParentId") is None and not self.enhanced:
                raise SfError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [ParentId]",
                    ["ParentId"],
                )
            if rec.get("MessageDate") is None:
                rec["MessageDate"] = rec["CreatedDate"]
        elif name == "Attachment":
            size = len(base64.b64decode(rec["Body"]))
            limit = self.settings.attachment_max_bytes
            if size > limit:
                raise SfError(
                    400,
                    "MAXIMUM_SIZE_OF_ATTACHMENT",
                    f"Body: the attachment is {size} bytes; the maximum is {limit} bytes",
                    ["Body"],
                )
            rec["BodyLength"] = size
        elif name == "ContentVersion" and old is None:
            size = len(base64.b64decode(rec["VersionData"]))
            limit = self.settings.content_version_max_bytes
            if size > limit:
                raise SfError(
                    400,
                    "STRING_TOO_LONG",
                    f"VersionData: the file is {size} bytes; the maximum is {limit} bytes",
                    ["VersionData"],
                )
            rec["ContentSize"] = size
            rec["FileExtension"] = PurePosixPath(str(rec["PathOnClient"])).suffix.lstrip(".")
            rec["IsLatest"] = True
        elif name == "ContentDocumentLink" and old is None:
            for other in self.store.records("ContentDocumentLink"):
                if (
                    not other.get("IsDeleted")
                    and other["ContentDocumentId"] == rec["ContentDocumentId"]
                    and other["LinkedEntityId"] == rec["LinkedEntityId"]
                ):
                    raise SfError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: <unknown> duplicates value on record with id: "
                        f"{other['Id']}",
                    )

    def derive_event(self, rec: Record, old: Record | None, changes: dict[str, Any]) -> None:
        rec["IsChild"] = bool(rec.get("IsChild"))
        rec["EventSubtype"] = "Event"
        if rec.get("IsAllDayEvent"):
            day = rec.get("ActivityDate")
            if day is None and rec.get("StartDateTime"):
                day = parse_dt(rec["StartDateTime"]).date().isoformat()
            if day is None:
                raise SfError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [ActivityDate]",
                    ["ActivityDate"],
                )
            start = datetime.fromisoformat(day).replace(tzinfo=UTC)
            days = 1
            if "EndDateTime" in changes and rec.get("EndDateTime"):
                days = (parse_dt(rec["EndDateTime"]).date() - start.date()).days + 1
            elif rec.get("DurationInMinutes"):
                days = max(1, int(rec["DurationInMinutes"]) // 1440)
            if days < 1:
                raise _end_before_start()
            rec["ActivityDate"] = day
            rec["StartDateTime"] = rec["ActivityDateTime"] = fmt_dt(start)
            rec["EndDateTime"] = fmt_dt(start + timedelta(days=days - 1))
            rec["DurationInMinutes"] = days * 1440
        else:
            start_text = rec.get("StartDateTime") or rec.get("ActivityDateTime")
            if "ActivityDateTime" in changes and "StartDateTime" not in changes:
                start_text = rec.get("ActivityDateTime")
            if not start_text:
                raise SfError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [ActivityDateTime]",
                    ["ActivityDateTime"],
                )
            start = parse_dt(start_text)
            if "EndDateTime" in changes and rec.get("EndDateTime"):
                end = parse_dt(rec["EndDateTime"])
            elif "DurationInMinutes" in changes and rec.get("DurationInMinutes") is not None:
                end = start + timedelta(minutes=int(rec["DurationInMinutes"]))
            elif old is not None and old.get("DurationInMinutes") is not None:
                end = start + timedelta(minutes=int(old["DurationInMinutes"]))
            else:
                raise SfError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [DurationInMinutes]",
                    ["DurationInMinutes"],
                )
            minutes = int((end - start).total_seconds() // 60)
            if minutes < 0:
                raise _end_before_start()
            if minutes > MAX_EVENT_MINUTES:
                raise SfError(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    "Event duration can't be more than 14 days.",
                    ["DurationInMinutes"],
                )
            rec["StartDateTime"] = rec["ActivityDateTime"] = fmt_dt(start)
            rec["EndDateTime"] = fmt_dt(end)
            rec["DurationInMinutes"] = minutes
            rec["ActivityDate"] = start.date().isoformat()

    def relations_of(self, event_id: str) -> list[Record]:
        return [
            r
            for r in self.store.records("EventRelation")
            if r["EventId"] == event_id and not r.get("IsDeleted")
        ]

    def check_event_relation(
        self, rec: Record, old: Record | None, changes: dict[str, Any]
    ) -> None:
        event = self.live(rec["EventId"])
        kind = schema.type_of_id(rec["RelationId"])
        if event.get("IsChild"):
            raise _integrity("You can't add relations to a child event.", "EventId")
        if old is None and "IsInvitee" not in changes and "IsParent" not in changes:
            rec["IsInvitee"] = True
            rec["IsParent"] = False
        if kind in schema.WHAT_TYPES:
            rec["IsWhat"] = True
            rec["IsParent"] = rec["IsInvitee"] = False
        elif rec.get("IsWhat"):
            raise _integrity("Only an account or opportunity can be the What.", "IsWhat")
        if kind == "User" and rec.get("IsParent"):
            raise _integrity("A user can't be a Who of an event; invite the user.", "IsParent")
        if not (rec.get("IsInvitee") or rec.get("IsParent") or rec.get("IsWhat")):
            raise _integrity("IsInvitee, IsParent or IsWhat must be true.", "IsInvitee")
        others = [r for r in self.relations_of(event["Id"]) if r["Id"] != rec["Id"]]
        for other in others:
            if other["RelationId"] == rec["RelationId"]:
                raise SfError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: RelationId duplicates value on record with id: "
                    f"{other['Id']}",
                    ["RelationId"],
                )
        if rec.get("IsParent"):
            parents = [schema.type_of_id(r["RelationId"]) for r in others if r.get("IsParent")]
            if kind == "Lead" and parents:
                raise _integrity("An event can have one lead or up to 50 contacts.", "RelationId")
            if kind == "Contact" and "Lead" in parents:
                raise _integrity("An event can have one lead or up to 50 contacts.", "RelationId")
            if kind == "Contact" and parents.count("Contact") >= MAX_CONTACT_WHOS:
                raise SfError(
                    400,
                    "LIMIT_EXCEEDED",
                    f"An event can have at most {MAX_CONTACT_WHOS} contacts.",
                    ["RelationId"],
                )
        if rec.get("IsWhat") and any(r.get("IsWhat") for r in others):
            raise _integrity("An event can have only one What.", "RelationId")
        if rec.get("IsInvitee"):
            limit = MAX_INVITEES_RECURRING if event.get("IsRecurrence") else MAX_INVITEES
            if sum(1 for r in others if r.get("IsInvitee")) >= limit:
                raise SfError(
                    400, "LIMIT_EXCEEDED", f"An event can have at most {limit} invitees.", []
                )

    # -- side effects after a successful write -------------------------------------------------
    def after_write(self, obj: ObjectDef, rec: Record, old: Record | None, user: str) -> None:
        if obj.name == "Event":
            self.sync_event_who(rec, old, user)
        elif obj.name == "EventRelation" and old is None and rec.get("IsInvitee"):
            event = self.live(rec["EventId"])
            if not event.get("IsGroupEvent"):
                self.store.put({**event, "IsGroupEvent": True})
        elif obj.name == "EmailMessage" and old is None and self.enhanced:
            self.email_side_effects(rec, user)
        elif obj.name == "ContentVersion" and old is None:
            self.content_side_effects(rec, user)
        parent_field = {"Attachment": "ParentId", "ContentDocumentLink": "LinkedEntityId"}
        parent_id = rec.get(parent_field.get(obj.name, ""))
        if old is None and parent_id and schema.type_of_id(parent_id) == "EmailMessage":
            email = self.store.get(parent_id)
            if email is not None and not email.get("HasAttachment"):
                self.store.put({**email, "HasAttachment": True})

    def sync_event_who(self, rec: Record, old: Record | None, user: str) -> None:
        who = rec.get("WhoId")
        previous = (old or {}).get("WhoId")
        if who == previous:
            return
        for rel in self.relations_of(rec["Id"]):
            if rel["RelationId"] == previous and rel.get("IsParent") and not rel.get("IsInvitee"):
                self.mark_deleted(rel, user)
        if who and not any(r["RelationId"] == who for r in self.relations_of(rec["Id"])):
            self.create(
                "EventRelation",
                {"EventId": rec["Id"], "RelationId": who, "IsParent": True, "IsInvitee": False},
                user,
            )

    def email_side_effects(self, rec: Record, user: str) -> None:
        whos: list[str] = []
        relations: list[tuple[str | None, str, str | None]] = []
        if not rec.get("Incoming"):
            relations.append((user, "FromAddress", rec.get("FromAddress")))
        else:
            relations.append((None, "FromAddress", rec.get("FromAddress")))
        for field_name, rel_type in (
            ("ToIds", "ToAddress"),
            ("CcIds", "CcAddress"),
            ("BccIds", "BccAddress"),
        ):
            for rid in rec.get(field_name) or []:
                target = self.store.get(rid)
                address = target.get("Email") if target else None
                relations.append((rid, rel_type, address))
                if schema.type_of_id(rid) in schema.WHO_TYPES and rid not in whos:
                    whos.append(rid)
        message_date = parse_dt(rec["MessageDate"]).date().isoformat()
        task_id = self.create(
            "Task",
            {
                "Subject": ("Email: " + str(rec.get("Subject") or ""))[:255],
                "Status": "Completed",
                "Priority": "Normal",
                "TaskSubtype": "Email",
                "ActivityDate": message_date,
                "WhatId": rec.get("RelatedToId"),
                "WhoId": whos[0] if whos else None,
                "Description": (rec.get("TextBody") or "")[:32000] or None,
            },
            user,
        )
        self.store.put({**self.store.get(rec["Id"]), "ActivityId": task_id})  # type: ignore[dict-item]
        for rid, rel_type, address in relations:
            fields: dict[str, Any] = {
                "EmailMessageId": rec["Id"],
                "RelationType": rel_type,
                "RelationAddress": address,
            }
            if rid:
                fields["RelationId"] = rid
            rel_id = self.create("EmailMessageRelation", fields, user)
            rel = self.store.get(rel_id)
            assert rel is not None
            self.store.put({**rel, "RelationObjectType": schema.type_of_id(rid) if rid else None})

    def content_side_effects(self, rec: Record, user: str) -> None:
        doc_id = self.store.next_id("ContentDocument")
        now = rec["CreatedDate"]
        self.store.put(
            {
                "attributes": {"type": "ContentDocument"},
                "Id": doc_id,
                "IsDeleted": False,
                "CreatedDate": now,
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "CreatedById": user,
                "LastModifiedById": user,
                "OwnerId": rec["OwnerId"],
                "Title": rec["Title"],
                "FileExtension": rec["FileExtension"],
                "ContentSize": rec["ContentSize"],
                "LatestPublishedVersionId": rec["Id"],
            }
        )
        self.store.put({**rec, "ContentDocumentId": doc_id})
        self.create(
            "ContentDocumentLink",
            {"ContentDocumentId": doc_id, "LinkedEntityId": rec["OwnerId"], "ShareType": "I"},
            user,
        )
        if rec.get("FirstPublishLocationId"):
            self.create(
                "ContentDocumentLink",
                {"ContentDocumentId": doc_id, "LinkedEntityId": rec["FirstPublishLocationId"]},
                user,
            )


_CASCADES: dict[str, tuple[tuple[str, str], ...]] = {
    "Event": (("EventRelation", "EventId"),),
    "Opportunity": (("OpportunityContactRole", "OpportunityId"),),
    "EmailMessage": (("EmailMessageRelation", "EmailMessageId"),),
    "ContentDocument": (
        ("ContentDocumentLink", "ContentDocumentId"),
        ("ContentVersion", "ContentDocumentId"),
    ),
    "Contact": (("OpportunityContactRole", "ContactId"),),
}


def _integrity(message: str, field_name: str) -> SfError:
    return SfError(400, "FIELD_INTEGRITY_EXCEPTION", message, [field_name])


def _end_before_start() -> SfError:
    return _integrity(
        "EndDateTime: End Date Time cannot be earlier than Start Date Time", "EndDateTime"
    )
