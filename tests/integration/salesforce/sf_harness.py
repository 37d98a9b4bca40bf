"""Helpers for the Salesforce integration tests: a scripted browser, the admin API, results."""

from __future__ import annotations

import webbrowser
from dataclasses import dataclass
from typing import Any

import requests

from scc_desktop.auth.credentials import CredentialStore
from scc_desktop.auth.salesforce import SalesforceAccount, SalesforceAuth
from scc_desktop.sandbox.server import SandboxServer


class ScriptedBrowser(webbrowser.BaseBrowser):
    """GETs the authorize URL over TLS, reads the 302 Location, GETs it on the loopback."""

    def __init__(self, ca_file: str) -> None:
        super().__init__("scc-test")
        self.ca_file = ca_file
        self.opened: list[str] = []
        self.landing: requests.Response | None = None

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.opened.append(url)
        approval = requests.get(url, verify=self.ca_file, allow_redirects=False, timeout=10)
        assert approval.status_code == 302, approval.text
        location = approval.headers["Location"]
        assert location.startswith("http://127.0.0.1:")
        self.landing = requests.get(location, timeout=10)
        return True


class Admin:
    """The sandbox's admin API over TLS."""

    def __init__(self, server: SandboxServer) -> None:
        self.url = server.admin_url
        self.http = requests.Session()
        self.http.trust_env = False  # the admin API is reached directly, whatever the env says
        self.ca_file = str(
            server.ca.ca_file
        )  # per request: REQUESTS_CA_BUNDLE beats Session.verify

    def post(self, action: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(
            f"{self.url}/{action}", json=body or {}, verify=self.ca_file, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, action: str) -> Any:
        response = self.http.get(f"{self.url}/{action}", verify=self.ca_file, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def reset(self, seed: str = "demo", **params: Any) -> None:
        self.post("reset", {"seed": seed, "params": params})

    def faults(self, **profile: Any) -> None:
        self.post("faults", {"service": "salesforce", **profile})

    def counters(self) -> dict[str, int]:
        return dict(self.get("counters").get("salesforce", {}))

    def reset_counters(self) -> None:
        self.post("counters/reset")

    def settings(self, **changes: Any) -> Any:
        return self.post("salesforce/settings", changes)

    def expire_tokens(self) -> Any:
        return self.post("salesforce/expire_tokens")


@dataclass
class SignedIn:
    auth: SalesforceAuth
    account: SalesforceAccount
    credentials: CredentialStore


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
