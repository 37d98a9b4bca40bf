"""Settings > Accounts' code path against the built-in sandbox, as if it were a real org and
mailbox: the real Salesforce browser flow (the sandbox approves at once) and Microsoft's device
flow (approved through the sandbox admin API), then real sessions through AccountConnections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scc_desktop.accounts import (
    MICROSOFT,
    SALESFORCE,
    AccountConnections,
    connect_microsoft,
    connect_salesforce,
    disconnect,
    read_account,
)
from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.auth.microsoft import CACHE_SECRET_NAME, DeviceCode
from scc_desktop.auth.salesforce import REFRESH_TOKEN_NAME, sandbox_opener
from scc_desktop.context import AppContext
from scc_desktop.engine_runner import EngineRunner
from scc_desktop.net import https_session
from scc_desktop.sandbox.server import SandboxServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(tmp_path / "sandbox", port=0, seed="demo") as running:
        yield running


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    context = AppContext.open(
        tmp_path / "p", secret_backend=MemoryBackend(), policy_path=tmp_path / "none.toml"
    )
    yield context
    context.db.close()


def admin(server: SandboxServer, action: str, body: dict[str, Any] | None = None) -> Any:
    with https_session(server.ca.ca_file) as http:
        reply = http.post(f"{server.admin_url}/{action}", json=body or {}, timeout=30)
        reply.raise_for_status()
        return reply.json()


def connect_both(ctx: AppContext, server: SandboxServer) -> list[DeviceCode]:
    info = server.info()
    ca_file = server.ca.ca_file
    sf_account = connect_salesforce(
        ctx,
        info["salesforce"]["login_url"],
        client_id=info["salesforce"]["client_id"],
        ca_file=ca_file,
        open_browser=sandbox_opener(ca_file),
        timeout=30,
    )
    assert sf_account.username == info["salesforce"]["username"]
    shown: list[DeviceCode] = []

    def approve(code: DeviceCode) -> None:
        shown.append(code)
        admin(server, "microsoft/approve_device", {"user_code": code.user_code})

    ms = info["microsoft"]
    ms_account = connect_microsoft(
        ctx,
        show_code=approve,
        authority=ms["authority"],
        client_id=ms["client_id"],
        graph_url=ms["graph_url"],
        ca_file=ca_file,
        interactive=False,
    )
    assert ms_account.username.lower() == str(ms["username"]).lower()
    return shown


def test_connect_sync_reconnect_and_disconnect(ctx: AppContext, server: SandboxServer) -> None:
    provider = AccountConnections()
    runner = EngineRunner(ctx, provider)
    assert runner.run("manual", lambda _: None).status == "not_connected"

    shown = connect_both(ctx, server)
    assert shown and shown[0].user_code

    sf = read_account(ctx, SALESFORCE)
    ms = read_account(ctx, MICROSOFT)
    assert sf is not None and ms is not None
    assert sf.state == ms.state == "connected"
    assert sf.endpoint == server.info()["salesforce"]["instance_url"].rstrip("/")
    assert {"org_id", "user_id", "login_url", "client_id", "ca_file"} <= set(sf.detail)
    assert ms.endpoint == server.info()["microsoft"]["graph_url"]
    # Secrets only in the credential store, never in the row.
    refresh_token = ctx.credentials.get(REFRESH_TOKEN_NAME)
    assert refresh_token and ctx.credentials.get(CACHE_SECRET_NAME)
    raw_rows = json.dumps(
        [dict(r) for r in ctx.db.connect().execute("SELECT * FROM accounts").fetchall()]
    )
    assert refresh_token not in raw_rows

    first = runner.run("manual", lambda _: None)
    assert first.status == "ok", first
    assert first.changes > 0
    connections = provider.connect(ctx)
    assert connections is provider.connect(ctx)  # clients kept between sessions

    admin(server, "salesforce/revoke_refresh_tokens")
    admin(server, "salesforce/expire_tokens")
    revoked = runner.run("manual", lambda _: None)
    assert revoked.status == "failed" and revoked.needs_attention
    assert revoked.message == "Reconnect Salesforce"  # the session that meets the refusal
    sf_after = read_account(ctx, SALESFORCE)
    assert sf_after is not None and sf_after.state == "reconnect"
    ms_after = read_account(ctx, MICROSOFT)
    assert ms_after is not None and ms_after.state == "connected"
    following = runner.run("manual", lambda _: None)
    assert following.message == "Reconnect Salesforce"
    assert following.status == "failed" and following.needs_attention

    # Reconnecting brings the row back and the next session runs again on fresh clients.
    info = server.info()
    connect_salesforce(
        ctx,
        info["salesforce"]["login_url"],
        client_id=info["salesforce"]["client_id"],
        ca_file=server.ca.ca_file,
        open_browser=sandbox_opener(server.ca.ca_file),
        timeout=30,
    )
    again = runner.run("manual", lambda _: None)
    assert again.status == "ok", again
    assert provider.connect(ctx) is not connections

    disconnect(ctx, SALESFORCE)
    disconnect(ctx, MICROSOFT)
    assert ctx.credentials.get(REFRESH_TOKEN_NAME) is None
    assert ctx.credentials.get(CACHE_SECRET_NAME) is None
    assert read_account(ctx, SALESFORCE) is None and read_account(ctx, MICROSOFT) is None
    assert runner.run("manual", lambda _: None).status == "not_connected"
