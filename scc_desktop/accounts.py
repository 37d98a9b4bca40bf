"""Real accounts: connect, disconnect, and the connections a sync session runs on.

Settings > Accounts calls `connect_salesforce` / `connect_microsoft` (on a worker thread: they
open the system browser and wait on a loopback listener) and `disconnect`. Secrets go to the
credential store (the OS keyring) through the auth modules; the accounts table keeps only
non-secret metadata: username, display name, endpoint and a JSON detail with the ids and the
connection settings used (login host, client id, authority, an optional CA file).

`AccountConnections` is the `ConnectionProvider` the sync worker uses outside `--sandbox`: it
builds both clients from the two rows and the credential store, keeps them between sessions, and
marks a row 'reconnect' when its service refuses the stored sign-in.

An optional `ca_file` (in the row's detail) makes the same code path work against the built-in
sandbox, which is how the tests connect to it as if it were a real org and mailbox.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scc_desktop.auth.credentials import CredentialStore
from scc_desktop.auth.loopback import DEFAULT_TIMEOUT_S, BrowserOpener
from scc_desktop.auth.microsoft import (
    CACHE_SECRET_NAME,
    BrowserUnavailable,
    DeviceCode,
    MicrosoftAccount,
    MicrosoftAuth,
)
from scc_desktop.auth.microsoft import RECONNECT_MESSAGE as MICROSOFT_RECONNECT
from scc_desktop.auth.salesforce import (
    PRODUCTION_LOGIN,
    REFRESH_TOKEN_NAME,
    SalesforceAccount,
    SalesforceAuth,
    SalesforceOAuthConfig,
)
from scc_desktop.context import AppContext
from scc_desktop.engine_runner import Connections
from scc_desktop.mailbox.graph.mailbox import GraphMailbox
from scc_desktop.mailbox.protocol import ReconnectRequired as MailboxReconnect
from scc_desktop.salesforce.errors import ReconnectRequired as SalesforceReconnect
from scc_desktop.salesforce.gateway import connect as connect_gateway
from scc_desktop.store.accounts import Accounts

log = logging.getLogger(__name__)

SALESFORCE = "salesforce"
MICROSOFT = "microsoft"

# --- connection settings (not secrets) ------------------------------------------------------------
#
# PLACEHOLDERS: a published scc-desktop build ships the ids of its publisher's own app
# registrations here - the consumer key of a Salesforce Connected App (PKCE, callback
# http://127.0.0.1 loopback, scopes "api refresh_token") and the application (client) id of an
# Entra ID public-client app registration (redirect http://localhost, device code flow allowed).
# Until replaced, set SCC_DESKTOP_SF_CLIENT_ID / SCC_DESKTOP_MS_CLIENT_ID, or connect with
# explicit ids; a connected account's row keeps the ids it was connected with.
SALESFORCE_CLIENT_ID = "scc-desktop"  # placeholder: the publisher's Connected App consumer key
MICROSOFT_CLIENT_ID = "scc-desktop"  # placeholder: the publisher's Entra ID application id
SF_CLIENT_ID_ENV = "SCC_DESKTOP_SF_CLIENT_ID"
MS_CLIENT_ID_ENV = "SCC_DESKTOP_MS_CLIENT_ID"

SALESFORCE_LOGIN_URL = PRODUCTION_LOGIN  # https://login.salesforce.com
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com/common"
GRAPH_URL = "https://graph.microsoft.com/v1.0"

# OAuth error codes that say "try later", not "sign in again": the row is not marked for them.
TRANSIENT_TOKEN_ERRORS = frozenset({"temporarily_unavailable", "server_error"})

CONNECTED = "connected"
RECONNECT = "reconnect"


def salesforce_client_id(explicit: str | None = None) -> str:
    """An explicit id, else $SCC_DESKTOP_SF_CLIENT_ID, else the shipped (placeholder) id."""
    return explicit or os.environ.get(SF_CLIENT_ID_ENV, "").strip() or SALESFORCE_CLIENT_ID


def microsoft_client_id(explicit: str | None = None) -> str:
    """An explicit id, else $SCC_DESKTOP_MS_CLIENT_ID, else the shipped (placeholder) id."""
    return explicit or os.environ.get(MS_CLIENT_ID_ENV, "").strip() or MICROSOFT_CLIENT_ID


# --- account rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    """One row of the accounts table, as the connection code needs it."""

    kind: str
    username: str
    display_name: str
    endpoint: str
    state: str
    detail: dict[str, str]
    updated_at: str

    @property
    def ca_file(self) -> str | None:
        return self.detail.get("ca_file") or None


def read_account(ctx: AppContext, kind: str) -> AccountRow | None:
    row = (
        ctx.db.connect()
        .execute(
            "SELECT kind, username, display_name, endpoint, state, detail, updated_at "
            "FROM accounts WHERE kind = ?",
            (kind,),
        )
        .fetchone()
    )
    if row is None:
        return None
    try:
        raw = json.loads(row["detail"] or "{}")
    except ValueError:
        raw = {}
    detail = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return AccountRow(
        kind=str(row["kind"]),
        username=str(row["username"]),
        display_name=str(row["display_name"]),
        endpoint=str(row["endpoint"]),
        state=str(row["state"]),
        detail=detail,
        updated_at=str(row["updated_at"]),
    )


def _salesforce_config(
    login_url: str, client_id: str | None, ca_file: str | Path | None
) -> SalesforceOAuthConfig:
    return SalesforceOAuthConfig(
        login_url=login_url,
        client_id=salesforce_client_id(client_id),
        ca_file=Path(ca_file) if ca_file else None,
    )


def salesforce_auth(ctx: AppContext, row: AccountRow) -> SalesforceAuth:
    """A SalesforceAuth for a saved row (its refresh token is in ctx.credentials)."""
    detail = row.detail
    config = _salesforce_config(
        detail.get("login_url") or SALESFORCE_LOGIN_URL, detail.get("client_id"), row.ca_file
    )
    return _MarkingSalesforceAuth(
        config,
        ctx.credentials,
        instance_url=row.endpoint or None,
        on_reconnect=_marker(ctx, SALESFORCE),
    )


def microsoft_auth(ctx: AppContext, row: AccountRow) -> MicrosoftAuth:
    """A MicrosoftAuth for a saved row (its token cache is in ctx.credentials)."""
    detail = row.detail
    return _MarkingMicrosoftAuth(
        microsoft_client_id(detail.get("client_id")),
        detail.get("authority") or MICROSOFT_AUTHORITY,
        ctx.credentials,
        ca_file=row.ca_file,
        on_reconnect=_marker(ctx, MICROSOFT),
    )


# --- connect / disconnect -------------------------------------------------------------------------


def connect_salesforce(
    ctx: AppContext,
    login_url: str = SALESFORCE_LOGIN_URL,
    *,
    client_id: str | None = None,
    ca_file: str | Path | None = None,
    open_browser: BrowserOpener | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> SalesforceAccount:
    """Sign in through the system browser (or `open_browser`); keep the refresh token in the
    credential store and save the accounts row. `login_url`: login / test / a My Domain URL."""
    config = _salesforce_config(login_url, client_id, ca_file)
    auth = SalesforceAuth(config, ctx.credentials)
    account = auth.sign_in(open_browser=open_browser, timeout=timeout)
    detail = account.detail()
    detail["client_id"] = config.client_id
    if config.ca_file is not None:
        detail["ca_file"] = str(config.ca_file)
    Accounts(ctx.db).save(
        SALESFORCE,
        account.username,
        display_name=account.display_name,
        endpoint=account.instance_url,
        state=CONNECTED,
        detail=detail,
    )
    return account


def connect_microsoft(
    ctx: AppContext,
    *,
    show_code: Callable[[DeviceCode], None],
    authority: str | None = None,
    client_id: str | None = None,
    graph_url: str | None = None,
    ca_file: str | Path | None = None,
    interactive: bool = True,
    cancel: threading.Event | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> MicrosoftAccount:
    """Sign in to Microsoft 365: the system browser first (`interactive`), the device-code flow
    when no browser opens (or at once with interactive=False); `show_code` tells the user the
    code, `cancel` stops the device-code wait. Saves the accounts row."""
    resolved_authority = (authority or MICROSOFT_AUTHORITY).rstrip("/")
    resolved_id = microsoft_client_id(client_id)
    ca = str(ca_file) if ca_file else None
    auth = MicrosoftAuth(resolved_id, resolved_authority, ctx.credentials, ca_file=ca)
    account: MicrosoftAccount | None = None
    if interactive:
        try:
            account = auth.sign_in_interactive(timeout=timeout)
        except BrowserUnavailable:
            log.info("no browser for Microsoft sign-in; using the device-code flow")
    if account is None:
        account = auth.sign_in_device_flow(show_code, cancel=cancel)
    detail = {
        "authority": resolved_authority,
        "client_id": resolved_id,
        "home_account_id": account.home_account_id,
    }
    if ca:
        detail["ca_file"] = ca
    Accounts(ctx.db).save(
        MICROSOFT,
        account.username,
        display_name=account.name,
        endpoint=(graph_url or GRAPH_URL).rstrip("/"),
        state=CONNECTED,
        detail=detail,
    )
    return account


def disconnect(ctx: AppContext, kind: str) -> None:
    """Sign out (revoking the refresh token where the service allows), delete the secrets from
    the credential store and remove the row. Works offline: the secrets are deleted anyway."""
    row = read_account(ctx, kind)
    if kind == SALESFORCE:
        if row is not None:
            try:
                salesforce_auth(ctx, row).sign_out()
            except Exception:  # an unreachable host must not keep the token here
                log.warning("Salesforce sign-out did not complete; forgetting the token")
        ctx.credentials.delete(REFRESH_TOKEN_NAME)
    elif kind == MICROSOFT:
        if row is not None:
            try:
                microsoft_auth(ctx, row).sign_out()
            except Exception:
                log.warning("Microsoft sign-out did not complete; forgetting the token cache")
        ctx.credentials.delete(CACHE_SECRET_NAME)
    else:
        raise ValueError(f"unknown account kind {kind!r}")
    Accounts(ctx.db).remove(kind)
    log.info("%s account disconnected", kind)


# --- reconnect marking ---------------------------------------------------------------------------


def mark_reconnect(ctx: AppContext, kind: str, *, close_connection: bool = False) -> None:
    """Set the row's state to 'reconnect'. `close_connection` closes this thread's SQLite
    connection afterwards (for a helper thread, e.g. one of Graph's, that has no other use)."""
    log.warning("%s refused the stored sign-in: reconnect needed", kind)
    try:
        Accounts(ctx.db).set_state(kind, RECONNECT)
    except Exception:
        log.exception("could not mark the %s account for reconnecting", kind)
    finally:
        if close_connection:
            ctx.db.close()


def _marker(ctx: AppContext, kind: str) -> Callable[[], None]:
    """Marks from any thread; only the creating thread (the session's) keeps its connection."""
    owner = threading.get_ident()
    return lambda: mark_reconnect(ctx, kind, close_connection=threading.get_ident() != owner)


class _MarkingSalesforceAuth(SalesforceAuth):
    """SalesforceAuth that marks the row when Salesforce refuses the refresh token."""

    def __init__(
        self,
        config: SalesforceOAuthConfig,
        credentials: CredentialStore,
        *,
        instance_url: str | None,
        on_reconnect: Callable[[], None],
    ) -> None:
        super().__init__(config, credentials, instance_url=instance_url)
        self._on_reconnect = on_reconnect

    def refresh(self) -> str:
        try:
            return super().refresh()
        except SalesforceReconnect:
            self._on_reconnect()
            raise


class _MarkingMicrosoftAuth(MicrosoftAuth):
    """MicrosoftAuth that marks the row when the silent refresh is refused."""

    def __init__(
        self,
        client_id: str,
        authority: str,
        credentials: CredentialStore,
        *,
        ca_file: str | None,
        on_reconnect: Callable[[], None],
    ) -> None:
        super().__init__(client_id, authority, credentials, ca_file=ca_file)
        self._on_reconnect = on_reconnect

    def access_token(self, *, force_refresh: bool = False) -> str:
        try:
            return super().access_token(force_refresh=force_refresh)
        except MailboxReconnect as exc:
            if exc.detail not in TRANSIENT_TOKEN_ERRORS:  # a passing outage is not a refusal
                self._on_reconnect()
            raise


# --- the connection provider ----------------------------------------------------------------------


def _row_key(row: AccountRow) -> tuple[Any, ...]:
    return (row.username, row.endpoint, row.updated_at, tuple(sorted(row.detail.items())))


class AccountConnections:
    """The user's own accounts, as a `ConnectionProvider` for `EngineRunner`.

    None while either account is missing. The clients are built once and kept between sessions
    (in the worker thread that uses them), and rebuilt when a row changes (a reconnect or a
    different account). A refused sign-in marks its row 'reconnect' and propagates as
    ReconnectRequired, so the session ends with "Reconnect Salesforce" / "Reconnect Microsoft
    365".
    """

    def __init__(self) -> None:
        self._connections: Connections | None = None
        self._key: tuple[Any, ...] | None = None

    def connect(self, ctx: AppContext) -> Connections | None:
        sf_row = read_account(ctx, SALESFORCE)
        ms_row = read_account(ctx, MICROSOFT)
        if sf_row is None or ms_row is None:
            self._connections = None
            self._key = None
            return None
        # A row marked during an earlier session stays marked until the user reconnects (which
        # saves the row again): no call is made with a sign-in the service already refused.
        if sf_row.state == RECONNECT:
            raise SalesforceReconnect("the Salesforce sign-in was refused; reconnect needed")
        if ms_row.state == RECONNECT:
            raise MailboxReconnect(MICROSOFT_RECONNECT, "the Microsoft sign-in was refused")
        key = (_row_key(sf_row), _row_key(ms_row))
        if self._connections is None or key != self._key:
            self._connections = self._build(ctx, sf_row, ms_row)
            self._key = key
        return self._connections

    @staticmethod
    def _build(ctx: AppContext, sf_row: AccountRow, ms_row: AccountRow) -> Connections:
        sf_auth = salesforce_auth(ctx, sf_row)
        if not sf_auth.has_refresh_token():
            mark_reconnect(ctx, SALESFORCE)
            raise SalesforceReconnect("no Salesforce refresh token is stored")
        ms_auth = microsoft_auth(ctx, ms_row)
        if not ms_auth.is_signed_in():
            mark_reconnect(ctx, MICROSOFT)
            raise MailboxReconnect(MICROSOFT_RECONNECT, "no Microsoft sign-in is stored")
        user_id = sf_row.detail.get("user_id", "")
        gateway = connect_gateway(
            sf_auth, db=ctx.db, org_id=sf_row.detail.get("org_id", ""), user_id=user_id
        )
        mailbox = GraphMailbox.connect(
            ms_row.endpoint or GRAPH_URL,
            ms_auth,
            ca_file=ms_row.ca_file,
            owner=ms_row.username,
        )
        return Connections(gateway, mailbox, user_id)
