"""Fixtures for the Microsoft emulator tests: a running sandbox, a trusted session, Graph."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from scc_desktop.net import https_session
from scc_desktop.sandbox.microsoft.service import MicrosoftService
from scc_desktop.sandbox.server import SandboxServer

SCOPES = [
    "https://graph.microsoft.com/Mail.ReadWrite",
    "https://graph.microsoft.com/Calendars.ReadWrite",
]


class Graph:
    """A thin Graph client for tests: bearer token, base URL, admin helpers."""

    def __init__(self, server: SandboxServer, session: requests.Session, token: str) -> None:
        self.server = server
        self.session = session
        self.token = token
        info = server.info()["microsoft"]
        self.url: str = info["graph_url"]
        self.admin_url = server.admin_url

    def headers(self, prefer: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if prefer:
            headers["Prefer"] = prefer
        return headers

    def call(
        self, method: str, path: str, body: Any = None, prefer: str | None = None, **kw: Any
    ) -> requests.Response:
        url = path if path.startswith("https://") else self.url + path
        return self.session.request(
            method, url, json=body, headers=self.headers(prefer), timeout=30, **kw
        )

    def get(self, path: str, prefer: str | None = None) -> dict[str, Any]:
        response = self.call("GET", path, prefer=prefer)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def post(
        self, path: str, body: Any, status: int = 201, prefer: str | None = None
    ) -> dict[str, Any]:
        response = self.call("POST", path, body, prefer=prefer)
        assert response.status_code == status, response.text
        data: dict[str, Any] = response.json() if response.content else {}
        return data

    def admin(self, action: str, body: Any = None, method: str = "POST") -> Any:
        response = self.session.request(
            method,
            f"{self.admin_url}/{action}",
            data=json.dumps(body) if body is not None else None,
            timeout=30,
        )
        assert response.status_code < 300, response.text
        return response.json()

    def counters(self) -> dict[str, int]:
        data: dict[str, int] = self.admin("counters", method="GET").get("microsoft", {})
        return data


@pytest.fixture
def ms_server(tmp_path: Path) -> Iterator[SandboxServer]:
    server = SandboxServer(tmp_path / "sandbox", seed="empty", factories=[MicrosoftService])
    with server:
        yield server


@pytest.fixture
def ms_session(ms_server: SandboxServer) -> Iterator[requests.Session]:
    session = https_session(ms_server.ca.ca_file)
    yield session
    session.close()


def msal_app(server: SandboxServer, session: requests.Session) -> msal.PublicClientApplication:
    info = server.info()["microsoft"]
    return msal.PublicClientApplication(
        info["client_id"],
        authority=info["authority"],
        instance_discovery=False,
        http_client=session,
    )


@pytest.fixture
def graph(ms_server: SandboxServer, ms_session: requests.Session) -> Graph:
    """A signed-in Graph client (device flow approved at once)."""
    client = Graph(ms_server, ms_session, "")
    client.admin("microsoft/settings", {"device_approval_delay_s": 0})
    app = msal_app(ms_server, ms_session)
    flow = app.initiate_device_flow(scopes=SCOPES)
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    client.token = result["access_token"]
    client.admin("counters/reset")
    return client
