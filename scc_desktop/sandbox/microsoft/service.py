"""MicrosoftService: identity + Graph v1.0 for one demo mailbox (docs/sandbox-microsoft.md).

Graph calls pass three gates before their handler, in Graph's order: the mailbox concurrency
limit (4 in flight, else 429 ApplicationThrottled/MailboxConcurrency), the bearer token (401
InvalidAuthenticationToken), then the route. `$batch` runs its subrequests through the same
handler, each one subject to the throttling fault profile like Graph evaluates them singly.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from werkzeug.wrappers import Request, Response

from scc_desktop.sandbox.demo_people import DEMO_USER
from scc_desktop.sandbox.microsoft import seed as seeds
from scc_desktop.sandbox.microsoft.db import Store
from scc_desktop.sandbox.microsoft.graph import Ctx, Graph, GraphError, Result, recipient
from scc_desktop.sandbox.microsoft.identity import CLIENT_ID, TENANT_ID, Identity
from scc_desktop.sandbox.service import SandboxService, json_response

SETTINGS: dict[str, float] = {
    "token_lifetime_s": 3600.0,
    "delta_token_max_age_s": 7 * 86400.0,
    "device_approval_delay_s": 1.0,
    "request_delay_ms": 0.0,  # held inside the concurrency window (to provoke MailboxConcurrency)
    "max_concurrency": 4.0,
    "concurrency_retry_after_s": 1.0,
    "requests_per_10_min": 10_000.0,  # Outlook's per-app-per-mailbox limit; 0 turns it off
}
BATCH_MAX = 20

KINDS = {
    "mailFolders": "folders",
    "messages": "messages",
    "outlook": "categories",
    "contactFolders": "contacts",
    "contacts": "contacts",
    "events": "events",
    "calendar": "events",
    "calendarView": "events",
    "todo": "todo",
}


class MicrosoftService(SandboxService):
    """The Microsoft identity platform + Graph emulator."""

    name = "microsoft"
    prefixes = ("/ms/", "/graph/")

    def __init__(self, data_dir: Path, base_url: str) -> None:
        super().__init__(data_dir, base_url)
        self.store = Store(data_dir / "microsoft.sqlite3")
        self.identity = Identity(self)
        self.graph = Graph(self)
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.batch_items: Counter[str] = Counter()
        self._recent: deque[float] = deque()

    # -- SandboxService ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "authority": f"{self.base_url}/ms/{TENANT_ID}",
            "graph_url": f"{self.base_url}/graph/v1.0",
            "client_id": CLIENT_ID,
            "tenant": TENANT_ID,
            "username": DEMO_USER.email,
        }

    def is_empty(self) -> bool:
        return self.store.get_meta("seed") is None

    def reset(self, seed: str, params: Mapping[str, Any]) -> None:
        """New mailbox content and default settings; sign-ins (tokens) survive, delta tokens die."""
        with self.store.lock:
            epoch = int(self.store.get_meta("delta_epoch", "0") or 0) + 1
            self.store.wipe(keep_meta=("jwt_secret",))
            self.store.set_meta("delta_epoch", str(epoch))
            seeds.load(self, seed, params)
            self.store.set_meta("seed", seed)
        self.batch_items.clear()
        self._recent.clear()

    def close(self) -> None:
        self.store.close()

    def error_response(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return graph_error(status, code, message, headers)

    def counts_towards_faults(self, request: Request) -> bool:
        return not request.path.startswith("/ms/")

    def endpoint_kind(self, request: Request) -> str:
        path = request.path
        if path.startswith("/ms/"):
            if path.endswith("/token"):
                return "token"
            if path.endswith("/authorize"):
                return "authorize"
            if path.endswith("/devicecode"):
                return "device"
            if "well-known" in path or path.endswith("/keys"):
                return "discovery"
            return "other"
        if path.startswith("/graph/upload/"):
            return "attachments"
        return graph_kind(path.removeprefix("/graph/v1.0"))

    def setting(self, key: str) -> float:
        value = self.store.get_meta(f"setting:{key}")
        return float(value) if value is not None else SETTINGS[key]

    # -- requests ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/ms/"):
            return self.identity.handle(request)
        if path.startswith("/graph/upload/"):
            return self._respond(
                lambda: self.graph.upload(
                    request.method,
                    path.removeprefix("/graph/upload/"),
                    request.headers.get("Content-Range", ""),
                    request.get_data(),
                ),
                request,
            )
        if not path.startswith("/graph/v1.0/"):
            return graph_error(400, "BadRequest", "Invalid version: only v1.0 is emulated.")
        with self._inflight_lock:
            if self._inflight >= int(self.setting("max_concurrency")):
                retry = str(max(1, round(self.setting("concurrency_retry_after_s"))))
                return graph_error(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    {"Retry-After": retry},
                    request.headers.get("client-request-id"),
                )
            limited = self._over_rate_limit()
            if limited is not None:
                return graph_error(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxRequestLimit (requests per 10 minutes).",
                    {"Retry-After": str(limited)},
                    request.headers.get("client-request-id"),
                )
            self._inflight += 1
        try:
            delay = self.setting("request_delay_ms")
            if delay > 0:
                time.sleep(delay / 1000)
            reason = self.identity.check_access(request.headers.get("Authorization", ""))
            if reason is not None:
                return graph_error(
                    401,
                    "InvalidAuthenticationToken",
                    reason,
                    {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
                    request.headers.get("client-request-id"),
                )
            sub = path.removeprefix("/graph/v1.0")
            if sub == "/$batch":
                if request.method != "POST":
                    return graph_error(405, "BadRequest", "Use POST for $batch.")
                return self._respond(lambda: self.batch(request), request)
            ctx = Ctx(
                request.method,
                sub,
                dict(request.args.items()),
                joined_headers(request),
                request.get_data(),
            )
            return self._respond(lambda: self.graph.dispatch(ctx), request)
        finally:
            with self._inflight_lock:
                self._inflight -= 1

    def _over_rate_limit(self) -> int | None:
        """Seconds to wait when the 10-minute budget is spent, else None (and counts the call)."""
        limit = int(self.setting("requests_per_10_min"))
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 600:
            self._recent.popleft()
        if limit > 0 and len(self._recent) >= limit:
            return max(1, int(self._recent[0] + 600 - now) + 1)
        self._recent.append(now)
        return None

    def _respond(self, call: Any, request: Request) -> Response:
        client_request_id = request.headers.get("client-request-id")
        try:
            status, headers, body = call()
        except GraphError as err:
            return graph_error(err.status, err.code, err.message, err.headers, client_request_id)
        headers = {**headers, "request-id": str(uuid.uuid4())}
        if client_request_id:
            headers["client-request-id"] = client_request_id
        applied = preference_applied(request.headers.get("Prefer", ""))
        if applied:
            headers["Preference-Applied"] = applied
        if body is None:
            return Response(b"", status=status, headers=headers)
        if isinstance(body, bytes):
            return Response(body, status=status, headers=headers)
        headers.setdefault("OData-Version", "4.0")
        return json_response(body, status, headers)

    # -- $batch ---------------------------------------------------------------------------------
    def batch(self, request: Request) -> Result:
        try:
            payload = json.loads(request.get_data() or b"{}")
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.") from exc
        reqs = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(reqs, list) or not reqs:
            raise GraphError(400, "BadRequest", "Invalid batch payload format.")
        if len(reqs) > BATCH_MAX:
            raise GraphError(
                400, "BadRequest", f"Number of batch requests exceeds the limit of {BATCH_MAX}."
            )
        ids = [str(r.get("id", "")) for r in reqs]
        if len(set(ids)) != len(ids) or "" in ids:
            raise GraphError(400, "BadRequest", "Batch request ids must be present and unique.")
        done: dict[str, int] = {}
        by_id = {str(r["id"]): r for r in reqs}
        responses: list[dict[str, Any]] = []
        order = self._batch_order(reqs, by_id)
        for rid in order:
            sub = by_id[rid]
            status: int
            headers: dict[str, str]
            body: Any
            depends = [str(d) for d in sub.get("dependsOn") or []]
            if any(done.get(d, 424) >= 400 for d in depends):
                status, headers, body = (
                    424,
                    {},
                    error_body(
                        424, "FailedDependency", "A request this one depends on failed.", None
                    ),
                )
            else:
                status, headers, body = self._subrequest(sub, request)
            done[rid] = status
            entry: dict[str, Any] = {"id": rid, "status": status, "headers": headers}
            if body is not None:
                entry["body"] = base64.b64encode(body).decode() if isinstance(body, bytes) else body
            responses.append(entry)
        return 200, {}, {"responses": responses}

    @staticmethod
    def _batch_order(reqs: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> list[str]:
        """Dependencies first; Graph refuses unknown ids and cycles."""
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(rid: str) -> None:
            if state.get(rid) == 2:
                return
            if state.get(rid) == 1:
                raise GraphError(400, "BadRequest", "dependsOn has a cycle.")
            state[rid] = 1
            for dep in by_id[rid].get("dependsOn") or []:
                if str(dep) not in by_id:
                    raise GraphError(
                        400, "BadRequest", f"dependsOn refers to an unknown id '{dep}'."
                    )
                visit(str(dep))
            state[rid] = 2
            order.append(rid)

        for r in reqs:
            visit(str(r["id"]))
        return order

    def _subrequest(self, sub: dict[str, Any], request: Request) -> Result:
        method = str(sub.get("method", "GET")).upper()
        url = str(sub.get("url", ""))
        split = urlsplit(url if url.startswith("/") else "/" + url)
        path = split.path.removeprefix("/v1.0")
        kind = graph_kind(path)
        self.batch_items[kind] += 1
        self.batch_items["total"] += 1
        headers = {str(k).lower(): str(v) for k, v in (sub.get("headers") or {}).items()}
        client_request_id = headers.get("client-request-id")
        with self._inflight_lock:
            limited = self._over_rate_limit()
        if limited is not None:
            return (
                429,
                {"Retry-After": str(limited)},
                error_body(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxRequestLimit (requests per 10 minutes).",
                    client_request_id,
                ),
            )
        profile = self.faults
        if profile.chance(profile.throttle_rate):
            retry = str(max(1, round(profile.retry_after_s)))
            return (
                429,
                {"Retry-After": retry},
                error_body(
                    429,
                    "TooManyRequests",
                    "Too many requests. Retry after the time given in Retry-After.",
                    client_request_id,
                ),
            )
        if profile.chance(profile.partial_failure_rate) or profile.chance(profile.error_rate):
            return (
                503,
                {},
                error_body(
                    503,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable.",
                    client_request_id,
                ),
            )
        body = sub.get("body")
        if body is not None and "content-type" not in headers:
            return (
                400,
                {},
                error_body(
                    400,
                    "BadRequest",
                    f"Write request id : {sub.get('id')} does not contain Content-Type header "
                    "or body.",
                    client_request_id,
                ),
            )
        raw = (
            json.dumps(body).encode()
            if body is not None and not isinstance(body, str)
            else (body or "").encode()
        )
        if path == "/$batch":
            return (
                400,
                {},
                error_body(400, "BadRequest", "Nested $batch is not allowed.", client_request_id),
            )
        ctx = Ctx(method, path, dict(parse_qsl(split.query, keep_blank_values=True)), headers, raw)
        try:
            status, out_headers, out = self.graph.dispatch(ctx)
        except GraphError as err:
            return (
                err.status,
                dict(err.headers),
                error_body(err.status, err.code, err.message, client_request_id),
            )
        if isinstance(out, dict):
            out_headers = {"Content-Type": "application/json", **out_headers}
        return status, out_headers, out

    # -- admin ------------------------------------------------------------------------------------
    def admin(self, request: Request, action: str) -> Response:
        body: dict[str, Any] = {}
        if request.method in ("POST", "PUT", "PATCH") and request.get_data():
            try:
                body = json.loads(request.get_data())
            except ValueError:
                return json_response({"error": "body must be JSON"}, status=400)
        try:
            if action == "deliver" and request.method == "POST":
                return json_response(self.deliver(body), status=201)
            if action == "settings":
                if request.method == "POST":
                    for key, value in body.items():
                        if key not in SETTINGS:
                            return json_response({"error": f"unknown setting {key!r}"}, status=400)
                        self.store.set_meta(f"setting:{key}", str(float(value)))
                return json_response({k: self.setting(k) for k in SETTINGS})
            if action == "approve_device" and request.method == "POST":
                return json_response(
                    {"approved": self.identity.approve_devices(body.get("user_code"))}
                )
            if action == "expire_tokens" and request.method == "POST":
                kinds = ["access"] + (["refresh"] if body.get("refresh") else [])
                return json_response({"expired": self.store.expire_tokens(kinds)})
            if action == "invalidate_delta_tokens" and request.method == "POST":
                epoch = int(self.store.get_meta("delta_epoch", "0") or 0) + 1
                self.store.set_meta("delta_epoch", str(epoch))
                return json_response({"delta_epoch": epoch})
            if action == "respond" and request.method == "POST":
                return json_response(
                    self.graph.respond(
                        str(body["event_id"]), str(body["email"]), str(body["response"])
                    )
                )
            if action == "dump" and request.method == "GET":
                return json_response(self.dump(request.args.get("kind", "messages")))
            if action == "counters" and request.method == "GET":
                return json_response({"batch_item": dict(self.batch_items)})
        except GraphError as err:
            return graph_error(err.status, err.code, err.message)
        except (KeyError, TypeError, ValueError) as exc:
            return json_response({"error": f"bad request: {exc}"}, status=400)
        return json_response({"error": f"unknown admin action {action!r}"}, status=404)

    def deliver(self, body: dict[str, Any]) -> dict[str, Any]:
        """Put a message into Inbox (received) or Sent Items (sent), as a mail server would.

        `mime` (base64 of a raw RFC 5322 message) is read the way Exchange reads what it
        receives (`mime.graph_fields`); the other keys, when given, override what it says."""
        if body.get("mime") is not None:
            from scc_desktop.sandbox.microsoft.mime import graph_fields

            raw = base64.b64decode(str(body["mime"]))
            body = {**graph_fields(raw), **{k: v for k, v in body.items() if k != "mime"}}
        sent = body.get("folder") == "sentitems" or body.get("direction") == "sent"
        folder = self.graph.folder(str(body.get("folder") or ("sentitems" if sent else "inbox")))
        me = f"{DEMO_USER.name} <{DEMO_USER.email}>"

        def many(value: Any) -> list[Any]:
            return [value] if isinstance(value, (str, dict)) else list(value or [])

        headers = []
        if body.get("inReplyTo"):
            headers.append({"name": "In-Reply-To", "value": body["inReplyTo"]})
        if body.get("references"):
            headers.append({"name": "References", "value": body["references"]})
        message = {
            "from": recipient(body.get("from") or me),
            "toRecipients": [recipient(r) for r in many(body.get("to") or ([] if sent else [me]))],
            "ccRecipients": [recipient(r) for r in many(body.get("cc"))],
            "subject": body.get("subject", ""),
            "body": body["body"]
            if isinstance(body.get("body"), dict)
            else {"contentType": "text", "content": str(body.get("body", ""))},
            "internetMessageId": body.get("internetMessageId"),
            "conversationId": body.get("conversationId")
            or self._conversation_of(body.get("inReplyTo")),
            "categories": body.get("categories") or [],
            "receivedDateTime": body.get("receivedDateTime"),
            "sentDateTime": body.get("sentDateTime") or body.get("receivedDateTime"),
            "isRead": bool(body.get("isRead", sent)),
            "attachments": body.get("attachments") or [],
            "internetMessageHeaders": headers,
            "singleValueExtendedProperties": body.get("singleValueExtendedProperties"),
        }
        item = self.graph.new_message(
            folder, {k: v for k, v in message.items() if v is not None}, draft=False
        )
        return {
            "id": item.id,
            "rest_id": item.rest_id,
            "internetMessageId": item.data["internetMessageId"],
            "conversationId": item.data["conversationId"],
            "parentFolderId": item.parent,
        }

    def _conversation_of(self, message_id: str | None) -> str | None:
        if not message_id:
            return None
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT json_extract(data, '$.conversationId') FROM items WHERE kind='message' "
                "AND json_extract(data, '$.internetMessageId')=?",
                (message_id,),
            ).fetchone()
        return str(row[0]) if row else None

    def dump(self, kind: str) -> list[dict[str, Any]]:
        table = {
            "messages": "message",
            "contacts": "contact",
            "events": "event",
            "tasks": "task",
            "folders": "mailFolder",
            "contactFolders": "contactFolder",
            "lists": "todoList",
            "categories": "category",
        }
        if kind not in table:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(table)}")
        out = []
        for item in self.store.list_items(table[kind], None, order="seq"):
            entry = {
                "id": item.id,
                "rest_id": item.rest_id,
                "parent": item.parent,
                "seq": item.seq,
                **item.data,
            }
            if kind == "messages":
                entry["attachments"] = [
                    {"id": aid, **meta, "size": len(content)}
                    for aid, meta, content in self.store.attachments(item.id)
                ]
            out.append(entry)
        return out


def preference_applied(prefer: str) -> str:
    """Graph echoes the preferences it honoured (page size, id type, time zone)."""
    out = []
    low = prefer.replace(" ", "").lower()
    if m := re.search(r"odata\.maxpagesize=(\d+)", low):
        out.append(f"odata.maxpagesize={m.group(1)}")
    if 'idtype="immutableid"' in low:
        out.append('IdType="ImmutableId"')
    if m := re.search(r'outlook\.timezone\s*=\s*"([^"]+)"', prefer, re.I):
        out.append(f'outlook.timezone="{m.group(1)}"')
    return ", ".join(out)


def joined_headers(request: Request) -> dict[str, str]:
    """Lower-case header names; repeated headers (several Prefer lines) joined with commas."""
    out: dict[str, str] = {}
    for key, value in request.headers.items():
        name = key.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def graph_kind(path: str) -> str:
    """Counter names for Graph paths (after /v1.0)."""
    segs = [s for s in path.strip("/").split("/") if s]
    if segs[:1] == ["$batch"]:
        return "batch"
    if len(segs) >= 2 and segs[0] == "users":
        segs = ["me", *segs[2:]]
    if segs == ["me"]:
        return "me"
    if len(segs) < 2 or segs[0] != "me":
        return "other"
    if "attachments" in segs:
        return "attachments"
    if segs[-1] == "delta":
        if "messages" in segs:
            return "message_delta"
        if "contacts" in segs:
            return "contact_delta"
        if "calendarView" in segs:
            return "calendar_delta"
        if "tasks" in segs:
            return "todo_delta"
    if segs[1] == "mailFolders" and "messages" in segs:
        return "messages"
    return KINDS.get(segs[1], "other")


def error_body(
    status: int, code: str, message: str, client_request_id: str | None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
                "request-id": str(uuid.uuid4()),
                "client-request-id": client_request_id or str(uuid.uuid4()),
            },
        }
    }


def graph_error(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    client_request_id: str | None = None,
) -> Response:
    extra = dict(headers or {})
    extra.setdefault("Date", formatdate(usegmt=True))
    return json_response(error_body(status, code, message, client_request_id), status, extra)
