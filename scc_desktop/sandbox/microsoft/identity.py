"""The Microsoft identity platform (v2.0 endpoints) as msal 1.39 uses them, for one demo user.

msal with `instance_discovery=False` reads `{authority}/v2.0/.well-known/openid-configuration`
and then only needs the authorize, token and device-code endpoints it names. msal does not
validate id_token signatures (it only compares the nonce in the auth-code flow, against the
SHA-256 hex of its own nonce, which it sends as the `nonce` parameter), so tokens are HS256 JWTs
signed with a per-data-folder secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from scc_desktop.sandbox.demo_people import DEMO_USER
from scc_desktop.sandbox.service import json_response

if TYPE_CHECKING:
    from scc_desktop.sandbox.microsoft.service import MicrosoftService

CLIENT_ID = "5c3e9f0a-7d21-4b8e-9a64-2f1d8c0b7e53"
TENANT_ID = "a1f0c2d4-3b5e-4f67-8c9d-0e1f2a3b4c5d"
USER_OID = "00000000-0000-0000-66f3-3332eca7ea81"
GRANT_DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_LIFETIME_S = 90 * 86400
ACCEPTED_TENANTS = {TENANT_ID, "common", "organizations", "northwind.example"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def jwt(claims: Mapping[str, Any], secret: bytes) -> str:
    header = b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    payload = b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def aad_error(error: str, code: int, description: str, status: int = 400) -> Response:
    """AAD's OAuth error body (what msal returns to the caller as a dict)."""
    now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} "
            f"Correlation ID: {uuid.uuid4()} Timestamp: {now}",
            "error_codes": [code],
            "timestamp": now,
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(code),
        },
        status=status,
    )


class Identity:
    """Endpoints under /ms/{tenant}/. Tokens live in the service's store."""

    def __init__(self, service: MicrosoftService) -> None:
        self.service = service

    @property
    def authority(self) -> str:
        return f"{self.service.base_url}/ms/{TENANT_ID}"

    def _secret(self) -> bytes:
        store = self.service.store
        secret = store.get_meta("jwt_secret")
        if secret is None:
            secret = secrets.token_hex(32)
            store.set_meta("jwt_secret", secret)
        return bytes.fromhex(secret)

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")  # ms, tenant, ...
        if len(parts) < 3 or parts[1] not in ACCEPTED_TENANTS:
            return aad_error(
                "invalid_tenant", 90002, f"Tenant '{parts[1] if len(parts) > 1 else ''}' not found."
            )
        rest = "/".join(parts[2:])
        if rest == "v2.0/.well-known/openid-configuration":
            return self.discovery()
        if rest == "discovery/v2.0/keys":
            return json_response({"keys": []})
        if rest == "oauth2/v2.0/authorize" and request.method == "GET":
            return self.authorize(request)
        if rest == "oauth2/v2.0/token" and request.method == "POST":
            return self.token(request)
        if rest == "oauth2/v2.0/devicecode" and request.method == "POST":
            return self.devicecode(request)
        if rest == "oauth2/v2.0/logout":
            return Response("signed out", content_type="text/plain")
        return aad_error(
            "invalid_request",
            900561,
            f"The endpoint only accepts its documented methods: {rest}",
            404,
        )

    def discovery(self) -> Response:
        a = self.authority
        return json_response(
            {
                "issuer": f"{a}/v2.0",
                "authorization_endpoint": f"{a}/oauth2/v2.0/authorize",
                "token_endpoint": f"{a}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{a}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{a}/oauth2/v2.0/logout",
                "jwks_uri": f"{a}/discovery/v2.0/keys",
                "userinfo_endpoint": f"{self.service.base_url}/graph/oidc/userinfo",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["HS256"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
                "code_challenge_methods_supported": ["S256", "plain"],
                "grant_types_supported": ["authorization_code", "refresh_token", GRANT_DEVICE],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "preferred_username",
                    "oid",
                    "tid",
                ],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    # -- authorize (the "browser" leg; approves the demo user at once) ----------------------------
    def authorize(self, request: Request) -> Response:
        args = request.args
        redirect_uri = args.get("redirect_uri", "")
        split = urlsplit(redirect_uri)
        if split.scheme != "http" or split.hostname not in ("localhost", "127.0.0.1", "::1"):
            return Response(
                "AADSTS50011: The redirect URI must be a loopback address (http://localhost).",
                status=400,
                content_type="text/plain",
            )
        state = args.get("state", "")

        def back(params: dict[str, str]) -> Response:
            if state:
                params["state"] = state
            if args.get("response_mode") == "form_post":  # msal 1.39's listener takes POST only
                fields = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                    for k, v in params.items()
                )
                page = (
                    f'<html><body onload="document.forms[0].submit()"><form method="post" '
                    f'action="{html.escape(redirect_uri)}">{fields}</form></body></html>'
                )
                return Response(page, status=200, content_type="text/html; charset=utf-8")
            sep = "&" if split.query else "?"
            return Response(
                "", status=302, headers={"Location": redirect_uri + sep + urlencode(params)}
            )

        if args.get("client_id") != CLIENT_ID:
            return back(
                {
                    "error": "unauthorized_client",
                    "error_description": "AADSTS700016: Application not found.",
                }
            )
        if args.get("response_type") != "code":
            return back(
                {
                    "error": "unsupported_response_type",
                    "error_description": "AADSTS70005: only code",
                }
            )
        challenge = args.get("code_challenge", "")
        method = args.get("code_challenge_method", "plain")
        if not challenge or method not in ("S256", "plain"):
            return back(
                {
                    "error": "invalid_request",
                    "error_description": "AADSTS9002325: PKCE is required.",
                }
            )
        code = "0.AX" + secrets.token_urlsafe(48)
        self.service.store.put_token(
            code,
            "code",
            time.time() + 600,
            {
                "redirect_uri": redirect_uri,
                "challenge": challenge,
                "method": method,
                "scope": args.get("scope", ""),
                "nonce": args.get("nonce"),
            },
        )
        params = {"code": code, "session_state": str(uuid.uuid4())}
        if args.get("client_info") == "1":
            params["client_info"] = self.client_info()
        return back(params)

    # -- device code -------------------------------------------------------------------------------
    def devicecode(self, request: Request) -> Response:
        if request.form.get("client_id") != CLIENT_ID:
            return aad_error(
                "unauthorized_client", 700016, "Application not found in the directory."
            )
        device_code = "DAQABAAEAAA" + secrets.token_urlsafe(40)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        delay = self.service.setting("device_approval_delay_s")
        now = time.time()
        self.service.store.put_token(
            device_code,
            "device",
            now + 900,
            {
                "user_code": user_code,
                "scope": request.form.get("scope", ""),
                "approve_at": now + delay if delay >= 0 else None,
                "approved": False,
            },
        )
        verification = f"{self.service.base_url}/ms/devicelogin"
        return json_response(
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": verification,
                "expires_in": 900,
                "interval": 1,
                "message": "To sign in, use a web browser to open the page "
                f"{verification} and enter "
                f"the code {user_code} to authenticate.",
            }
        )

    def approve_devices(self, user_code: str | None = None) -> int:
        store = self.service.store
        with store.lock:
            rows = store.conn.execute(
                "SELECT token, expires, data FROM tokens WHERE kind='device'"
            ).fetchall()
        n = 0
        for token, expires, data in rows:
            info = json.loads(data)
            if user_code and info.get("user_code") != user_code:
                continue
            info["approved"] = True
            store.put_token(token, "device", float(expires), info)
            n += 1
        return n

    # -- token -------------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        form = request.form
        if form.get("client_id") != CLIENT_ID:
            return aad_error(
                "unauthorized_client", 700016, "Application not found in the directory."
            )
        grant = form.get("grant_type", "")
        store = self.service.store
        now = time.time()
        if grant == "authorization_code":
            found = store.get_token(form.get("code", ""), "code")
            if found is None or found[0] < now:
                return aad_error(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired.",
                )
            store.drop_token(form.get("code", ""))  # single use
            info = found[1]
            if form.get("redirect_uri") != info["redirect_uri"]:
                return aad_error(
                    "invalid_grant",
                    50148,
                    "The redirect_uri does not match the one of the authorization request.",
                )
            verifier = form.get("code_verifier", "")
            expected = (
                b64url(hashlib.sha256(verifier.encode()).digest())
                if info["method"] == "S256"
                else verifier
            )
            if not verifier or not hmac.compare_digest(expected, info["challenge"]):
                return aad_error(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )
            return self.issue(form.get("scope") or info["scope"], info.get("nonce"))
        if grant == "refresh_token":
            found = store.get_token(form.get("refresh_token", ""), "refresh")
            if found is None or found[0] < now:
                return aad_error(
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. The token was issued on "
                    "an earlier date and was inactive for 90.00:00:00.",
                )
            return self.issue(form.get("scope") or found[1].get("scope", ""), None)
        if grant in (GRANT_DEVICE, "device_code"):
            code = form.get("device_code", "")
            found = store.get_token(code, "device")
            if found is None:
                return aad_error(
                    "invalid_grant",
                    70000,
                    "The provided value for the input parameter 'device_code' is not valid.",
                )
            expires, info = found
            if expires < now:
                store.drop_token(code)
                return aad_error(
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' has expired.",
                )
            approved = info.get("approved") or (
                info.get("approve_at") is not None and now >= info["approve_at"]
            )
            if not approved:
                return aad_error(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            store.drop_token(code)
            return self.issue(info.get("scope", ""), None)
        return aad_error(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def client_info(self) -> str:
        return b64url(json.dumps({"uid": USER_OID, "utid": TENANT_ID}).encode())

    def issue(self, scope: str, nonce: str | None) -> Response:
        now = int(time.time())
        lifetime = int(self.service.setting("token_lifetime_s"))
        secret = self._secret()
        access = jwt(
            {
                "aud": "https://graph.microsoft.com",
                "iss": f"https://sts.windows.net/{TENANT_ID}/",
                "iat": now,
                "nbf": now,
                "exp": now + lifetime,
                "appid": CLIENT_ID,
                "oid": USER_OID,
                "tid": TENANT_ID,
                "upn": DEMO_USER.email,
                "scp": " ".join(
                    s for s in scope.split() if s not in ("openid", "profile", "offline_access")
                ),
                "uti": secrets.token_urlsafe(16),
            },
            secret,
        )
        refresh = "1.AX" + secrets.token_urlsafe(64)
        store = self.service.store
        store.put_token(access, "access", time.time() + lifetime, {"scope": scope})
        store.put_token(refresh, "refresh", now + REFRESH_LIFETIME_S, {"scope": scope})
        claims: dict[str, Any] = {
            "aud": CLIENT_ID,
            "iss": f"{self.authority}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": DEMO_USER.name,
            "oid": USER_OID,
            "preferred_username": DEMO_USER.email,
            "sub": b64url(hashlib.sha256(USER_OID.encode()).digest()[:24]),
            "tid": TENANT_ID,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return json_response(
            {
                "token_type": "Bearer",
                "scope": scope,
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access,
                "refresh_token": refresh,
                "id_token": jwt(claims, secret),
                "client_info": self.client_info(),
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def check_access(self, header: str) -> str | None:
        """None when the bearer token is valid, else the reason for a 401."""
        if not header.lower().startswith("bearer "):
            return "Access token is empty."
        found = self.service.store.get_token(header[7:].strip(), "access")
        if found is None:
            return (
                "IDX14100: JWT is not well formed, there are no dots (.)."
                if "." not in header
                else "Invalid signature."
            )
        if found[0] < time.time():
            return "Lifetime validation failed, the token is expired."
        return None
