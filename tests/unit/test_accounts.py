"""scc_desktop.accounts without a network: rows -> clients, client ids, reconnect marking,
offline disconnect."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest

from scc_desktop import accounts
from scc_desktop.accounts import (
    MICROSOFT,
    SALESFORCE,
    AccountConnections,
    disconnect,
    microsoft_auth,
    read_account,
    salesforce_auth,
)
from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.auth.microsoft import CACHE_SECRET_NAME, MicrosoftAuth
from scc_desktop.auth.salesforce import REFRESH_TOKEN_NAME, SalesforceAuth
from scc_desktop.context import AppContext
from scc_desktop.engine_runner import EngineRunner
from scc_desktop.mailbox.protocol import ReconnectRequired as MailboxReconnect
from scc_desktop.salesforce.errors import ReconnectRequired as SalesforceReconnect
from scc_desktop.store.accounts import Accounts

# Nothing listens on port 9 of the loopback: every call is refused at once.
DEAD_HOST = "https://127.0.0.1:9"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    context = AppContext.open(
        tmp_path / "p", secret_backend=MemoryBackend(), policy_path=tmp_path / "none.toml"
    )
    yield context
    context.db.close()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def msal_cache(client_id: str, authority: str, username: str) -> str:
    """A serialized msal cache holding one signed-in account (as a sign-in leaves it)."""
    now = int(time.time())
    claims = {
        "oid": "oid-1",
        "tid": "tenant-1",
        "preferred_username": username,
        "name": "Pat Example",
        "iss": f"{authority}/v2.0",
        "sub": "sub-1",
        "aud": client_id,
        "exp": now + 3600,
        "iat": now,
    }
    cache = msal.SerializableTokenCache()
    cache.add(
        {
            "client_id": client_id,
            "scope": ["User.Read"],
            "token_endpoint": f"{authority}/oauth2/v2.0/token",
            "response": {
                "access_token": "access-1",
                "refresh_token": "refresh-1",
                "id_token": f"{_b64({'alg': 'none'})}.{_b64(claims)}.sig",
                "client_info": _b64({"uid": "oid-1", "utid": "tenant-1"}),
                "expires_in": 3600,
                "token_type": "Bearer",
                "scope": "User.Read",
            },
        }
    )
    return str(cache.serialize())


def save_rows(ctx: AppContext, *, salesforce: bool = True, microsoft: bool = True) -> None:
    store = Accounts(ctx.db)
    if salesforce:
        store.save(
            SALESFORCE,
            "pat@example.com",
            display_name="Pat Example",
            endpoint="https://example.my.salesforce.com",
            detail={
                "org_id": "00Dxx0000000001",
                "user_id": "005xx0000000001",
                "login_url": DEAD_HOST,
                "client_id": "consumer-key-1",
            },
        )
        ctx.credentials.set(REFRESH_TOKEN_NAME, "sf-refresh-1")
    if microsoft:
        authority = f"{DEAD_HOST}/common"
        store.save(
            MICROSOFT,
            "pat@example.com",
            display_name="Pat Example",
            endpoint="https://graph.example.test/v1.0",
            detail={"authority": authority, "client_id": "app-id-1"},
        )
        ctx.credentials.set(CACHE_SECRET_NAME, msal_cache("app-id-1", authority, "pat@example.com"))


def test_no_connections_until_both_rows_exist(ctx: AppContext) -> None:
    provider = AccountConnections()
    assert provider.connect(ctx) is None
    save_rows(ctx, microsoft=False)
    assert provider.connect(ctx) is None
    outcome = EngineRunner(ctx, provider).run("manual", lambda _: None)
    assert outcome.status == "not_connected"


def test_clients_are_built_from_the_rows_and_kept(ctx: AppContext) -> None:
    save_rows(ctx)
    provider = AccountConnections()
    connections = provider.connect(ctx)
    assert connections is not None
    assert connections.salesforce_user_id == "005xx0000000001"
    assert connections.gateway.org_id == "00Dxx0000000001"
    sf_auth = connections.gateway.client.tokens
    assert isinstance(sf_auth, SalesforceAuth)
    assert sf_auth.config.client_id == "consumer-key-1"
    assert sf_auth.config.login_url == DEAD_HOST
    assert sf_auth.instance_url == "https://example.my.salesforce.com"
    assert connections.mailbox.http.base_url == "https://graph.example.test/v1.0"
    ms_auth = connections.mailbox.http.tokens
    assert isinstance(ms_auth, MicrosoftAuth)
    assert ms_auth.client_id == "app-id-1"
    assert connections.mailbox.owner() == "pat@example.com"
    assert provider.connect(ctx) is connections
    # A reconnect saves the row again: fresh clients.
    Accounts(ctx.db).save(
        SALESFORCE,
        "pat@example.com",
        endpoint="https://other.my.salesforce.com",
        detail={"org_id": "00D2", "user_id": "0052", "login_url": DEAD_HOST},
    )
    rebuilt = provider.connect(ctx)
    assert rebuilt is not None and rebuilt is not connections
    assert rebuilt.salesforce_user_id == "0052"


def test_client_ids_come_from_the_row_then_the_environment(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(accounts.SF_CLIENT_ID_ENV, raising=False)
    monkeypatch.delenv(accounts.MS_CLIENT_ID_ENV, raising=False)
    assert accounts.salesforce_client_id() == accounts.SALESFORCE_CLIENT_ID
    assert accounts.microsoft_client_id() == accounts.MICROSOFT_CLIENT_ID
    monkeypatch.setenv(accounts.SF_CLIENT_ID_ENV, "sf-from-env")
    monkeypatch.setenv(accounts.MS_CLIENT_ID_ENV, "ms-from-env")
    assert accounts.salesforce_client_id() == "sf-from-env"
    assert accounts.microsoft_client_id() == "ms-from-env"
    assert accounts.salesforce_client_id("explicit") == "explicit"
    Accounts(ctx.db).save(SALESFORCE, "u", detail={"login_url": "test"})
    row = read_account(ctx, SALESFORCE)
    assert row is not None
    auth = salesforce_auth(ctx, row)
    assert auth.config.client_id == "sf-from-env"
    assert auth.config.login_url == "https://test.salesforce.com"
    Accounts(ctx.db).save(MICROSOFT, "u")
    ms_row = read_account(ctx, MICROSOFT)
    assert ms_row is not None
    ms = microsoft_auth(ctx, ms_row)
    assert ms.client_id == "ms-from-env"
    assert ms.authority == accounts.MICROSOFT_AUTHORITY


class RefusingSession:
    """A token endpoint that refuses the refresh token, as Salesforce does once it is revoked."""

    class Reply:
        status_code = 400

        @staticmethod
        def json() -> dict[str, str]:
            return {"error": "invalid_grant", "error_description": "expired access/refresh token"}

    def post(self, *args: object, **kwargs: object) -> Reply:
        return self.Reply()


def test_a_refused_refresh_token_marks_the_row_and_ends_later_sessions(ctx: AppContext) -> None:
    save_rows(ctx)
    provider = AccountConnections()
    connections = provider.connect(ctx)
    assert connections is not None
    auth = connections.gateway.client.tokens
    assert isinstance(auth, SalesforceAuth)
    auth.session = RefusingSession()  # type: ignore[assignment]
    with pytest.raises(SalesforceReconnect):
        auth.refresh()
    row = read_account(ctx, SALESFORCE)
    assert row is not None and row.state == "reconnect"
    with pytest.raises(SalesforceReconnect):
        provider.connect(ctx)
    outcome = EngineRunner(ctx, provider).run("manual", lambda _: None)
    assert outcome.message == "Reconnect Salesforce"
    assert outcome.status == "failed" and outcome.needs_attention


def test_a_refused_microsoft_sign_in_marks_the_row_from_any_thread(ctx: AppContext) -> None:
    save_rows(ctx)
    row = read_account(ctx, MICROSOFT)
    assert row is not None
    auth = microsoft_auth(ctx, row)
    ctx.credentials.delete(CACHE_SECRET_NAME)
    signed_out = microsoft_auth(ctx, row)  # no cache: "not signed in"
    errors: list[BaseException] = []

    def call() -> None:
        try:
            signed_out.access_token()
        except BaseException as exc:
            errors.append(exc)

    helper = threading.Thread(target=call)
    helper.start()
    helper.join(10)
    assert len(errors) == 1 and isinstance(errors[0], MailboxReconnect)
    assert errors[0].user_message == "Reconnect Microsoft 365"
    marked = read_account(ctx, MICROSOFT)
    assert marked is not None and marked.state == "reconnect"
    assert auth.client_id == "app-id-1"
    outcome = EngineRunner(ctx, AccountConnections()).run("manual", lambda _: None)
    assert outcome.message == "Reconnect Microsoft 365"


def test_missing_secrets_mean_reconnect(ctx: AppContext) -> None:
    save_rows(ctx)
    ctx.credentials.delete(REFRESH_TOKEN_NAME)
    outcome = EngineRunner(ctx, AccountConnections()).run("manual", lambda _: None)
    assert outcome.message == "Reconnect Salesforce"
    row = read_account(ctx, SALESFORCE)
    assert row is not None and row.state == "reconnect"


def test_disconnect_offline_still_forgets_secrets_and_rows(ctx: AppContext) -> None:
    save_rows(ctx)
    disconnect(ctx, SALESFORCE)
    assert ctx.credentials.get(REFRESH_TOKEN_NAME) is None
    assert read_account(ctx, SALESFORCE) is None
    disconnect(ctx, MICROSOFT)
    assert ctx.credentials.get(CACHE_SECRET_NAME) is None
    assert read_account(ctx, MICROSOFT) is None
    disconnect(ctx, MICROSOFT)  # twice is harmless
    with pytest.raises(ValueError, match="unknown account kind"):
        disconnect(ctx, "google")


def test_a_passing_token_endpoint_outage_does_not_mark_the_row(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_rows(ctx)
    row = read_account(ctx, MICROSOFT)
    assert row is not None
    auth = microsoft_auth(ctx, row)

    def outage(self: MicrosoftAuth, *, force_refresh: bool = False) -> str:
        raise MailboxReconnect("Reconnect Microsoft 365", "temporarily_unavailable")

    monkeypatch.setattr(MicrosoftAuth, "access_token", outage)
    with pytest.raises(MailboxReconnect):
        auth.access_token()
    unmarked = read_account(ctx, MICROSOFT)
    assert unmarked is not None and unmarked.state == "connected"
