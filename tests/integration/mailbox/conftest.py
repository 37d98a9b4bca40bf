"""The Microsoft sandbox over real TLS, a signed-in MicrosoftAuth and a GraphMailbox on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scc_desktop.auth.credentials import CredentialStore, MemoryBackend
from scc_desktop.auth.microsoft import DeviceCode, MicrosoftAuth
from scc_desktop.mailbox.graph import GraphHttp, GraphMailbox
from scc_desktop.net import https_session
from scc_desktop.sandbox.microsoft.service import MicrosoftService
from scc_desktop.sandbox.server import SandboxServer


class Admin:
    """The sandbox's admin API and counters, over the same TLS."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.session = https_session(server.ca.ca_file)
        self.url = server.admin_url

    def post(self, action: str, body: dict[str, Any] | None = None) -> Any:
        r = self.session.post(f"{self.url}/{action}", json=body or {}, timeout=60)
        assert r.status_code < 300, r.text
        return r.json()

    def get(self, action: str, **params: str) -> Any:
        r = self.session.get(f"{self.url}/{action}", params=params, timeout=60)
        assert r.status_code < 300, r.text
        return r.json()

    def ms(self, action: str, body: dict[str, Any] | None = None) -> Any:
        return self.post(f"microsoft/{action}", body)

    def dump(self, kind: str) -> list[dict[str, Any]]:
        return self.get("microsoft/dump", kind=kind)  # type: ignore[no-any-return]

    def reset(self, seed: str = "empty", **params: Any) -> None:
        self.post("reset", {"seed": seed, "params": params, "services": ["microsoft"]})

    def counters(self) -> dict[str, int]:
        return self.get("counters").get("microsoft", {})  # type: ignore[no-any-return]

    def reset_counters(self) -> None:
        self.post("counters/reset")

    def faults(self, **profile: Any) -> None:
        self.post("faults", {"service": "microsoft", **profile})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(
        tmp_path / "sandbox", port=0, seed="empty", factories=[MicrosoftService]
    ) as srv:
        yield srv


@pytest.fixture
def admin(server: SandboxServer) -> Admin:
    return Admin(server)


@pytest.fixture
def ms_info(server: SandboxServer) -> dict[str, Any]:
    return server.info()["microsoft"]  # type: ignore[no-any-return]


@pytest.fixture
def store() -> CredentialStore:
    return CredentialStore("test-profile", MemoryBackend())


def _make_auth(server: SandboxServer, store: CredentialStore) -> MicrosoftAuth:
    info = server.info()["microsoft"]
    return MicrosoftAuth(
        info["client_id"], info["authority"], store, ca_file=str(server.ca.ca_file)
    )


@pytest.fixture
def make_auth(server: SandboxServer) -> Callable[[CredentialStore], MicrosoftAuth]:
    """A new MicrosoftAuth on a credential store (a new process, as far as msal knows)."""
    return lambda store: _make_auth(server, store)


@pytest.fixture
def auth(server: SandboxServer, admin: Admin, store: CredentialStore) -> MicrosoftAuth:
    """Signed in through the device-code flow, approved through the admin API."""
    auth = _make_auth(server, store)

    def approve(code: DeviceCode) -> None:
        admin.ms("approve_device", {"user_code": code.user_code})

    auth.sign_in_device_flow(approve)
    return auth


class Sleeps(list[float]):
    """An injectable sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def mailbox(
    server: SandboxServer, auth: MicrosoftAuth, ms_info: dict[str, Any], sleeps: Sleeps
) -> GraphMailbox:
    http = GraphHttp(ms_info["graph_url"], auth, ca_file=str(server.ca.ca_file), sleep=sleeps)
    return GraphMailbox(http, page_size=100)
