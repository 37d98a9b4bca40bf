"""The REST API under /services/data/vXX.X/: routing plus query paging, Collections and composite.

Handlers raise SfError; `dispatch` is also what composite subrequests go through, so a composite
call behaves exactly like the separate calls it bundles (but counts as one API call).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from scc_desktop.sandbox.salesforce import ids, schema, soql
from scc_desktop.sandbox.salesforce.errors import SfError, not_found
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.store import Record
from scc_desktop.sandbox.salesforce.values import fmt_dt, parse_dt
from scc_desktop.sandbox.service import FaultProfile

VERSIONS = tuple(f"{v}.0" for v in range(42, 63))
MAX_COLLECTION = 200
MAX_COMPOSITE = 25
DEFAULT_BATCH = 2000
UPDATED_WINDOW = timedelta(days=30)
DELETED_WINDOW = timedelta(days=15)
MAX_CURSORS = 500
_REF_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_VERSION_RE = re.compile(r"^v(\d+\.\d)$")


@dataclass
class Call:
    method: str
    parts: list[str]
    args: Mapping[str, str]
    body: Any
    headers: Mapping[str, str]
    user: str
    version: str
    out_headers: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"/services/data/v{self.version}"


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]
    batch: int


def split_version(path: str) -> tuple[str, list[str]] | None:
    """('59.0', ['sobjects', 'Contact']) for /services/data/v59.0/sobjects/Contact/."""
    rest = path[len("/services/data") :].strip("/")
    if not rest:
        return None
    head, *parts = rest.split("/")
    m = _VERSION_RE.match(head)
    if not m or m.group(1) not in VERSIONS:
        raise not_found(f"Version {head} is not supported")
    return m.group(1), [p for p in parts if p]


def versions_body() -> list[dict[str, str]]:
    return [
        {"label": f"Release {v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS
    ]


class Rest:
    def __init__(self, org: Org, faults: Callable[[], FaultProfile]) -> None:
        self.org = org
        self.faults = faults
        self.cursors: OrderedDict[str, _Cursor] = OrderedDict()

    # -- routing -----------------------------------------------------------------------------------
    def dispatch(self, call: Call) -> tuple[int, Any]:
        p = call.parts
        low = [x.lower() for x in p]
        m = call.method
        if not p:
            return 200, self.resources(call)
        if low[0] in ("query", "queryall"):
            if m != "GET":
                raise _method()
            deleted = low[0] == "queryall"
            if len(p) == 1:
                return 200, self.query(call, call.args.get("q", ""), deleted)
            return 200, self.query_more(call, p[1])
        if low[0] == "limits":
            return 200, self.limits()
        if low[0] == "sobjects":
            return self.sobjects(call, p[1:])
        if low[:2] == ["composite", "sobjects"]:
            return 200, self.collections(call, p[2:])
        if low == ["composite"]:
            if m != "POST":
                raise _method()
            return 200, self.composite(call)
        raise not_found()

    def resources(self, call: Call) -> dict[str, str]:
        names = ("sobjects", "query", "queryAll", "composite", "limits")
        return {n: f"{call.base}/{n}" for n in names}

    def sobjects(self, call: Call, p: list[str]) -> tuple[int, Any]:
        m = call.method
        enhanced = self.org.enhanced
        if not p:
            if m != "GET":
                raise _method()
            return 200, {
                "encoding": "UTF-8",
                "maxBatchSize": MAX_COLLECTION,
                "sobjects": [o.summary(call.base) for o in schema.OBJECTS.values()],
            }
        obj = self.org.object(p[0])
        if len(p) == 1:
            if m == "GET":
                return 200, {"objectDescribe": obj.summary(call.base), "recentItems": []}
            if m == "POST":
                rid = self.org.create(obj.name, _body_dict(call.body), call.user)
                call.out_headers["Location"] = f"{call.base}/sobjects/{obj.name}/{rid}"
                return 201, {"id": rid, "success": True, "errors": []}
            raise _method()
        second = p[1].lower()
        if len(p) == 2 and second == "describe":
            return 200, obj.describe(call.base, enhanced)
        if len(p) == 2 and second == "updated":
            return 200, self.updated(obj.name, call)
        if len(p) == 2 and second == "deleted":
            return 200, self.deleted(obj.name, call)
        if len(p) == 2:
            target = ids.normalize(p[1])
            if target is None or schema.type_of_id(target) != obj.name:
                raise not_found(
                    f"Provided external ID field does not exist or is not accessible: {p[1]}"
                )
            return self.record(call, obj.name, target)
        if len(p) == 3 and ids.normalize(p[1]) is not None:
            rec = self.org.live(p[1])
            f = obj.field(p[2])
            if m != "GET" or f is None or f.type != "base64" or rec.get(f.name) is None:
                raise not_found()
            return 200, base64.b64decode(rec[f.name])
        if len(p) == 3:
            return self.by_external_id(call, obj.name, p[1], p[2])
        raise not_found()

    def record(self, call: Call, sobject: str, rid: str) -> tuple[int, Any]:
        if call.method == "GET":
            rec = self.org.live(rid)
            wanted = call.args.get("fields")
            return 200, self.render(call, rec, wanted.split(",") if wanted else None)
        if call.method == "PATCH":
            self.org.update(rid, _body_dict(call.body), call.user, sobject)
            return 204, None
        if call.method == "DELETE":
            self.org.delete(rid, call.user, sobject)
            return 204, None
        raise _method()

    def by_external_id(self, call: Call, sobject: str, ext: str, value: str) -> tuple[int, Any]:
        if call.method == "PATCH":
            rid, created = self.org.upsert(sobject, ext, value, _body_dict(call.body), call.user)
            if created:
                call.out_headers["Location"] = f"{call.base}/sobjects/{sobject}/{rid}"
            body = {"id": rid, "success": True, "errors": [], "created": created}
            return (201 if created else 200), body
        obj = self.org.object(sobject)
        f = obj.field(ext, self.org.enhanced)
        if f is None or not f.external_id:
            raise not_found(
                f"Provided external ID field does not exist or is not accessible: {ext}"
            )
        found = self.org.store.find_unique(obj.name, f.name, value)
        if found is None:
            raise not_found()
        return self.record(call, obj.name, found)

    def render(self, call: Call, rec: Record, wanted: list[str] | None) -> dict[str, Any]:
        obj = schema.OBJECTS[rec["attributes"]["type"]]
        ev = soql.Evaluator(self.org.store, self.org.now(), call.base)
        out: dict[str, Any] = {"attributes": ev.attributes(rec)}
        if wanted:
            fields = []
            for name in wanted:
                f = obj.field(name.strip(), self.org.enhanced)
                if f is None:
                    raise SfError(
                        400, "INVALID_FIELD", f"No such column '{name}' on entity '{obj.name}'"
                    )
                fields.append(f)
        else:
            fields = obj.visible_fields(self.org.enhanced)
        for f in fields:
            out[f.name] = ev.output(rec, f)
        return out

    # -- query -------------------------------------------------------------------------------------
    def batch_size(self, call: Call) -> int:
        options = call.headers.get("Sforce-Query-Options", "")
        for part in options.split(","):
            key, _, value = part.partition("=")
            if key.strip().lower() == "batchsize" and value.strip().isdigit():
                return max(200, min(2000, int(value)))
        return DEFAULT_BATCH

    def query(self, call: Call, text: str, include_deleted: bool) -> dict[str, Any]:
        if not text:
            raise SfError(400, "MALFORMED_QUERY", "A query string has to be specified")
        result = soql.run(
            text,
            self.org.store,
            self.org.now(),
            include_deleted=include_deleted,
            enhanced=self.org.enhanced,
            base=call.base,
        )
        batch = self.batch_size(call)
        rows = result.records
        if len(rows) <= batch:
            return {"totalSize": result.total_size, "done": True, "records": rows}
        locator = "01g" + ids.POD + secrets.token_hex(5).upper()[:9]
        self.cursors[locator] = _Cursor(rows, batch)
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return self.page(call, locator, 0, result.total_size, include_deleted)

    def page(
        self, call: Call, locator: str, start: int, total: int, include_deleted: bool
    ) -> dict[str, Any]:
        cursor = self.cursors[locator]
        end = start + cursor.batch
        out: dict[str, Any] = {
            "totalSize": total,
            "done": end >= len(cursor.rows),
            "records": cursor.rows[start:end],
        }
        if not out["done"]:
            kind = "queryAll" if include_deleted else "query"
            out["nextRecordsUrl"] = f"{call.base}/{kind}/{locator}-{end}"
        return out

    def query_more(self, call: Call, token: str) -> dict[str, Any]:
        locator, _, offset = token.partition("-")
        cursor = self.cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) > len(cursor.rows):
            raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        include_deleted = call.parts[0].lower() == "queryall"
        return self.page(call, locator, int(offset), len(cursor.rows), include_deleted)

    def limits(self) -> dict[str, Any]:
        limit = self.org.settings.daily_api_limit
        used = self.org.api_usage()[0]
        return {
            "DailyApiRequests": {"Max": limit, "Remaining": max(0, limit - used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 1024, "Remaining": 1000},
            "FileStorageMB": {"Max": 1024, "Remaining": 1000},
        }

    # -- replication -------------------------------------------------------------------------------
    def window(self, call: Call, max_age: timedelta) -> tuple[datetime, datetime, datetime]:
        try:
            start = parse_dt(call.args["start"].replace(" ", "+"))
            end = parse_dt(call.args["end"].replace(" ", "+"))
        except KeyError:
            raise SfError(400, "MISSING_ARGUMENT", "start and end are required") from None
        except ValueError as exc:
            raise SfError(400, "INVALID_REPLICATION_DATE", str(exc)) from None
        now = self.org.covered()
        # Seconds are truncated as Salesforce does; records of the current minute are returned
        # but latestDateCovered stays at its start, so the next window returns them again
        # (at least once, never missed).
        start = start.replace(second=0, microsecond=0)
        end = min(end.replace(second=0, microsecond=0), now)
        if end < start:
            raise SfError(
                400, "INVALID_REPLICATION_DATE", "EndDate must chronologically follow StartDate"
            )
        if start < now - max_age:
            days = max_age.days
            raise SfError(
                400, "INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago"
            )
        return start, end, now

    def updated(self, sobject: str, call: Call) -> dict[str, Any]:
        start, end, _ = self.window(call, UPDATED_WINDOW)
        found = [
            r["Id"]
            for r in self.org.store.records(sobject)
            if not r.get("IsDeleted") and start <= parse_dt(r["SystemModstamp"]) < end
        ]
        return {"ids": found, "latestDateCovered": fmt_dt(_minute(end))}

    def deleted(self, sobject: str, call: Call) -> dict[str, Any]:
        start, end, now = self.window(call, DELETED_WINDOW)
        earliest = (now - DELETED_WINDOW).replace(second=0, microsecond=0)
        found = []
        for r in self.org.store.records(sobject):
            when = r.get("_DeletedDate")
            if r.get("IsDeleted") and when and start <= parse_dt(when) < end:
                found.append({"id": r["Id"], "deletedDate": when})
        return {
            "deletedRecords": found,
            "earliestDateAvailable": fmt_dt(earliest),
            "latestDateCovered": fmt_dt(_minute(end)),
        }

    # -- sObject Collections ---------------------------------------------------------------------
    def collections(self, call: Call, p: list[str]) -> list[dict[str, Any]] | list[Any]:
        m = call.method
        if m == "GET" and len(p) == 1:
            return self.retrieve(call, p[0])
        if m == "DELETE" and not p:
            ids_arg: list[Any] = [i for i in call.args.get("ids", "").split(",") if i]
            all_or_none = call.args.get("allOrNone", "false").lower() == "true"
            _check_size(len(ids_arg))
            return self.run_batch(
                ids_arg, lambda rid: self._delete_one(call, rid), _given_id, all_or_none, False
            )
        body = call.body if isinstance(call.body, dict) else None
        if body is None or not isinstance(body.get("records"), list):
            raise SfError(400, "JSON_PARSER_ERROR", "The request body must have a records list")
        records: list[Any] = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        _check_size(len(records))
        if m == "POST" and not p:
            return self.run_batch(
                records, lambda r: self._create_one(call, r), _no_id, all_or_none, False
            )
        if m == "PATCH" and not p:
            return self.run_batch(
                records, lambda r: self._update_one(call, r), _given_id, all_or_none, False
            )
        if m == "PATCH" and len(p) == 2:
            obj = self.org.object(p[0])
            f = obj.field(p[1], self.org.enhanced)
            if f is None or not f.external_id:
                raise SfError(
                    400,
                    "INVALID_FIELD",
                    f"Provided external ID field does not exist or is not accessible: {p[1]}",
                )
            return self.run_batch(
                records,
                lambda r: self._upsert_one(call, obj.name, f.name, r),
                _no_id,
                all_or_none,
                True,
            )
        raise _method()

    def retrieve(self, call: Call, sobject: str) -> list[Any]:
        obj = self.org.object(sobject)
        wanted = [f for f in call.args.get("fields", "").split(",") if f]
        if not wanted:
            raise SfError(400, "MISSING_ARGUMENT", "fields is required")
        raw = [i for i in call.args.get("ids", "").split(",") if i]
        _check_size(len(raw))
        out: list[Any] = []
        for rid in raw:
            norm = ids.normalize(rid)
            rec = self.org.store.get(norm) if norm else None
            if rec is None or rec.get("IsDeleted") or rec["attributes"]["type"] != obj.name:
                out.append(None)
            else:
                out.append(self.render(call, rec, wanted))
        return out

    def _inject(self, record_id: str | None) -> None:
        faults = self.faults()
        if faults.chance(faults.lock_row_rate):
            raise SfError(
                400,
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record_id or ''}",
            )
        if faults.chance(faults.partial_failure_rate):
            raise SfError(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Sandbox validation rule: this record was rejected (injected partial failure)",
            )

    def _create_one(self, call: Call, rec: Any) -> tuple[str, bool]:
        sobject = _record_type(rec)
        self._inject(None)
        return self.org.create(sobject, rec, call.user), True

    def _update_one(self, call: Call, rec: Any) -> tuple[str, bool]:
        sobject = _record_type(rec)
        rid = rec.get("id") or rec.get("Id")
        if not rid:
            raise SfError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        if ids.normalize(str(rid)) is None:
            raise SfError(400, "MALFORMED_ID", f"invalid record id: {rid}", ["Id"])
        self._inject(str(rid))
        self.org.update(str(rid), rec, call.user, sobject)
        return ids.normalize(str(rid)) or str(rid), False

    def _upsert_one(self, call: Call, sobject: str, ext: str, rec: Any) -> tuple[str, bool]:
        if not isinstance(rec, dict):
            raise SfError(400, "JSON_PARSER_ERROR", "each record must be an object")
        given = _record_type(rec)
        if given.lower() != sobject.lower():
            raise SfError(400, "INVALID_TYPE", f"records must all be of type {sobject}")
        value = next((v for k, v in rec.items() if k.lower() == ext.lower()), None)
        if value in (None, ""):
            raise SfError(400, "MISSING_ARGUMENT", f"{ext} not specified", [ext])
        self._inject(None)
        return self.org.upsert(sobject, ext, str(value), rec, call.user)

    def _delete_one(self, call: Call, rid: str) -> tuple[str, bool]:
        if ids.normalize(rid) is None:
            raise SfError(400, "MALFORMED_ID", f"malformed id {rid}")
        self._inject(rid)
        self.org.delete(rid, call.user)
        return ids.normalize(rid) or rid, False

    def run_batch(
        self,
        items: list[Any],
        op: Callable[[Any], tuple[str, bool]],
        id_of: Callable[[Any], str | None],
        all_or_none: bool,
        with_created: bool,
    ) -> list[dict[str, Any]]:
        """Run each op in its own savepoint; results in input order, rolled back as a whole
        when allOrNone and anything failed."""
        store = self.org.store
        start = store.savepoint()
        results: list[dict[str, Any]] = []
        failed = False
        for entry in items:
            given_id = id_of(entry)
            mark = store.savepoint()
            try:
                rid, created = op(entry)
                item: dict[str, Any] = {"id": rid, "success": True, "errors": []}
                if with_created:
                    item["created"] = created
            except SfError as exc:
                store.rollback_to(mark)
                failed = True
                item = {"success": False, "errors": [exc.record_error()]}
                if given_id is not None:
                    item = {"id": given_id, **item}
            results.append(item)
        if all_or_none and failed:
            store.rollback_to(start)
            for i, item in enumerate(results):
                if item["success"]:
                    results[i] = {
                        "id": None,
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                "message": "Record rolled back because not all records were "
                                "valid and the request was using AllOrNone header",
                                "fields": [],
                            }
                        ],
                    }
        return results

    # -- composite ---------------------------------------------------------------------------------
    def composite(self, call: Call) -> dict[str, Any]:
        body = call.body if isinstance(call.body, dict) else {}
        subs = body.get("compositeRequest")
        if not isinstance(subs, list) or not subs:
            raise SfError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subs) > MAX_COMPOSITE:
            raise SfError(
                400,
                "LIMIT_EXCEEDED",
                f"Composite requests can have at most {MAX_COMPOSITE} subrequests",
            )
        for sub in subs:
            if not isinstance(sub, dict) or not {"method", "url", "referenceId"} <= set(sub):
                raise SfError(
                    400,
                    "JSON_PARSER_ERROR",
                    "Each subrequest needs method, url and referenceId",
                )
        all_or_none = bool(body.get("allOrNone", False))
        store = self.org.store
        start = store.savepoint()
        refs: dict[str, Any] = {}
        out: list[dict[str, Any]] = []
        failed_at: int | None = None
        for i, sub in enumerate(subs):
            ref_id = str(sub.get("referenceId", ""))
            try:
                status, result, headers = self._subrequest(call, sub, refs)
            except SfError as exc:
                status, result, headers = exc.status, exc.body(), {}
            if status < 400:
                refs[ref_id] = result
            elif failed_at is None:
                failed_at = i
            out.append(
                {
                    "body": result,
                    "httpHeaders": headers,
                    "httpStatusCode": status,
                    "referenceId": ref_id,
                }
            )
            if all_or_none and failed_at is not None:
                break
        if all_or_none and failed_at is not None:
            store.rollback_to(start)
            halted = [
                {
                    "errorCode": "PROCESSING_HALTED",
                    "message": "The transaction was rolled back since another operation in the "
                    "same transaction failed.",
                }
            ]
            for i, sub in enumerate(subs):
                if i == failed_at:
                    continue
                item = {
                    "body": halted,
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": str(sub.get("referenceId", "")),
                }
                if i < len(out):
                    out[i] = item
                else:
                    out.append(item)
        return {"compositeResponse": out}

    def _subrequest(
        self, call: Call, sub: Any, refs: dict[str, Any]
    ) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(sub, dict) or "url" not in sub or "method" not in sub:
            raise SfError(400, "JSON_PARSER_ERROR", "each subrequest needs method and url")
        url = _substitute(str(sub["url"]), refs, in_url=True)
        payload = _substitute(sub.get("body"), refs, in_url=False)
        parts = urlsplit(url)
        split = split_version(parts.path)
        if split is None:
            raise not_found()
        version, path_parts = split
        if [x.lower() for x in path_parts] == ["composite"]:
            raise SfError(400, "INVALID_URL", "composite cannot be nested")
        sub_call = Call(
            method=str(sub["method"]).upper(),
            parts=path_parts,
            args=dict(parse_qsl(parts.query)),
            body=payload,
            headers={**call.headers, **(sub.get("httpHeaders") or {})},
            user=call.user,
            version=version,
        )
        status, result = self.dispatch(sub_call)
        if isinstance(result, bytes):
            result = base64.b64encode(result).decode()
        return status, result, sub_call.out_headers


def _lookup_ref(refs: dict[str, Any], name: str, path: str) -> Any:
    if name not in refs:
        raise SfError(
            400,
            "PROCESSING_HALTED",
            f"Invalid reference specified. No value for {name}{path} found. Provided referenceId "
            "must be the referenceId of a previous successful subrequest.",
        )
    value: Any = refs[name]
    for key, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        try:
            value = value[key] if key else value[int(index)]
        except (KeyError, IndexError, TypeError):
            raise SfError(
                400, "PROCESSING_HALTED", f"Invalid reference specified. No value for {name}{path}"
            ) from None
    return value


def _substitute(value: Any, refs: dict[str, Any], in_url: bool) -> Any:
    if isinstance(value, str):
        whole = _REF_RE.fullmatch(value)
        if whole and not in_url:
            return _lookup_ref(refs, whole.group(1), whole.group(2))
        return _REF_RE.sub(lambda m: str(_lookup_ref(refs, m.group(1), m.group(2))), value)
    if isinstance(value, list):
        return [_substitute(v, refs, in_url) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, refs, in_url) for k, v in value.items()}
    return value


def _minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


def _no_id(item: Any) -> str | None:
    return None


def _given_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("id") or item.get("Id")
        return str(value) if value else None
    return str(item) if item else None


def _body_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def _record_type(rec: Any) -> str:
    if not isinstance(rec, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "each record must be an object")
    attrs = rec.get("attributes")
    sobject = attrs.get("type") if isinstance(attrs, dict) else None
    if not sobject:
        raise SfError(400, "INVALID_TYPE", "Must send a concrete entity type.")
    if schema.lookup(str(sobject)) is None:
        raise SfError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
    return str(sobject)


def _check_size(n: int) -> None:
    if n > MAX_COLLECTION:
        raise SfError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this "
            "call",
        )


def _method() -> SfError:
    return SfError(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed for this resource")


def parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise SfError(
            400, "JSON_PARSER_ERROR", "Unexpected character in the request body"
        ) from None
