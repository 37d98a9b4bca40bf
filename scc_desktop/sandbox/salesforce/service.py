"""The Salesforce emulator mounted on the sandbox server: OAuth, identity, REST and admin."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from scc_desktop.sandbox import demo_people
from scc_desktop.sandbox.salesforce import schema, seeds
from scc_desktop.sandbox.salesforce.errors import SfError, not_found
from scc_desktop.sandbox.salesforce.oauth import CLIENT_ID, OAuth
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.rest import (
    Call,
    Rest,
    parse_body,
    split_version,
    versions_body,
)
from scc_desktop.sandbox.salesforce.store import Store
from scc_desktop.sandbox.service import DropConnection, SandboxService, json_response

log = logging.getLogger(__name__)

API_VERSION = "59.0"
_GENERIC_CODES = {500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE", 429: "TOO_MANY_REQUESTS"}


class SalesforceService(SandboxService):
    name = "salesforce"
    prefixes = ("/services/", "/id/")

    def __init__(self, data_dir: Path, base_url: str) -> None:
        super().__init__(data_dir, base_url)
        self.store = Store(data_dir / "salesforce.sqlite3")
        self.org = Org(self.store)
        self.oauth = OAuth(self.org, base_url)
        self.rest = Rest(self.org, lambda: self.faults)

    # -- SandboxService ------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "login_url": self.base_url,
            "instance_url": self.base_url,
            "client_id": CLIENT_ID,
            "api_version": API_VERSION,
            "username": demo_people.DEMO_USER.email,
        }

    def reset(self, seed: str, params: Mapping[str, Any]) -> None:
        with self.store.lock:
            seeds.load(self.org, seed, params)
            self.rest.cursors.clear()

    def is_empty(self) -> bool:
        return self.store.kv_get("seeded") is None

    def close(self) -> None:
        self.store.close()

    def error_response(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        code = _GENERIC_CODES.get(status, code) if not code.isupper() else code
        return json_response([{"message": message, "errorCode": code}], status, headers)

    def counts_towards_faults(self, request: Request) -> bool:
        return not request.path.startswith("/services/oauth2/authorize")

    def endpoint_kind(self, request: Request) -> str:
        path = request.path
        if path.startswith("/services/oauth2/"):
            return "oauth"
        if path.startswith("/id/"):
            return "identity"
        if not path.startswith("/services/data"):
            return "other"
        try:
            split = split_version(path)
        except SfError:
            return "other"
        if split is None:
            return "versions"
        low = [p.lower() for p in split[1]]
        if not low:
            return "other"
        if low[0] in ("query", "queryall"):
            return "query" if len(low) == 1 else "query_more"
        if low[0] == "limits":
            return "limits"
        if low[:2] == ["composite", "sobjects"]:
            return "collections"
        if low == ["composite"]:
            return "composite"
        if low[0] == "sobjects":
            if len(low) == 1 or (len(low) == 3 and low[2] == "describe"):
                return "describe"
            if len(low) == 3 and low[2] in ("updated", "deleted"):
                return low[2]
            return "sobject"
        return "other"

    # -- requests --------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        with self.store.lock:
            try:
                return self._route(request)
            except SfError as exc:
                return json_response(exc.body(), exc.status, self._limit_header())
            except DropConnection:
                raise
            except Exception:  # a bug here must still look like Salesforce, not an HTML page
                log.exception("salesforce emulator failed on %s %s", request.method, request.path)
                return self.error_response(
                    500, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please try again."
                )

    def _route(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/services/oauth2/"):
            action = path[len("/services/oauth2/") :].strip("/")
            if action == "authorize":
                return self.oauth.authorize(request)
            if action == "token":
                return self.oauth.token(request)
            if action == "revoke":
                return self.oauth.revoke(request)
            if action == "userinfo":
                return self.oauth.userinfo(request)
            raise not_found()
        if path.startswith("/id/"):
            parts = path.strip("/").split("/")
            if len(parts) != 3:
                raise not_found()
            return self.oauth.identity(request, parts[1], parts[2])
        if not path.startswith("/services/data"):
            raise not_found()
        split = split_version(path)
        if split is None:
            return json_response(versions_body())
        user = self.oauth.user_for(request)
        self.org.consume_api_call()
        call = Call(
            method=request.method,
            parts=split[1],
            args=request.args.to_dict(),
            body=parse_body(request.get_data()),
            headers=dict(request.headers),
            user=user,
            version=split[0],
        )
        mark = self.store.savepoint()
        try:
            status, body = self.rest.dispatch(call)
        except Exception:
            self.store.rollback_to(mark)
            raise
        finally:
            self.store.commit()
        if call.method in ("POST", "PATCH", "DELETE") and self.faults.chance(
            self.org.settings.lost_response_rate
        ):
            raise DropConnection  # written, but the client never hears so
        headers = {**call.out_headers, **self._limit_header()}
        if isinstance(body, bytes):
            return Response(body, status, headers, content_type="application/octet-stream")
        if body is None:
            return Response(b"", status, headers)
        return json_response(body, status, headers)

    def _limit_header(self) -> dict[str, str]:
        used, limit = self.org.api_usage()
        return {"Sforce-Limit-Info": f"api-usage={used}/{limit}"}

    # -- admin -----------------------------------------------------------------------------------
    def admin(self, request: Request, action: str) -> Response:
        body: dict[str, Any] = {}
        if request.method == "POST" and request.get_data():
            try:
                body = json.loads(request.get_data())
            except ValueError:
                return json_response({"error": "body must be JSON"}, status=400)
        with self.store.lock:
            if action == "settings":
                if request.method == "POST":
                    changes = dict(body)
                    usage = changes.pop("api_usage", None)
                    try:
                        self.org.update_settings(changes)
                    except (TypeError, ValueError) as exc:
                        return json_response({"error": str(exc)}, status=400)
                    if usage is not None:
                        self.org.set_api_usage(int(usage))
                return json_response(self._settings())
            if action == "rules":
                if request.method == "POST":
                    try:
                        return json_response(self.org.set_rules(body))
                    except (KeyError, TypeError, ValueError) as exc:
                        return json_response({"error": f"bad rules: {exc}"}, status=400)
                return json_response(self.org.rules())
            if action == "expire_tokens" and request.method == "POST":
                self.store.token_delete_kind("access")
                return json_response({"ok": True})
            if action == "revoke_refresh_tokens" and request.method == "POST":
                self.store.token_delete_kind("refresh")
                self.store.token_delete_kind("access")
                return json_response({"ok": True})
            if action == "records" and request.method == "POST":
                return self._admin_write(body)
            if action == "records":
                sobject = request.args.get("type", "")
                obj = self.org.store.records(sobject) if sobject in self._types() else None
                if obj is None:
                    return json_response({"error": f"unknown type {sobject!r}"}, status=400)
                return json_response({"records": list(obj)})
            if action == "clock":
                if request.method == "POST":
                    offset = self.org.settings.clock_offset_s
                    if "offset_s" in body:
                        offset = float(body["offset_s"])
                    offset += float(body.get("advance_s", 0))
                    self.org.update_settings({"clock_offset_s": offset})
                return json_response(
                    {
                        "now": self.org.now().isoformat(),
                        "offset_s": self.org.settings.clock_offset_s,
                    }
                )
        return json_response({"error": f"unknown admin action {action!r}"}, status=404)

    def _admin_write(self, body: Mapping[str, Any]) -> Response:
        """A change made inside the org (by the demo user or a colleague): not an API call, so
        it costs no API usage and no counter, like an edit in Salesforce's own UI."""
        username = str(body.get("user") or demo_people.DEMO_USER.email).lower()
        user = next(
            (u["Id"] for u in self.store.records("User") if u["Username"].lower() == username),
            None,
        )
        if user is None:
            return json_response({"error": f"unknown user {username!r}"}, status=400)
        fields = body.get("fields") or {}
        mark = self.store.savepoint()
        try:
            if body.get("id") and body.get("delete"):
                self.org.delete(str(body["id"]), user)
                rid = str(body["id"])
            elif body.get("id"):
                self.org.update(str(body["id"]), fields, user)
                rid = str(body["id"])
            else:
                rid = self.org.create(str(body.get("type", "")), fields, user)
        except SfError as exc:
            self.store.rollback_to(mark)
            return json_response({"error": exc.body()}, status=exc.status)
        finally:
            self.store.commit()
        return json_response({"id": rid})

    def _types(self) -> set[str]:
        return set(schema.OBJECTS)

    def _settings(self) -> dict[str, Any]:
        settings = self.org.settings
        used, _ = self.org.api_usage()
        out: dict[str, Any] = {k: getattr(settings, k) for k in settings.names()}
        out["api_usage"] = used
        return out
