"""Helpers for the Salesforce emulator tests: a session that trusts the sandbox CA, admin calls,
the OAuth PKCE flow driven by requests, simple-salesforce in direct mode, raw REST calls."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from simple_salesforce import Salesforce

from scc_desktop.sandbox.server import SandboxServer

REDIRECT_URI = "http://127.0.0.1:53682/callback"


def trusted_session(ca_file: str) -> requests.Session:
    """A plain session that trusts the sandbox CA. trust_env is off because requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `verify` (and proxies must not see loopback)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    return session


class SfEnv:
    """One running sandbox plus helpers: admin calls, the OAuth flow, raw and client calls."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.info: dict[str, Any] = server.info()["salesforce"]
        self.ca_file = server.info()["ca_file"]
        self.base = self.info["instance_url"]
        self.http = trusted_session(self.ca_file)

    # admin
    def admin(self, method: str, action: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method, f"{self.server.admin_url}/{action}", json=body, params=params, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()

    def settings(self, **changes: Any) -> Any:
        return self.admin("POST", "salesforce/settings", changes)

    def counters(self) -> dict[str, int]:
        return dict(self.admin("GET", "counters").get("salesforce", {}))

    def records(self, sobject: str) -> list[dict[str, Any]]:
        return list(self.admin("GET", "salesforce/records", type=sobject)["records"])

    # OAuth
    def authorize(self, challenge: str, state: str = "st-1") -> requests.Response:
        return self.http.get(
            f"{self.info['login_url']}/services/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": self.info["client_id"],
                "redirect_uri": REDIRECT_URI,
                "state": state,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "scope": "api refresh_token",
            },
            allow_redirects=False,
            timeout=30,
        )

    def login(self) -> dict[str, Any]:
        """The browser part stops at the redirect: it reads Location, never calls the loopback."""
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        response = self.authorize(challenge)
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        token = self.token(
            grant_type="authorization_code",
            code=query["code"][0],
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
        )
        assert token.status_code == 200, token.text
        data: dict[str, Any] = token.json()
        return data

    def token(self, **form: str) -> requests.Response:
        form.setdefault("client_id", self.info["client_id"])
        return self.http.post(
            f"{self.info['login_url']}/services/oauth2/token", data=form, timeout=30
        )

    # API
    def client(self, access_token: str) -> Salesforce:
        session = trusted_session(self.ca_file)
        return Salesforce(
            instance_url=self.base, session_id=access_token, session=session, version="59.0"
        )

    def raw(
        self, method: str, path: str, token: str, body: Any = None, **kw: Any
    ) -> requests.Response:
        url = path if path.startswith("https://") else f"{self.base}/services/data/v59.0/{path}"
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return self.http.request(method, url, json=body, headers=headers, timeout=30, **kw)
