"""OAuth 2.0 web-server flow with PKCE, refresh with rotation, revoke, and the identity URL.

The sandbox has no login page: /authorize approves the demo user at once and redirects to the
loopback redirect_uri, which is what a scripted browser in a test needs. Token failures use
OAuth's {"error", "error_description"} body, as Salesforce does on these endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from scc_desktop.sandbox.salesforce import ids
from scc_desktop.sandbox.salesforce.errors import SfError, invalid_session
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.store import Store
from scc_desktop.sandbox.service import json_response

CLIENT_ID = "3MVG9SccDesktopSandbox.DemoConsumerKey.0000000000000000000000000000000000000000"
ORG_ID = ids.make_id("00D", 1)
CODE_LIFETIME_S = 900
_SIGNING_KEY = b"scc-desktop-sandbox-signing-key"


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status=status)


class OAuth:
    def __init__(self, org: Org, base_url: str) -> None:
        self.org = org
        self.base_url = base_url

    @property
    def store(self) -> Store:
        return self.org.store

    def demo_user(self) -> str:
        return str(self.store.kv_get("demo_user_id"))

    def identity_url(self, user_id: str) -> str:
        return f"{self.base_url}/id/{ORG_ID}/{user_id}"

    # -- /services/oauth2/authorize --------------------------------------------------------------
    def authorize(self, request: Request) -> Response:
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != CLIENT_ID:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            return _oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration")
        state = args.get("state")

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            sep = "&" if parts.query else "?"
            return Response(
                status=302, headers={"Location": redirect_uri + sep + urlencode(params)}
            )

        if args.get("response_type") != "code":
            return back(
                error="unsupported_response_type", error_description="response type not supported"
            )
        challenge = args.get("code_challenge")
        method = args.get("code_challenge_method", "S256" if challenge else "")
        if challenge and method != "S256":
            return back(error="invalid_request", error_description="invalid code_challenge_method")
        code = "aPrx" + secrets.token_urlsafe(32)
        self.store.token_put(
            code,
            "code",
            {
                "user_id": self.demo_user(),
                "redirect_uri": redirect_uri,
                "challenge": challenge,
                "expires_at": self.org.now().timestamp() + CODE_LIFETIME_S,
            },
        )
        return back(code=code)

    # -- /services/oauth2/token ----------------------------------------------------------------
    def token(self, request: Request) -> Response:
        if request.method != "POST":
            return _oauth_error("invalid_request", "must use HTTP POST", 405)
        form = request.form
        if form.get("client_id", CLIENT_ID) != CLIENT_ID:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(form.get("code", ""), form)
        if grant == "refresh_token":
            return self._refresh_grant(form.get("refresh_token", ""))
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    def _code_grant(self, code: str, form: Any) -> Response:
        found = self.store.token_get(code)
        if found is None or found[0] != "code":
            return _oauth_error("invalid_grant", "invalid authorization code")
        data = found[1]
        self.store.token_delete(code)  # single use
        if data["expires_at"] < self.org.now().timestamp():
            return _oauth_error("invalid_grant", "expired authorization code")
        if form.get("redirect_uri") != data["redirect_uri"]:
            return _oauth_error("redirect_uri_mismatch", "redirect_uri must match configuration")
        if data["challenge"]:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not hmac.compare_digest(expected, data["challenge"]):
                return _oauth_error("invalid_grant", "invalid code verifier")
        return self._issue(data["user_id"], new_refresh=True)

    def _refresh_grant(self, refresh: str) -> Response:
        found = self.store.token_get(refresh)
        if found is None or found[0] != "refresh":
            return _oauth_error("invalid_grant", "expired access/refresh token")
        user_id = found[1]["user_id"]
        rotate = self.org.settings.rotate_refresh_tokens
        if rotate:
            self.store.token_delete(refresh)
        return self._issue(user_id, new_refresh=rotate, refresh=None if rotate else refresh)

    def _issue(self, user_id: str, new_refresh: bool, refresh: str | None = None) -> Response:
        now = self.org.now()
        access = f"{ORG_ID[:15]}!AQ" + secrets.token_urlsafe(48)
        if new_refresh:
            refresh = "5Aep861" + secrets.token_urlsafe(48)
            self.store.token_put(refresh, "refresh", {"user_id": user_id})
        self.store.token_put(
            access,
            "access",
            {
                "user_id": user_id,
                "refresh": refresh,
                "expires_at": now.timestamp() + self.org.settings.token_lifetime_s,
            },
        )
        issued_at = str(int(now.timestamp() * 1000))
        identity = self.identity_url(user_id)
        signature = base64.b64encode(
            hmac.new(_SIGNING_KEY, (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        body: dict[str, Any] = {
            "access_token": access,
            "signature": signature,
            "scope": "refresh_token api id",
            "instance_url": self.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if new_refresh:
            body["refresh_token"] = refresh
        return json_response(body)

    # -- /services/oauth2/revoke ---------------------------------------------------------------
    def revoke(self, request: Request) -> Response:
        token = request.values.get("token", "")
        found = self.store.token_get(token)
        if found is None or found[0] not in ("access", "refresh"):
            return _oauth_error("unsupported_token_type", "this token type is not supported")
        self.store.token_delete(token)
        if found[0] == "refresh":
            self.store.revoke_access_for(token)
        return Response(status=200)

    # -- bearer tokens -------------------------------------------------------------------------
    def user_for(self, request: Request) -> str:
        """The user behind the request's access token, or INVALID_SESSION_ID."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token:
            token = request.args.get("oauth_token", "")
        found = self.store.token_get(token.strip()) if token else None
        if found is None or found[0] != "access":
            raise invalid_session()
        if found[1]["expires_at"] <= self.org.now().timestamp():
            raise invalid_session()
        return str(found[1]["user_id"])

    def identity(self, request: Request, org_id: str, user_id: str) -> Response:
        caller = self.user_for(request)
        uid = ids.normalize(user_id)
        if org_id not in (ORG_ID, ORG_ID[:15]) or uid is None or uid != caller:
            raise SfError(403, "Bad_Id", "Bad_Id")
        return json_response(self.identity_body(uid))

    def identity_body(self, user_id: str) -> dict[str, Any]:
        user = self.org.live(user_id)
        base = f"{self.base_url}/services/data/v{{version}}"
        return {
            "id": self.identity_url(user_id),
            "asserted_user": True,
            "user_id": user_id,
            "organization_id": ORG_ID,
            "username": user["Username"],
            "nick_name": user.get("Alias"),
            "display_name": user["Name"],
            "email": user["Email"],
            "email_verified": True,
            "first_name": user.get("FirstName"),
            "last_name": user.get("LastName"),
            "timezone": user.get("TimeZoneSidKey"),
            "active": bool(user.get("IsActive")),
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "last_modified_date": user["LastModifiedDate"],
            "urls": {
                "rest": base + "/",
                "sobjects": base + "/sobjects/",
                "query": base + "/query/",
                "profile": f"{self.base_url}/{user_id}",
            },
        }

    def userinfo(self, request: Request) -> Response:
        user_id = self.user_for(request)
        body = self.identity_body(user_id)
        return json_response(
            {
                "sub": body["id"],
                "user_id": user_id,
                "organization_id": ORG_ID,
                "preferred_username": body["username"],
                "name": body["display_name"],
                "email": body["email"],
                "given_name": body["first_name"],
                "family_name": body["last_name"],
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
