"""The Graph v1.0 subset: one mailbox's mail, contacts, calendar, To Do and categories.

Handlers take a `Ctx` (method, path segments, query, headers, body) rather than a werkzeug
request so `$batch` subrequests run through exactly the same code as direct calls.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from scc_desktop.sandbox.demo_people import DEMO_USER
from scc_desktop.sandbox.microsoft import calendar as cal
from scc_desktop.sandbox.microsoft.db import Item, new_id
from scc_desktop.sandbox.microsoft.identity import USER_OID

if TYPE_CHECKING:
    from scc_desktop.sandbox.microsoft.service import MicrosoftService

GRAPH = "https://graph.microsoft.com/v1.0"
DEFAULT_PAGE = 10
MAX_PAGE = 1000
INLINE_ATTACHMENT_MAX = 3 * 1024 * 1024
UPLOAD_MAX = 150 * 1024 * 1024
UPLOAD_CHUNK_MAX = 4 * 1024 * 1024
WELL_KNOWN = {
    "msgfolderroot": "Top of Information Store",
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "junkemail": "Junk Email",
    "archive": "Archive",
    "outbox": "Outbox",
}
READ_ONLY = {
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "parentFolderId",
    "@odata.etag",
}

Result = tuple[int, dict[str, str], Any]


class GraphError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def not_found(what: str = "object") -> GraphError:
    return GraphError(404, "ErrorItemNotFound", f"The specified {what} was not found in the store.")


def bad(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def modified_iso() -> str:
    """A `lastModifiedDateTime` as Graph writes it for Outlook items (7 fraction digits), so
    two changes in the same second still order."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def etag(item: Item) -> str:
    return f'W/"CQAAABYAAAA{item.seq:012d}"'


@dataclass
class Ctx:
    """One Graph call (direct or a $batch subrequest)."""

    method: str
    path: str  # after /v1.0, no query, leading slash
    args: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    segs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.segs = [s for s in self.path.strip("/").split("/") if s]

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise bad("Unable to read JSON request payload.", "BadRequest") from exc
        if not isinstance(data, dict):
            raise bad("The request body must be a JSON object.")
        return data

    @property
    def prefer(self) -> str:
        return self.headers.get("prefer", "")

    @property
    def immutable(self) -> bool:
        return 'idtype="immutableid"' in self.prefer.replace(" ", "").lower()

    @property
    def tz(self) -> str:
        m = re.search(r'outlook\.timezone\s*=\s*"([^"]+)"', self.prefer, re.I)
        return m.group(1) if m else "UTC"

    def page_size(self, default: int = DEFAULT_PAGE) -> int:
        m = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", self.prefer, re.I)
        top = self.args.get("$top")
        size = int(m.group(1)) if m else int(top) if top and top.isdigit() else default
        return max(1, min(size, MAX_PAGE))

    def select(self) -> list[str] | None:
        raw = self.args.get("$select")
        return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


def apply_select(data: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return data
    wanted = {s.lower() for s in select} | {"id", "@odata.etag", "@odata.type", "@removed"}
    wanted |= {"singlevalueextendedproperties", "extensions", "attachments"}  # $expand-ed: kept
    return {k: v for k, v in data.items() if k.lower() in wanted or k.startswith("@odata")}


def public(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("_")}


# -- $filter: the handful of shapes the connector needs -------------------------------------------
_SV_ANY = re.compile(
    r"singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)",
    re.I,
)
_CAT_ANY = re.compile(r"categories/any\(\s*(\w+)\s*:\s*\1\s+eq\s+'((?:[^']|'')*)'\s*\)", re.I)
_CMP = re.compile(r"([\w/]+)\s+(eq|ne|ge|gt|le|lt)\s+('((?:[^']|'')*)'|[\w:.\-+]+)", re.I)


def _lookup(data: dict[str, Any], path: str) -> Any:
    value: Any = data
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        match = next((k for k in value if k.lower() == part.lower()), None)
        value = value.get(match) if match else None
    return value


def _sv_test(pid: str, value: str) -> Callable[[dict[str, Any]], bool]:
    def test(d: dict[str, Any]) -> bool:
        return bool(d.get("_sv", {}).get(pid, {}).get("value") == value)

    return test


def _category_test(name: str) -> Callable[[dict[str, Any]], bool]:
    def test(d: dict[str, Any]) -> bool:
        return name in (d.get("categories") or [])

    return test


def compile_filter(text: str | None) -> Callable[[dict[str, Any]], bool] | None:
    """`a eq 'x' and b ge 2024-...`, `categories/any(c:c eq 'x')`, extended-property any()."""
    if not text:
        return None
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for raw in re.split(r"\s+and\s+(?![^()]*\))", text.strip()):
        clause = raw.strip()
        if m := _SV_ANY.fullmatch(clause):
            tests.append(
                _sv_test(m.group(2).replace("''", "'").lower(), m.group(3).replace("''", "'"))
            )
        elif m := _CAT_ANY.fullmatch(clause):
            tests.append(_category_test(m.group(2).replace("''", "'")))
        elif m := _CMP.fullmatch(clause):
            prop, op = m.group(1), m.group(2).lower()
            literal: Any = m.group(4).replace("''", "'") if m.group(4) is not None else m.group(3)
            if literal in ("true", "false"):
                literal = literal == "true"

            def test(d: dict[str, Any], prop: str = prop, op: str = op, lit: Any = literal) -> bool:
                value = _lookup(d, prop)
                if isinstance(value, str) and isinstance(lit, str):
                    value, lit = value.lower(), lit.lower()
                if op == "eq":
                    return bool(value == lit)
                if op == "ne":
                    return bool(value != lit)
                if value is None:
                    return False
                try:
                    return bool(
                        {
                            "ge": value >= lit,
                            "gt": value > lit,
                            "le": value <= lit,
                            "lt": value < lit,
                        }[op]
                    )
                except TypeError:
                    return False

            tests.append(test)
        else:
            raise bad(f"Invalid filter clause: {clause}", "ErrorInvalidUrlQueryFilter")
    return lambda d: all(t(d) for t in tests)


_EXPAND_SV = re.compile(
    r"singleValueExtendedProperties\(\s*\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'((?:\s+or\s+id\s+eq\s+'(?:[^']|'')*')*)\s*\)",
    re.I,
)


def expanded_sv(ctx: Ctx, data: dict[str, Any]) -> list[dict[str, str]] | None:
    expand = ctx.args.get("$expand", "")
    if "singlevalueextendedproperties" not in expand.lower():
        return None
    m = _EXPAND_SV.search(expand)
    props: dict[str, dict[str, str]] = data.get("_sv", {})
    if m is None:
        return list(props.values())
    wanted = {m.group(1).replace("''", "'").lower()}
    wanted |= {
        x.replace("''", "'").lower() for x in re.findall(r"'((?:[^']|'')*)'", m.group(2) or "")
    }
    return [v for k, v in props.items() if k in wanted]


def merge_sv(data: dict[str, Any], props: Any) -> None:
    if props is None:
        return
    if not isinstance(props, list):
        raise bad("singleValueExtendedProperties must be an array.")
    store: dict[str, dict[str, str]] = dict(data.get("_sv", {}))
    for p in props:
        pid = str(p.get("id", ""))
        if not re.match(r"^\w+ \{[0-9a-fA-F-]{36}\} (Name|Id) \S", pid):
            raise bad(
                f"The extended property id '{pid}' is not valid.",
                "ErrorInvalidExtendedPropertyValue",
            )
        store[pid.lower()] = {"id": pid, "value": str(p.get("value", ""))}
    data["_sv"] = store


def recipient(value: Any) -> dict[str, Any]:
    """Accept Graph's recipient dict, 'Name <addr>' or a bare address."""
    if isinstance(value, dict):
        email = value.get("emailAddress", value)
        return {
            "emailAddress": {
                "name": email.get("name") or email.get("address", ""),
                "address": email.get("address", ""),
            }
        }
    text = str(value)
    m = re.match(r"^\s*(.*?)\s*<([^>]+)>\s*$", text)
    name, address = (m.group(1).strip('"'), m.group(2)) if m else (text, text)
    return {"emailAddress": {"name": name or address, "address": address}}


def inherit_preferences(ctx: Ctx, token: dict[str, Any]) -> None:
    """A page size or time zone given at the start of a round holds for its later links too."""
    prefer = ctx.prefer.lower()
    if "odata.maxpagesize" not in prefer and "$top" not in ctx.args and token.get("n"):
        ctx.args["$top"] = str(token["n"])
    if "outlook.timezone" not in prefer and token.get("z"):
        joined = f'{ctx.prefer}, outlook.timezone="{token["z"]}"' if ctx.prefer else ""
        ctx.headers["prefer"] = joined or f'outlook.timezone="{token["z"]}"'


def token_encode(payload: dict[str, Any]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )


def token_decode(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise GraphError(
            400, "ErrorInvalidSyncStateData", "The sync state data is corrupt."
        ) from exc
    if not isinstance(data, dict):
        raise GraphError(400, "ErrorInvalidSyncStateData", "The sync state data is corrupt.")
    return data


def normalize_instant(value: Any) -> str | None:
    """Graph's UTC form (`2026-11-22T10:00:00Z`), so string order is time order."""
    if not value:
        return None
    try:
        return cal.parse_instant(str(value)).strftime("%Y-%m-%dT%H:%M:%SZ")
    except cal.CalendarError as exc:
        raise bad(f"Invalid date/time '{value}'.", "ErrorInvalidRequest") from exc


def message_data(body: dict[str, Any], draft: bool) -> dict[str, Any]:
    """A stored message from a Graph-shaped body (shared by POST, deliver and the seeds)."""
    now = now_iso()
    text = body.get("body") or {"contentType": "text", "content": ""}
    content = str(text.get("content", ""))
    preview = re.sub(r"<[^>]+>", " ", content)
    preview = re.sub(r"\s+", " ", preview).strip()[:255]
    sender = (
        recipient(body["from"])
        if body.get("from")
        else recipient(f"{DEMO_USER.name} <{DEMO_USER.email}>")
    )
    received = normalize_instant(body.get("receivedDateTime")) or now
    data: dict[str, Any] = {
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "categories": list(body.get("categories") or []),
        "receivedDateTime": received,
        "sentDateTime": normalize_instant(body.get("sentDateTime")) or received,
        "hasAttachments": False,
        "internetMessageId": body.get("internetMessageId")
        or f"<{uuid.uuid4().hex}@{DEMO_USER.email.split('@')[1]}>",
        "subject": body.get("subject") or "",
        "bodyPreview": preview,
        "importance": body.get("importance") or "normal",
        "conversationId": body.get("conversationId") or new_id("AAQkAG"),
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": bool(body.get("isRead", draft)),
        "isDraft": draft,
        "webLink": "https://outlook.office365.com/owa/?ItemID=" + secrets.token_urlsafe(12),
        "inferenceClassification": "focused",
        "body": {"contentType": text.get("contentType", "text"), "content": content},
        "sender": sender,
        "from": sender,
        "toRecipients": [recipient(r) for r in body.get("toRecipients") or []],
        "ccRecipients": [recipient(r) for r in body.get("ccRecipients") or []],
        "bccRecipients": [recipient(r) for r in body.get("bccRecipients") or []],
        "replyTo": [recipient(r) for r in body.get("replyTo") or []],
        "flag": {"flagStatus": "notFlagged"},
        "_headers": list(body.get("internetMessageHeaders") or []),
    }
    merge_sv(data, body.get("singleValueExtendedProperties"))
    return data


class Graph:
    """Route and serve Graph calls against the service's store."""

    def __init__(self, service: MicrosoftService) -> None:
        self.service = service
        self.store = service.store

    @property
    def url(self) -> str:
        return f"{self.service.base_url}/graph/v1.0"

    # -- helpers ----------------------------------------------------------------------------------
    def oid(self, item: Item, ctx: Ctx) -> str:
        return item.id if ctx.immutable else item.rest_id

    def wk(self, name: str) -> str:
        value = self.store.get_meta(f"wk:{name}")
        if value is None:
            raise not_found("folder")
        return value

    def folder(self, ref: str) -> Item:
        ref_id = self.store.get_meta(f"wk:{ref.lower()}") if ref.lower() in WELL_KNOWN else ref
        item = self.store.get(ref_id or "", "mailFolder")
        if item is None:
            raise not_found("folder")
        return item

    def get(self, ref: str, kind: str, what: str = "object") -> Item:
        item = self.store.get(ref, kind)
        if item is None:
            raise not_found(what)
        return item

    def link(self, ctx: Ctx, extra: dict[str, str]) -> str:
        args = {
            k: v for k, v in ctx.args.items() if k not in ("$skip", "$skiptoken", "$deltatoken")
        }
        args.update(extra)
        return f"{self.url}{ctx.path}?{urlencode(args, quote_via=quote, safe='$,()=:')}"

    def collection(
        self,
        ctx: Ctx,
        kind: str,
        parent: str | None,
        render: Callable[[Item], dict[str, Any]],
        desc: bool = False,
    ) -> Result:
        """A paged list ($top/$skip/$filter/$select) with Graph's @odata.nextLink."""
        top = ctx.page_size()
        skip = int(ctx.args.get("$skip", "0") or 0)
        match = compile_filter(ctx.args.get("$filter"))
        order = ctx.args.get("$orderby", "").lower()
        if order:
            desc = order.endswith(" desc")
        if match is None:
            items = self.store.page(kind, parent, skip, top + 1, desc)
            more = len(items) > top
            items = items[:top]
        else:
            every = [i for i in self.store.list_items(kind, parent, desc=desc) if match(i.data)]
            more = len(every) > skip + top
            items = every[skip : skip + top]
        out: dict[str, Any] = {
            "@odata.context": f"{GRAPH}/$metadata#{kind}s",
            "value": [apply_select(render(i), ctx.select()) for i in items],
        }
        if more:
            out["@odata.nextLink"] = self.link(ctx, {"$skip": str(skip + top)})
        return 200, {}, out

    # -- dispatch ---------------------------------------------------------------------------------
    def dispatch(self, ctx: Ctx) -> Result:
        s = ctx.segs
        if len(s) >= 2 and s[0] == "users" and s[1].lower() in (DEMO_USER.email, USER_OID):
            s = ["me", *s[2:]]
        if not s or s[0] != "me":
            raise bad(f"Resource not found for the segment '{s[0] if s else ''}'.")
        m = ctx.method
        rest = s[1:]
        if not rest:
            return self.me(ctx)
        head = rest[0]
        if head == "mailFolders":
            return self.mail_folders(ctx, rest[1:])
        if head == "messages":
            return self.messages(ctx, rest[1:], None)
        if head == "outlook" and len(rest) >= 2 and rest[1] == "masterCategories":
            return self.categories(ctx, rest[2:])
        if head == "contactFolders":
            return self.contact_folders(ctx, rest[1:])
        if head == "contacts":
            return self.contacts(ctx, rest[1:], self.wk("contacts"))
        if head == "events" or (head == "calendar" and rest[1:2] == ["events"]):
            return self.events(ctx, rest[1:] if head == "events" else rest[2:])
        if head == "calendar" and len(rest) == 1 and m == "GET":
            item = self.get(self.wk("calendar"), "calendar")
            return 200, {}, {"id": item.id, **public(item.data)}
        if head == "calendarView" or (head == "calendar" and rest[1:2] == ["calendarView"]):
            tail = rest[1:] if head == "calendarView" else rest[2:]
            if tail == ["delta"] and m == "GET":
                return self.calendar_delta(ctx)
            if not tail and m == "GET":
                return self.calendar_view(ctx)
        if head == "todo" and rest[1:2] == ["lists"]:
            return self.todo(ctx, rest[2:])
        raise bad(f"Resource not found for the segment '{head}'.")

    def me(self, ctx: Ctx) -> Result:
        u = DEMO_USER
        data = {
            "@odata.context": f"{GRAPH}/$metadata#users/$entity",
            "businessPhones": [u.phone],
            "displayName": u.name,
            "givenName": u.first,
            "jobTitle": u.title,
            "mail": u.email,
            "mobilePhone": None,
            "officeLocation": "San Francisco",
            "preferredLanguage": "en-US",
            "surname": u.last,
            "userPrincipalName": u.email,
            "id": USER_OID,
        }
        return 200, {}, apply_select(data, ctx.select())

    # -- mail folders -----------------------------------------------------------------------------
    def render_folder(self, item: Item) -> dict[str, Any]:
        with self.store.lock:
            c = self.store.conn
            total = c.execute(
                "SELECT COUNT(*) FROM items WHERE kind='message' AND parent=?", (item.id,)
            ).fetchone()[0]
            unread = c.execute(
                "SELECT COUNT(*) FROM items WHERE kind='message' AND parent=? "
                "AND json_extract(data,'$.isRead')=0",
                (item.id,),
            ).fetchone()[0]
            children = c.execute(
                "SELECT COUNT(*) FROM items WHERE kind='mailFolder' AND parent=?", (item.id,)
            ).fetchone()[0]
        return {
            "id": item.id,
            "displayName": item.data["displayName"],
            "parentFolderId": item.parent,
            "childFolderCount": children,
            "unreadItemCount": unread,
            "totalItemCount": total,
            "sizeInBytes": 0,
            "isHidden": False,
        }

    def create_folder(self, ctx: Ctx, parent: Item) -> Result:
        body = ctx.json()
        name = str(body.get("displayName") or "").strip()
        if not name:
            raise bad("The displayName property is required.", "ErrorInvalidRequest")
        for sibling in self.store.list_items("mailFolder", parent.id):
            if sibling.data["displayName"].lower() == name.lower():
                raise GraphError(
                    409, "ErrorFolderExists", "A folder with the specified name already exists."
                )
        item = self.store.insert(
            "mailFolder",
            parent.id,
            {"displayName": name},
            sort=name.lower(),
            item_id=new_id("AAMkAGF"),
        )
        return 201, {}, self.render_folder(item)

    def mail_folders(self, ctx: Ctx, rest: list[str]) -> Result:
        m = ctx.method
        root = self.folder("msgfolderroot")
        if not rest:
            if m == "GET":
                return self.collection(ctx, "mailFolder", root.id, self.render_folder)
            if m == "POST":
                return self.create_folder(ctx, root)
            raise GraphError(405, "BadRequest", "Method not allowed.")
        folder = self.folder(rest[0])
        tail = rest[1:]
        if not tail:
            if m == "GET":
                return 200, {}, apply_select(self.render_folder(folder), ctx.select())
            if m == "PATCH":
                name = str(ctx.json().get("displayName") or folder.data["displayName"])
                data = dict(folder.data, displayName=name)
                return (
                    200,
                    {},
                    self.render_folder(self.store.update(folder, data, sort=name.lower())),
                )
            if m == "DELETE":
                if folder.data.get("_wellKnown"):
                    raise GraphError(
                        403,
                        "ErrorDeleteDistinguishedFolder",
                        "Distinguished folders cannot be deleted.",
                    )
                for msg in self.store.list_items("message", folder.id):
                    self.store.delete(msg)
                self.store.delete(folder)
                return 204, {}, None
        if tail[0] == "childFolders" and len(tail) == 1:
            if m == "GET":
                return self.collection(ctx, "mailFolder", folder.id, self.render_folder)
            if m == "POST":
                return self.create_folder(ctx, folder)
        if tail[0] == "messages":
            return self.messages(ctx, tail[1:], folder)
        raise bad(f"Resource not found for the segment '{tail[0]}'.")

    # -- messages ---------------------------------------------------------------------------------
    def render_message(self, item: Item, ctx: Ctx) -> dict[str, Any]:
        data = public(item.data)
        out: dict[str, Any] = {
            "@odata.etag": etag(item),
            "id": self.oid(item, ctx),
            **data,
            "parentFolderId": item.parent,
            "changeKey": etag(item)[3:-1],
        }
        select = ctx.select()
        if select and any(s.lower() == "internetmessageheaders" for s in select):
            out["internetMessageHeaders"] = item.data.get("_headers", [])
        sv = expanded_sv(ctx, item.data)
        if sv:
            out["singleValueExtendedProperties"] = sv
        if "attachments" in ctx.args.get("$expand", "").lower():
            out["attachments"] = [
                self.render_attachment(a, meta, content, True)
                for a, meta, content in self.store.attachments(item.id)
            ]
        return apply_select(out, select)

    def new_message(self, folder: Item, body: dict[str, Any], draft: bool) -> Item:
        """Create a message from a Graph-shaped body; attachments inline are stored too."""
        data = message_data(body, draft)
        item = self.store.insert("message", folder.id, data, sort=data["receivedDateTime"])
        atts = body.get("attachments") or []
        if atts:
            for att in atts:
                self.add_attachment(item, att, touch=False)
            item = self.refresh_has_attachments(item)
        return item

    def refresh_has_attachments(self, item: Item) -> Item:
        fresh = self.store.get(item.id, "message")
        if fresh is None:
            raise not_found()
        has = any(not meta.get("isInline") for _, meta, _ in self.store.attachments(item.id))
        return self.store.update(fresh, dict(fresh.data, hasAttachments=has))

    def messages(self, ctx: Ctx, rest: list[str], folder: Item | None) -> Result:
        m = ctx.method

        def render(i: Item) -> dict[str, Any]:
            return self.render_message(i, ctx)

        if not rest:
            if m == "GET":
                return self.collection(
                    ctx, "message", folder.id if folder else None, render, desc=True
                )
            if m == "POST":
                target = folder or self.folder("drafts")
                return 201, {}, render(self.new_message(target, ctx.json(), draft=True))
            raise GraphError(405, "BadRequest", "Method not allowed.")
        if rest == ["delta"] and m == "GET":
            if folder is None:
                raise bad(
                    "Change tracking is not supported against 'microsoft.graph.message'; "
                    "use a mail folder."
                )
            return self.delta(ctx, "message", folder.id, render, "SyncStateNotFound")
        item = self.get(rest[0], "message", "message")
        if folder is not None and item.parent != folder.id:
            raise not_found("message")
        tail = rest[1:]
        if not tail:
            if m == "GET":
                return 200, {}, render(item)
            if m == "PATCH":
                body = ctx.json()
                data = dict(item.data)
                for key, value in body.items():
                    if key == "singleValueExtendedProperties":
                        merge_sv(data, value)
                    elif key not in READ_ONLY and not key.startswith("_"):
                        data[key] = value
                data["lastModifiedDateTime"] = now_iso()
                return 200, {}, render(self.store.update(item, data))
            if m == "DELETE":
                deleted = self.folder("deleteditems")
                if item.parent == deleted.id:
                    self.store.delete(item)
                else:
                    self.store.move(item, deleted.id, change_rest_id=True)
                return 204, {}, None
        if tail == ["move"] and m == "POST":
            dest = self.folder(str(ctx.json().get("destinationId") or ""))
            moved = (
                self.store.move(item, dest.id, change_rest_id=True)
                if dest.id != item.parent
                else item
            )
            return 201, {}, render(moved)
        if tail[0] == "attachments":
            return self.attachments(ctx, item, tail[1:])
        raise bad(f"Resource not found for the segment '{tail[0]}'.")

    # -- attachments ------------------------------------------------------------------------------
    def render_attachment(
        self, aid: str, meta: dict[str, Any], content: bytes, with_bytes: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@odata.type": meta.get("@odata.type", "#microsoft.graph.fileAttachment"),
            "id": aid,
            "lastModifiedDateTime": meta.get("lastModifiedDateTime"),
            "name": meta.get("name"),
            "contentType": meta.get("contentType"),
            "size": meta.get("size", len(content)),
            "isInline": bool(meta.get("isInline")),
        }
        if out["@odata.type"] == "#microsoft.graph.fileAttachment":
            out["contentId"] = meta.get("contentId")
            out["contentLocation"] = None
            if with_bytes:
                out["contentBytes"] = base64.b64encode(content).decode()
        return out

    def add_attachment(self, item: Item, att: dict[str, Any], touch: bool = True) -> str:
        kind = att.get("@odata.type", "#microsoft.graph.fileAttachment")
        if not kind.startswith("#"):
            kind = "#" + kind
        meta: dict[str, Any] = {
            "@odata.type": kind,
            "name": att.get("name") or "attachment",
            "contentType": att.get("contentType") or "application/octet-stream",
            "isInline": bool(att.get("isInline")),
            "contentId": att.get("contentId"),
            "lastModifiedDateTime": now_iso(),
        }
        content = b""
        if kind == "#microsoft.graph.fileAttachment":
            if att.get("contentBytes") is not None:
                try:
                    content = base64.b64decode(att["contentBytes"], validate=True)
                except (ValueError, binascii.Error) as exc:
                    raise bad("contentBytes is not valid base64.") from exc
            else:
                size = int(att.get("size") or 0)
                content = (b"%PDF-1.4 sandbox attachment\n" * (size // 28 + 1))[:size]
            if touch and len(content) > INLINE_ATTACHMENT_MAX:
                raise GraphError(
                    413,
                    "ErrorRequestEntityTooLarge",
                    "The attachment exceeds 3 MB; use an upload session.",
                )
        elif kind == "#microsoft.graph.referenceAttachment":
            meta["sourceUrl"] = att.get("sourceUrl")
            meta["contentType"] = att.get("contentType") or "text/html"
        else:
            raise bad(f"Attachment type {kind} is not supported by the sandbox.")
        meta["size"] = len(content) + (0 if kind.endswith("fileAttachment") else 256)
        aid = self.store.add_attachment(item.id, meta, content)
        if touch:
            self.refresh_has_attachments(item)
        return aid

    def attachments(self, ctx: Ctx, item: Item, rest: list[str]) -> Result:
        m = ctx.method
        if not rest:
            if m == "GET":
                atts = [
                    self.render_attachment(a, meta, c, True)
                    for a, meta, c in self.store.attachments(item.id)
                ]
                return (
                    200,
                    {},
                    {
                        "@odata.context": f"{GRAPH}/$metadata#attachments",
                        "value": [apply_select(a, ctx.select()) for a in atts],
                    },
                )
            if m == "POST":
                aid = self.add_attachment(item, ctx.json())
                found = next(x for x in self.store.attachments(item.id) if x[0] == aid)
                return 201, {}, self.render_attachment(*found, with_bytes=True)
        if rest == ["createUploadSession"] and m == "POST":
            spec = ctx.json().get("AttachmentItem") or {}
            size = int(spec.get("size") or 0)
            if size < INLINE_ATTACHMENT_MAX:
                raise bad(
                    "The attachment size is smaller than the minimum size for an upload "
                    "session (3 MB).",
                    "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                )
            if size > UPLOAD_MAX:
                raise bad("The attachment exceeds the maximum size.", "ErrorAttachmentSizeExceeded")
            uid = secrets.token_urlsafe(24)
            expires = time.time() + 900
            meta = {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": spec.get("name") or "attachment",
                "contentType": spec.get("contentType") or "application/octet-stream",
                "isInline": bool(spec.get("isInline")),
                "contentId": spec.get("contentId"),
            }
            self.store.put_upload(uid, item.id, meta, size, expires)
            return (
                201,
                {},
                {
                    "@odata.context": f"{GRAPH}/$metadata#microsoft.graph.uploadSession",
                    "uploadUrl": f"{self.service.base_url}/graph/upload/{uid}",
                    "expirationDateTime": dt.datetime.fromtimestamp(expires, dt.UTC).strftime(
                        "%Y-%m-%dT%H:%M:%S.0000000Z"
                    ),
                    "nextExpectedRanges": ["0-"],
                },
            )
        match = next((x for x in self.store.attachments(item.id) if x[0] == rest[0]), None)
        if match is None:
            raise not_found("attachment")
        found = match
        if len(rest) == 1:
            if m == "GET":
                return (
                    200,
                    {},
                    apply_select(self.render_attachment(*found, with_bytes=True), ctx.select()),
                )
            if m == "DELETE":
                self.store.delete_attachment(item.id, found[0])
                self.refresh_has_attachments(item)
                return 204, {}, None
        if rest[1:] == ["$value"] and m == "GET":
            return (
                200,
                {"Content-Type": found[1].get("contentType", "application/octet-stream")},
                found[2],
            )
        raise bad(f"Resource not found for the segment '{rest[-1]}'.")

    def upload(self, method: str, uid: str, content_range: str, chunk: bytes) -> Result:
        """PUT a byte range to a pre-authenticated upload URL (no bearer token, like Outlook's)."""
        found = self.store.get_upload(uid)
        if found is None or found[4] < time.time():
            raise GraphError(
                404, "ErrorItemNotFound", "The upload session was not found or has expired."
            )
        message_id, meta, size, received, expires = found
        if method == "DELETE":
            self.store.drop_upload(uid)
            return 204, {}, None
        if method != "PUT":
            raise GraphError(405, "BadRequest", "Use PUT to upload a byte range.")
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range.strip())
        if m is None:
            raise bad("Content-Range is required: bytes start-end/total.", "InvalidContentRange")
        start, end, total = (int(x) for x in m.groups())
        if total != size or start != len(received) or end < start or end - start + 1 != len(chunk):
            raise GraphError(
                416,
                "InvalidRange",
                f"The byte range does not match; next expected range is {len(received)}-.",
            )
        if len(chunk) > UPLOAD_CHUNK_MAX:
            raise bad("A byte range may not exceed 4 MB.", "InvalidContentRange")
        received += chunk
        exp = dt.datetime.fromtimestamp(expires, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        if len(received) < size:
            self.store.set_upload_received(uid, received)
            return 200, {}, {"expirationDateTime": exp, "nextExpectedRanges": [f"{len(received)}-"]}
        item = self.store.get(message_id, "message")
        self.store.drop_upload(uid)
        if item is None:
            raise not_found("message")
        meta["size"] = size
        meta["lastModifiedDateTime"] = now_iso()
        aid = self.store.add_attachment(item.id, meta, received)
        self.refresh_has_attachments(item)
        location = f"{self.url}/me/messages/{item.id}/attachments/{aid}"
        return 201, {"Location": location}, None

    # -- delta (messages, contacts, tasks) --------------------------------------------------------
    def check_token(self, token: dict[str, Any], container: str, code: str) -> None:
        gone = GraphError(
            410,
            code,
            "The sync state generation is not found. Restart the synchronization without a token.",
        )
        if int(token.get("e", -1)) != int(self.store.get_meta("delta_epoch", "0") or 0):
            raise gone  # invalidated, or issued before a reset
        if token.get("p") != container:
            raise bad(
                "The delta token does not belong to this collection.", "ErrorInvalidSyncStateData"
            )
        if time.time() - float(token.get("t", 0)) > self.service.setting("delta_token_max_age_s"):
            raise gone

    def delta(
        self,
        ctx: Ctx,
        kind: str,
        container: str,
        render: Callable[[Item], dict[str, Any]],
        code: str,
    ) -> Result:
        """A change-tracking round: pages of items and @removed entries, then a deltaLink.

        The token carries the sequence number the client is synced up to, so a round with no
        change is one indexed query and one call.
        """
        epoch = int(self.store.get_meta("delta_epoch", "0") or 0)
        skip = ctx.args.get("$skiptoken")
        delta = ctx.args.get("$deltatoken")
        select = ctx.select()
        filt = ctx.args.get("$filter")
        if skip or delta:
            token = token_decode(skip or delta or "")
            self.check_token(token, container, code)
            inherit_preferences(ctx, token)
            select = token.get("sel") or select
            if token.get("x"):  # Graph keeps the round's $expand in its links
                ctx.args["$expand"] = token["x"]
            filt = token.get("f") or filt
            since = int(token["s"])
            cursor = int(token.get("c", since)) if skip else since
            upto = int(token["u"]) if skip else self.store.current_seq()
            initial = bool(token.get("i")) if skip else False
        else:
            since, cursor, upto, initial = 0, 0, self.store.current_seq(), True
        match = compile_filter(filt)
        size = ctx.page_size()
        value: list[dict[str, Any]] = []
        done = False
        while len(value) < size and not done:
            batch = self.store.changes(
                kind, container, cursor, upto, limit=size - len(value), initial=initial
            )
            if len(batch) < size - len(value):
                done = True
            for seq, item, removal in batch:
                cursor = seq
                if item is not None:
                    if match is None or match(item.data):
                        value.append(apply_select(render(item), select))
                elif removal is not None:
                    value.append(
                        {
                            "@odata.type": f"#microsoft.graph.{kind}",
                            "id": removal["id"] if ctx.immutable else removal["rest_id"],
                            "@removed": {"reason": removal["reason"]},
                        }
                    )
            if not batch:
                done = True
        common = {
            "p": container,
            "e": epoch,
            "t": time.time(),
            "sel": select,
            "n": size,
            "f": filt,
            "x": ctx.args.get("$expand"),
        }
        out: dict[str, Any] = {
            "@odata.context": f"{GRAPH}/$metadata#Collection({kind})",
            "value": value,
        }
        base = f"{self.url}{ctx.path}"
        if not done:
            tok = token_encode({**common, "s": since, "c": cursor, "u": upto, "i": initial})
            out["@odata.nextLink"] = f"{base}?$skiptoken={tok}"
        else:
            tok = token_encode({**common, "s": upto})
            out["@odata.deltaLink"] = f"{base}?$deltatoken={tok}"
        return 200, {}, out

    # -- categories -------------------------------------------------------------------------------
    def categories(self, ctx: Ctx, rest: list[str]) -> Result:
        m = ctx.method

        def render(i: Item) -> dict[str, Any]:
            return {"id": i.id, **public(i.data)}

        if not rest:
            if m == "GET":
                return self.collection(ctx, "category", "outlook", render)
            if m == "POST":
                body = ctx.json()
                name = str(body.get("displayName") or "").strip()
                if not name:
                    raise bad("displayName is required.", "ErrorInvalidRequest")
                if any(
                    c.data["displayName"].lower() == name.lower()
                    for c in self.store.list_items("category", "outlook")
                ):
                    raise GraphError(
                        409, "ErrorAlreadyExists", "A category with this name already exists."
                    )
                color = str(body.get("color") or "preset0")
                if not re.fullmatch(r"none|preset([0-9]|1[0-9]|2[0-4])", color):
                    raise bad(f"Invalid color '{color}'.", "ErrorInvalidRequest")
                item = self.store.insert(
                    "category",
                    "outlook",
                    {"displayName": name, "color": color},
                    sort=name.lower(),
                    item_id=str(uuid.uuid4()),
                )
                return 201, {}, render(item)
        item = self.get(rest[0], "category", "category")
        if m == "GET":
            return 200, {}, render(item)
        if m == "PATCH":
            color = ctx.json().get("color", item.data["color"])
            return 200, {}, render(self.store.update(item, dict(item.data, color=color)))
        if m == "DELETE":
            self.store.delete(item)
            return 204, {}, None
        raise GraphError(405, "BadRequest", "Method not allowed.")

    # -- contacts ---------------------------------------------------------------------------------
    def render_contact(self, item: Item, ctx: Ctx) -> dict[str, Any]:
        out = {
            "@odata.etag": etag(item),
            "id": item.id,
            **public(item.data),
            "parentFolderId": item.parent,
            "changeKey": etag(item)[3:-1],
        }
        sv = expanded_sv(ctx, item.data)
        if sv:
            out["singleValueExtendedProperties"] = sv
        return apply_select(out, ctx.select())

    def contact_data(
        self, body: dict[str, Any], base: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data = dict(
            base
            or {
                "createdDateTime": now_iso(),
                "categories": [],
                "emailAddresses": [],
                "businessPhones": [],
                "homePhones": [],
            }
        )
        for key, value in body.items():
            if key == "singleValueExtendedProperties":
                merge_sv(data, value)
            elif key not in READ_ONLY and not key.startswith("_"):
                data[key] = value
        if "displayName" not in body and ("givenName" in body or "surname" in body or base is None):
            data["displayName"] = " ".join(
                x for x in (data.get("givenName"), data.get("surname")) if x
            ) or data.get("displayName", "")
        data["lastModifiedDateTime"] = modified_iso()
        return data

    def contact_folders(self, ctx: Ctx, rest: list[str]) -> Result:
        m = ctx.method
        default = self.wk("contacts")

        def render(i: Item) -> dict[str, Any]:
            return {"id": i.id, "displayName": i.data["displayName"], "parentFolderId": i.parent}

        if not rest:
            if m == "GET":
                return self.collection(ctx, "contactFolder", default, render)
            if m == "POST":
                name = str(ctx.json().get("displayName") or "").strip()
                if not name:
                    raise bad("displayName is required.", "ErrorInvalidRequest")
                if any(
                    f.data["displayName"].lower() == name.lower()
                    for f in self.store.list_items("contactFolder", default)
                ):
                    raise GraphError(
                        409, "ErrorFolderExists", "A folder with the specified name already exists."
                    )
                item = self.store.insert(
                    "contactFolder",
                    default,
                    {"displayName": name},
                    sort=name.lower(),
                    item_id=new_id("AAMkAGC"),
                )
                return 201, {}, render(item)
        folder = self.get(rest[0], "contactFolder", "folder")
        if len(rest) == 1:
            if m == "GET":
                return 200, {}, render(folder)
            if m == "DELETE":
                if folder.id == default:
                    raise GraphError(
                        403,
                        "ErrorDeleteDistinguishedFolder",
                        "Distinguished folders cannot be deleted.",
                    )
                for c in self.store.list_items("contact", folder.id):
                    self.store.delete(c)
                self.store.delete(folder)
                return 204, {}, None
            if m == "PATCH":
                name = str(ctx.json().get("displayName") or folder.data["displayName"])
                return (
                    200,
                    {},
                    render(
                        self.store.update(
                            folder, dict(folder.data, displayName=name), sort=name.lower()
                        )
                    ),
                )
        if rest[1] == "contacts":
            return self.contacts(ctx, rest[2:], folder.id)
        raise bad(f"Resource not found for the segment '{rest[1]}'.")

    def contacts(self, ctx: Ctx, rest: list[str], folder_id: str) -> Result:
        m = ctx.method

        def render(i: Item) -> dict[str, Any]:
            return self.render_contact(i, ctx)

        if not rest:
            if m == "GET":
                return self.collection(ctx, "contact", folder_id, render)
            if m == "POST":
                data = self.contact_data(ctx.json())
                item = self.store.insert(
                    "contact",
                    folder_id,
                    data,
                    sort=str(data.get("displayName", "")).lower(),
                    item_id=new_id("AAMkAGD"),
                )
                return 201, {}, render(item)
        if rest == ["delta"] and m == "GET":
            return self.delta(ctx, "contact", folder_id, render, "SyncStateNotFound")
        item = self.get(rest[0], "contact", "contact")
        if item.parent != folder_id and folder_id != self.wk("contacts"):
            raise not_found("contact")
        if len(rest) == 1:
            if m == "GET":
                return 200, {}, render(item)
            if m == "PATCH":
                data = self.contact_data(ctx.json(), item.data)
                return (
                    200,
                    {},
                    render(
                        self.store.update(item, data, sort=str(data.get("displayName", "")).lower())
                    ),
                )
            if m == "DELETE":
                self.store.delete(item)
                return 204, {}, None
        raise bad(f"Resource not found for the segment '{rest[-1]}'.")

    # -- events -----------------------------------------------------------------------------------
    RESPONSES = frozenset(
        {"none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"}
    )

    def respond(self, event_id: str, email: str, response: str) -> dict[str, Any]:
        """An attendee answered the invitation: the organizer's copy shows it in the attendee's
        `status` (response and time) and changes (new changeKey, in the calendar's delta), as
        Exchange records a meeting response. The admin API's stand-in for the attendee's reply;
        Graph itself lets no client set another attendee's status."""
        if response not in self.RESPONSES:
            raise bad(f"unknown response {response!r}")
        item = self.get(event_id, "event", "event")
        data = dict(item.data)
        attendees = [dict(a) for a in data.get("attendees") or []]
        found = [
            a
            for a in attendees
            if str((a.get("emailAddress") or {}).get("address", "")).lower() == email.lower()
        ]
        if not found:
            raise GraphError(404, "ErrorItemNotFound", f"{email} is not an attendee")
        for attendee in found:
            attendee["status"] = {"response": response, "time": now_iso()}
        data["attendees"] = attendees
        data["lastModifiedDateTime"] = modified_iso()
        updated = self.store.update(item, data)
        return {"id": updated.id, "changeKey": etag(updated)[3:-1]}

    def event_data(
        self, body: dict[str, Any], base: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        now = now_iso()
        data = dict(
            base
            or {
                "createdDateTime": now,
                "categories": [],
                "attendees": [],
                "sensitivity": "normal",
                "showAs": "busy",
                "isAllDay": False,
                "isCancelled": False,
                "isOrganizer": True,
                "importance": "normal",
                "subject": "",
                "body": {"contentType": "html", "content": ""},
                "location": {"displayName": ""},
                "organizer": recipient(f"{DEMO_USER.name} <{DEMO_USER.email}>"),
                "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
                "recurrence": None,
                "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            }
        )
        for key, value in body.items():
            if key == "singleValueExtendedProperties":
                merge_sv(data, value)
            elif key == "attendees":
                data["attendees"] = [
                    {
                        "type": a.get("type", "required"),
                        "status": a.get("status")
                        or {"response": "none", "time": "0001-01-01T00:00:00Z"},
                        **recipient(a),
                    }
                    for a in value or []
                ]
            elif (
                key not in READ_ONLY
                and key not in ("type", "seriesMasterId", "originalStart")
                and not key.startswith("_")
            ):
                data[key] = value
        for edge in ("start", "end"):
            if not isinstance(data.get(edge), dict):
                raise bad(f"The '{edge}' property is required.", "ErrorInvalidRequest")
            try:
                cal.to_utc(data[edge])
            except cal.CalendarError as exc:
                raise bad(str(exc), "TimeZoneNotSupportedException") from exc
        if cal.to_utc(data["end"]) < cal.to_utc(data["start"]):
            raise bad("The end of the event must be after its start.", "ErrorInvalidRequest")
        if data.get("isAllDay"):
            for edge in ("start", "end"):
                local = cal.parse_local(data[edge]["dateTime"])
                if local.time() != dt.time(0):
                    raise bad(
                        "The start and end of an all-day event must be at midnight.",
                        "ErrorPropertyValidationFailure",
                    )
        data["type"] = "seriesMaster" if data.get("recurrence") else "singleInstance"
        data["lastModifiedDateTime"] = modified_iso()
        data.setdefault("_exceptions", {})
        data.setdefault("_cancelled", [])
        return data

    def render_event(
        self,
        item_id: str,
        data: dict[str, Any],
        ctx: Ctx,
        seq: int,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        tz = ctx.tz
        try:
            start, end = cal.to_utc(data["start"]), cal.to_utc(data["end"])
            if data.get("isAllDay"):
                # all-day items keep their local dates, whatever zone is asked for
                out_start = {
                    "dateTime": cal.parse_local(data["start"]["dateTime"]).strftime(
                        "%Y-%m-%dT%H:%M:%S.0000000"
                    ),
                    "timeZone": tz,
                }
                out_end = {
                    "dateTime": cal.parse_local(data["end"]["dateTime"]).strftime(
                        "%Y-%m-%dT%H:%M:%S.0000000"
                    ),
                    "timeZone": tz,
                }
            else:
                out_start, out_end = cal.render(start, tz), cal.render(end, tz)
        except cal.CalendarError as exc:
            raise bad(str(exc), "TimeZoneNotSupportedException") from exc
        tag = f'W/"DwAAABYAAAA{seq:012d}"'
        out: dict[str, Any] = {
            "@odata.etag": tag,
            "id": item_id,
            **public(data),
            "start": out_start,
            "end": out_end,
            "originalStartTimeZone": data["start"].get("timeZone"),
            "originalEndTimeZone": data["end"].get("timeZone"),
            "seriesMasterId": None,
            "changeKey": tag[3:-1],
        }
        out.update(extra or {})
        sv = expanded_sv(ctx, data)
        if sv:
            out["singleValueExtendedProperties"] = sv
        return out

    @staticmethod
    def occ_key(start: dt.datetime) -> str:
        return start.strftime("%Y%m%dT%H%M%SZ")

    def instances(
        self, item: Item, ctx: Ctx, ws: dt.datetime, we: dt.datetime
    ) -> tuple[list[tuple[dt.datetime, dict[str, Any]]], list[str]]:
        """Rendered occurrences/exceptions of a series in a window, and the ids of occurrences
        that left it: cancelled, or moved by an exception out of the window (Graph's
        calendarView/delta reports both as @removed)."""
        data = item.data
        out: list[tuple[dt.datetime, dict[str, Any]]] = []
        cancelled: list[str] = []
        duration = cal.to_utc(data["end"]) - cal.to_utc(data["start"])
        for start in cal.occurrence_starts(
            data, ws - dt.timedelta(days=2), we + dt.timedelta(days=2)
        ):
            key = self.occ_key(start)
            oid = f"{item.id}_{key}"
            if key in data.get("_cancelled", []):
                if start < we and start + duration > ws:
                    cancelled.append(oid)
                continue
            occ = dict(data)
            occ.pop("recurrence", None)
            override = data.get("_exceptions", {}).get(key)
            kind = "occurrence"
            occ["start"] = {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
            occ["end"] = {
                "dateTime": (start + duration).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            }
            if data.get("isAllDay"):
                local = start.astimezone(cal.zone(data["start"].get("timeZone"))).replace(
                    tzinfo=None
                )
                occ["start"] = {
                    "dateTime": local.isoformat(),
                    "timeZone": data["start"].get("timeZone"),
                }
                occ["end"] = {
                    "dateTime": (local + duration).isoformat(),
                    "timeZone": data["start"].get("timeZone"),
                }
            if override:
                occ.update({k: v for k, v in override.items() if not k.startswith("_")})
                kind = "exception"
            actual = cal.to_utc(occ["start"])
            if not (actual < we and cal.to_utc(occ["end"]) > ws):
                if start < we and start + duration > ws:
                    cancelled.append(oid)  # its slot is in the window, the meeting is not
                continue
            rendered = self.render_event(
                oid,
                occ,
                ctx,
                item.seq,
                {
                    "type": kind,
                    "seriesMasterId": item.id,
                    "originalStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "recurrence": None,
                    "iCalUId": data["iCalUId"][:-16] + key.replace("T", "")[:14].ljust(16, "0"),
                    "originalStartTimeZone": data["start"].get("timeZone"),
                    "originalEndTimeZone": data["end"].get("timeZone"),
                },
            )
            out.append((actual, rendered))
        return out, cancelled

    def event_and_key(self, ref: str) -> tuple[Item, str | None]:
        """An event id, or an occurrence id: `{series id}_{original UTC start}`."""
        direct = self.store.get(ref, "event")
        if direct is not None:
            return direct, None
        if "_" in ref:
            master_id, key = ref.rsplit("_", 1)
            master = self.get(master_id, "event", "event")
            if master.data.get("type") != "seriesMaster":
                raise not_found("event")
            return master, key
        return self.get(ref, "event", "event"), None

    def events(self, ctx: Ctx, rest: list[str]) -> Result:
        m = ctx.method
        calendar = self.wk("calendar")

        def render(i: Item) -> dict[str, Any]:
            return apply_select(self.render_event(i.id, i.data, ctx, i.seq), ctx.select())

        if not rest:
            if m == "GET":
                return self.collection(ctx, "event", calendar, render)
            if m == "POST":
                data = self.event_data(ctx.json())
                item = self.store.insert(
                    "event",
                    calendar,
                    data,
                    sort=cal.to_utc(data["start"]).isoformat(),
                    item_id=new_id("AAMkAGE"),
                )
                return 201, {}, render(item)
        item, key = self.event_and_key(rest[0])
        if len(rest) == 2 and rest[1] == "instances" and m == "GET" and key is None:
            ws, we = self.window(ctx.args)
            found, _ = (
                self.instances(item, ctx, ws, we)
                if item.data.get("type") == "seriesMaster"
                else ([], [])
            )
            return 200, {}, {"value": [r for _, r in sorted(found, key=lambda x: x[0])]}
        if len(rest) != 1:
            raise bad(f"Resource not found for the segment '{rest[-1]}'.")
        if key is not None:
            return self.occurrence(ctx, item, key)
        if m == "GET":
            return 200, {}, render(item)
        if m == "PATCH":
            data = self.event_data(ctx.json(), item.data)
            return (
                200,
                {},
                render(self.store.update(item, data, sort=cal.to_utc(data["start"]).isoformat())),
            )
        if m == "DELETE":
            self.store.delete(item)
            return 204, {}, None
        raise GraphError(405, "BadRequest", "Method not allowed.")

    def occurrence(self, ctx: Ctx, master: Item, key: str) -> Result:
        """GET/PATCH/DELETE one occurrence: PATCH makes an exception, DELETE cancels it."""
        try:
            original = dt.datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        except ValueError as exc:
            raise not_found("event") from exc
        lo, hi = original - dt.timedelta(days=1), original + dt.timedelta(days=2)
        moved = master.data.get("_exceptions", {}).get(key, {}).get("start")
        if isinstance(moved, dict):  # an exception may have moved it anywhere in time
            actual = cal.to_utc(moved)
            lo, hi = min(lo, actual - dt.timedelta(days=1)), max(hi, actual + dt.timedelta(days=2))
        found, _ = self.instances(master, ctx, lo, hi)
        match = next(
            (r for _, r in found if r["originalStart"] == original.strftime("%Y-%m-%dT%H:%M:%SZ")),
            None,
        )
        if match is None:
            raise not_found("event")
        data = dict(master.data)
        if ctx.method == "GET":
            return 200, {}, apply_select(match, ctx.select())
        data["lastModifiedDateTime"] = modified_iso()  # a changed occurrence changes the series
        if ctx.method == "DELETE":
            data["_cancelled"] = [*data.get("_cancelled", []), key]
            self.store.update(master, data)
            return 204, {}, None
        if ctx.method == "PATCH":
            body = {k: v for k, v in ctx.json().items() if k not in READ_ONLY and k != "recurrence"}
            for edge in ("start", "end"):
                if edge in body:
                    cal.to_utc(body[edge])
            exceptions = dict(data.get("_exceptions", {}))
            exceptions[key] = {
                **exceptions.get(key, {}),
                **body,
                "lastModifiedDateTime": data["lastModifiedDateTime"],
            }
            data["_exceptions"] = exceptions
            updated = self.store.update(master, data)
            return self.occurrence(Ctx("GET", ctx.path, ctx.args, ctx.headers), updated, key)
        raise GraphError(405, "BadRequest", "Method not allowed.")

    @staticmethod
    def window(args: dict[str, str]) -> tuple[dt.datetime, dt.datetime]:
        if not args.get("startDateTime") or not args.get("endDateTime"):
            raise bad(
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
                "ErrorInvalidParameter",
            )
        try:
            return cal.parse_instant(args["startDateTime"]), cal.parse_instant(args["endDateTime"])
        except cal.CalendarError as exc:
            raise bad(str(exc), "ErrorInvalidParameter") from exc

    def view_entries(
        self, ctx: Ctx, events: list[Item], ws: dt.datetime, we: dt.datetime
    ) -> tuple[list[dict[str, Any]], list[str]]:
        entries: list[tuple[dt.datetime, dict[str, Any]]] = []
        cancelled: list[str] = []
        for item in events:
            if item.data.get("type") == "seriesMaster":
                found, gone = self.instances(item, ctx, ws, we)
                entries += found
                cancelled += gone
            else:
                start, end = cal.to_utc(item.data["start"]), cal.to_utc(item.data["end"])
                if start < we and end > ws:
                    entries.append((start, self.render_event(item.id, item.data, ctx, item.seq)))
        entries.sort(key=lambda e: (e[0], e[1]["id"]))
        return [e for _, e in entries], cancelled

    def calendar_view(self, ctx: Ctx) -> Result:
        ws, we = self.window(ctx.args)
        entries, _ = self.view_entries(
            ctx, self.store.list_items("event", self.wk("calendar")), ws, we
        )
        top = ctx.page_size()
        skip = int(ctx.args.get("$skip", "0") or 0)
        out: dict[str, Any] = {
            "value": [apply_select(e, ctx.select()) for e in entries[skip : skip + top]]
        }
        if len(entries) > skip + top:
            out["@odata.nextLink"] = self.link(ctx, {"$skip": str(skip + top)})
        return 200, {}, out

    def calendar_delta(self, ctx: Ctx) -> Result:
        """calendarView/delta: instances in the window; a later round re-sends changed series."""
        calendar = self.wk("calendar")
        epoch = int(self.store.get_meta("delta_epoch", "0") or 0)
        skip, delta = ctx.args.get("$skiptoken"), ctx.args.get("$deltatoken")
        if skip or delta:
            token = token_decode(skip or delta or "")
            self.check_token(token, calendar, "SyncStateNotFound")
            inherit_preferences(ctx, token)
            ws, we = cal.parse_instant(token["ws"]), cal.parse_instant(token["we"])
            since = int(token["s"])
            upto = int(token["u"]) if skip else self.store.current_seq()
            offset = int(token.get("o", 0)) if skip else 0
        else:
            ws, we = self.window(ctx.args)
            since, upto, offset = 0, self.store.current_seq(), 0
        if since == 0:
            events = [e for e in self.store.list_items("event", calendar) if e.seq <= upto]
            entries, _ = self.view_entries(ctx, events, ws, we)
        else:
            changed = self.store.changed_since("event", since, upto)
            entries, cancelled = self.view_entries(ctx, changed, ws, we)
            present = {e["id"] for e in entries}
            removed: list[str] = list(cancelled)
            for item in changed:
                if item.data.get("type") != "seriesMaster" and item.id not in present:
                    removed.append(item.id)
            for rem in self.store.removals_since("event", since, upto):
                removed.append(rem["id"])
                data = json.loads(rem.get("data") or "{}")
                if data.get("type") == "seriesMaster":
                    ghost = Item(rem["id"], rem["rest_id"], "event", rem["parent"], 0, data)
                    found, _ = self.instances(ghost, ctx, ws, we)
                    removed += [r["id"] for _, r in found]
            entries += [{"id": rid, "@removed": {"reason": "deleted"}} for rid in removed]
        size = ctx.page_size()
        page = entries[offset : offset + size]
        common = {
            "p": calendar,
            "e": epoch,
            "t": time.time(),
            "ws": ws.isoformat(),
            "we": we.isoformat(),
            "n": size,
            "z": ctx.tz,
        }
        out: dict[str, Any] = {
            "@odata.context": f"{GRAPH}/$metadata#Collection(event)",
            "value": page,
        }
        base = f"{self.url}{ctx.path}"
        if offset + size < len(entries):
            out["@odata.nextLink"] = f"{base}?$skiptoken=" + token_encode(
                {**common, "s": since, "u": upto, "o": offset + size}
            )
        else:
            out["@odata.deltaLink"] = f"{base}?$deltatoken={token_encode({**common, 's': upto})}"
        return 200, {}, out

    # -- To Do ------------------------------------------------------------------------------------
    def render_list(self, item: Item) -> dict[str, Any]:
        return {
            "@odata.etag": etag(item),
            "id": item.id,
            "displayName": item.data["displayName"],
            "isOwner": True,
            "isShared": False,
            "wellknownListName": item.data.get("wellknownListName", "none"),
        }

    def render_task(self, item: Item, ctx: Ctx) -> dict[str, Any]:
        out = {"@odata.etag": etag(item), "id": item.id, **public(item.data)}
        if "extensions" in ctx.args.get("$expand", "").lower():
            out["extensions"] = list(item.data.get("_ext", {}).values())
        return apply_select(out, ctx.select())

    def task_data(self, body: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
        now = now_iso()
        data = dict(
            base
            or {
                "importance": "normal",
                "isReminderOn": False,
                "status": "notStarted",
                "title": "",
                "createdDateTime": now,
                "categories": [],
                "body": {"content": "", "contentType": "text"},
            }
        )
        for key, value in body.items():
            if key == "extensions":
                for ext in value or []:
                    self.put_extension(data, ext)
            elif key == "singleValueExtendedProperties":
                raise bad(
                    "todoTask does not support extended properties; use open extensions.",
                    "BadRequest",
                )
            elif key not in READ_ONLY and not key.startswith("_"):
                data[key] = value
        if data.get("status") not in (
            "notStarted",
            "inProgress",
            "completed",
            "waitingOnOthers",
            "deferred",
        ):
            raise bad(f"Invalid status '{data.get('status')}'.", "invalidRequest")
        if data.get("status") == "completed" and not data.get("completedDateTime"):
            data["completedDateTime"] = {
                "dateTime": now.replace("Z", ".0000000"),
                "timeZone": "UTC",
            }
        if data.get("status") != "completed":
            data.pop("completedDateTime", None)
        data["lastModifiedDateTime"] = modified_iso()
        return data

    @staticmethod
    def put_extension(data: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
        name = str(ext.get("extensionName") or "")
        if not name:
            raise bad("extensionName is required.", "invalidRequest")
        rendered = {k: v for k, v in ext.items() if k != "@odata.type"}
        rendered = {
            "@odata.type": "#microsoft.graph.openTypeExtension",
            "id": name,
            **rendered,
            "extensionName": name,
        }
        data["_ext"] = {**data.get("_ext", {}), name: rendered}
        return rendered

    def todo(self, ctx: Ctx, rest: list[str]) -> Result:
        m = ctx.method
        if not rest:
            if m == "GET":
                return self.collection(ctx, "todoList", "todo", self.render_list)
            if m == "POST":
                name = str(ctx.json().get("displayName") or "").strip()
                if not name:
                    raise bad("displayName is required.", "invalidRequest")
                item = self.store.insert(
                    "todoList",
                    "todo",
                    {"displayName": name},
                    sort=name.lower(),
                    item_id=new_id("AAMkAGT"),
                )
                return 201, {}, self.render_list(item)
        lst = self.get(rest[0], "todoList", "list")
        if len(rest) == 1:
            if m == "GET":
                return 200, {}, self.render_list(lst)
            if m == "PATCH":
                name = str(ctx.json().get("displayName") or lst.data["displayName"])
                return (
                    200,
                    {},
                    self.render_list(
                        self.store.update(lst, dict(lst.data, displayName=name), sort=name.lower())
                    ),
                )
            if m == "DELETE":
                if lst.data.get("wellknownListName") == "defaultList":
                    raise GraphError(400, "invalidRequest", "The default list cannot be deleted.")
                for t in self.store.list_items("task", lst.id):
                    self.store.delete(t)
                self.store.delete(lst)
                return 204, {}, None
        if rest[1] != "tasks":
            raise bad(f"Resource not found for the segment '{rest[1]}'.")

        def render(i: Item) -> dict[str, Any]:
            return self.render_task(i, ctx)

        tail = rest[2:]
        if not tail:
            if m == "GET":
                return self.collection(ctx, "task", lst.id, render)
            if m == "POST":
                data = self.task_data(ctx.json())
                item = self.store.insert(
                    "task",
                    lst.id,
                    data,
                    sort=data["createdDateTime"],
                    item_id=new_id("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"),
                )
                return 201, {}, render(item)
        if tail == ["delta"] and m == "GET":
            return self.delta(ctx, "task", lst.id, render, "syncStateNotFound")
        task = self.get(tail[0], "task", "task")
        if task.parent != lst.id:
            raise not_found("task")
        if len(tail) == 1:
            if m == "GET":
                return 200, {}, render(task)
            if m == "PATCH":
                return (
                    200,
                    {},
                    render(self.store.update(task, self.task_data(ctx.json(), task.data))),
                )
            if m == "DELETE":
                self.store.delete(task)
                return 204, {}, None
        if tail[1] == "extensions":
            exts: dict[str, Any] = task.data.get("_ext", {})
            if len(tail) == 2:
                if m == "GET":
                    return 200, {}, {"value": list(exts.values())}
                if m == "POST":
                    body = ctx.json()
                    if body.get("extensionName") in exts:
                        raise GraphError(
                            409, "NameAlreadyExists", "An extension with this name already exists."
                        )
                    data = dict(task.data, lastModifiedDateTime=modified_iso())
                    rendered = self.put_extension(data, body)
                    self.store.update(task, data)
                    return 201, {}, rendered
            else:
                name = tail[2]
                if name not in exts:
                    raise not_found("extension")
                if m == "GET":
                    return 200, {}, exts[name]
                data = dict(task.data, lastModifiedDateTime=modified_iso())
                if m == "PATCH":
                    self.put_extension(data, {**exts[name], **ctx.json(), "extensionName": name})
                    self.store.update(task, data)
                    return 204, {}, None
                if m == "DELETE":
                    data["_ext"] = {k: v for k, v in exts.items() if k != name}
                    self.store.update(task, data)
                    return 204, {}, None
        raise bad(f"Resource not found for the segment '{tail[-1]}'.")
