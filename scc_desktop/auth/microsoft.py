"""Microsoft 365 sign-in on msal: system browser (auth code + PKCE, loopback), device code, silent
refresh, and the token cache kept in the OS keyring through the credential store.

msal needs an https authority; the sandbox serves one on 127.0.0.1 with a local CA that the
`requests.Session` given here trusts (`session.verify = ca_file`). Tokens never reach a log or
the state database: the only copy on disk is the serialized msal cache in the keyring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import msal
import requests

from scc_desktop.auth.credentials import CredentialStore
from scc_desktop.mailbox.protocol import ReconnectRequired
from scc_desktop.net import https_session

log = logging.getLogger(__name__)

RECONNECT_MESSAGE = "Reconnect Microsoft 365"
CACHE_SECRET_NAME = "microsoft.token_cache"  # noqa: S105 - a keyring entry name

# msal adds openid, profile and offline_access itself (and refuses them when passed).
SCOPES: tuple[str, ...] = (
    "User.Read",
    "Mail.ReadWrite",
    "Contacts.ReadWrite",
    "Calendars.ReadWrite",
    "Tasks.ReadWrite",
)
DEFAULT_AUTHORITY = "https://login.microsoftonline.com/organizations"


class SignInError(Exception):
    """A sign-in attempt failed or was cancelled; `user_message` is shown to the user."""

    def __init__(self, user_message: str, code: str = "") -> None:
        super().__init__(f"{user_message} ({code})" if code else user_message)
        self.user_message = user_message
        self.code = code


class BrowserUnavailable(SignInError):
    """No system browser could be opened: fall back to the device-code flow."""


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs to finish a device-code sign-in on another device."""

    user_code: str
    verification_uri: str
    message: str
    expires_at: float  # time.time() seconds


@dataclass(frozen=True)
class MicrosoftAccount:
    username: str
    home_account_id: str
    name: str = ""


def _post_quietly(url: str, form: dict[str, str]) -> None:
    try:
        requests.post(url, data=form, timeout=5)
    except requests.RequestException:
        log.debug("could not end the sign-in listener")


def _reconnect(detail: str) -> ReconnectRequired:
    return ReconnectRequired(RECONNECT_MESSAGE, detail)


class MicrosoftAuth:
    """One profile's Microsoft sign-in. Thread-safe: Graph calls from several worker threads
    share it; `access_token()` refreshes silently and persists the cache when it changed."""

    def __init__(
        self,
        client_id: str,
        authority: str,
        credentials: CredentialStore,
        *,
        session: requests.Session | None = None,
        ca_file: str | None = None,
        scopes: Sequence[str] = SCOPES,
        cache_name: str = CACHE_SECRET_NAME,
    ) -> None:
        self.client_id = client_id
        self.authority = authority.rstrip("/")
        self.scopes = list(scopes)
        self._credentials = credentials
        self._cache_name = cache_name
        self._lock = threading.RLock()
        # requests would let REQUESTS_CA_BUNDLE override `session.verify`: pin the CA per request
        self._session = session if session is not None else https_session(ca_file)
        self._cache = msal.SerializableTokenCache()
        stored = credentials.get(cache_name)
        if stored:
            try:
                self._cache.deserialize(stored)
            except ValueError:
                log.warning("the stored Microsoft token cache is unreadable; sign-in needed")
        self._app: Any = None

    # -- msal application ------------------------------------------------------------------
    @property
    def app(self) -> Any:
        """The msal PublicClientApplication, built on first use (it fetches the OIDC metadata)."""
        with self._lock:
            if self._app is None:
                try:
                    self._app = msal.PublicClientApplication(
                        self.client_id,
                        authority=self.authority,
                        token_cache=self._cache,
                        http_client=self._session,
                        instance_discovery=False,
                    )
                except (ValueError, requests.RequestException) as exc:
                    raise SignInError(
                        "Microsoft 365 sign-in is not reachable right now.", type(exc).__name__
                    ) from exc
            return self._app

    def _persist(self) -> None:
        if self._cache.has_state_changed:
            self._credentials.set(self._cache_name, self._cache.serialize())
            self._cache.has_state_changed = False

    def _accept(self, result: dict[str, Any] | None, what: str) -> MicrosoftAccount:
        if not result or "access_token" not in result:
            code = str((result or {}).get("error", "no_result"))
            log.warning("Microsoft %s failed: %s", what, code)
            raise SignInError("Microsoft 365 sign-in did not complete.", code)
        self._persist()
        account = self.account()
        if account is None:
            raise SignInError("Microsoft 365 sign-in returned no account.", "no_account")
        log.info("signed in to Microsoft 365 as %s (%s)", account.username, what)
        return account

    # -- sign-in -------------------------------------------------------------------------------
    def sign_in_interactive(
        self,
        *,
        timeout: float | None = 300,
        login_hint: str | None = None,
        port: int | None = None,
    ) -> MicrosoftAccount:
        """Sign in in the system browser (auth code + PKCE, redirect to http://localhost)."""
        with self._lock:
            app = self.app
        no_browser = threading.Event()

        def browser_failed(auth_uri: str) -> None:
            # msal found no browser and would wait for the timeout: end its listener at once
            # with an error response (it accepts form_post only, and checks the state).
            no_browser.set()
            query = parse_qs(urlparse(auth_uri).query)
            redirect = query.get("redirect_uri", [""])[0]
            if redirect.startswith("http://localhost:"):
                form = {"error": "browser_unavailable", "state": query.get("state", [""])[0]}
                threading.Thread(target=_post_quietly, args=(redirect, form), daemon=True).start()

        result: dict[str, Any] | None = app.acquire_token_interactive(
            self.scopes,
            login_hint=login_hint,
            timeout=timeout,
            port=port,
            prompt="select_account",
            auth_uri_callback=browser_failed,
            success_template="Signed in to scc-desktop. You can close this tab.",
        )
        if no_browser.is_set() and "access_token" not in (result or {}):
            raise BrowserUnavailable("No web browser could be opened.", "no_browser")
        with self._lock:
            return self._accept(result, "interactive sign-in")

    def sign_in_device_flow(
        self,
        show_code: Callable[[DeviceCode], None],
        *,
        cancel: threading.Event | None = None,
    ) -> MicrosoftAccount:
        """Sign in with a code entered on another device; `show_code` tells the user the code.
        Blocks while msal polls; setting `cancel` stops the wait."""
        with self._lock:
            app = self.app
        flow: dict[str, Any] = app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            raise SignInError(
                "Microsoft 365 could not start a device sign-in.", str(flow.get("error", ""))
            )
        show_code(
            DeviceCode(
                user_code=str(flow["user_code"]),
                verification_uri=str(flow.get("verification_uri", "")),
                message=str(flow.get("message", "")),
                expires_at=float(flow.get("expires_at", time.time() + 900)),
            )
        )

        def stop(f: dict[str, Any]) -> bool:
            return bool(f.get("expires_at", 0) < time.time() or (cancel and cancel.is_set()))

        result = app.acquire_token_by_device_flow(flow, exit_condition=stop)
        if cancel is not None and cancel.is_set() and "access_token" not in (result or {}):
            raise SignInError("Microsoft 365 sign-in was cancelled.", "cancelled")
        with self._lock:
            return self._accept(result, "device-code sign-in")

    def sign_in(
        self, show_code: Callable[[DeviceCode], None], *, timeout: float | None = 300
    ) -> MicrosoftAccount:
        """The system browser first; the device-code flow when no browser can be opened."""
        try:
            return self.sign_in_interactive(timeout=timeout)
        except BrowserUnavailable:
            log.info("no browser for Microsoft sign-in; using the device-code flow")
            return self.sign_in_device_flow(show_code)

    # -- tokens --------------------------------------------------------------------------------
    def _has(self, credential_type: str) -> bool:
        return any(True for _ in self._cache.search(credential_type))

    def _msal_account(self) -> dict[str, Any] | None:
        accounts: list[dict[str, Any]] = self.app.get_accounts()
        return accounts[0] if accounts else None

    def account(self) -> MicrosoftAccount | None:
        with self._lock:
            if not self._has(msal.TokenCache.CredentialType.ACCOUNT):
                return None
            acct = self._msal_account()
            if acct is None:
                return None
            return MicrosoftAccount(
                username=str(acct.get("username", "")),
                home_account_id=str(acct.get("home_account_id", "")),
                name=str(acct.get("name", "") or ""),
            )

    def is_signed_in(self) -> bool:
        return self._has(msal.TokenCache.CredentialType.REFRESH_TOKEN)

    def access_token(self, *, force_refresh: bool = False) -> str:
        """A valid access token, refreshed silently when needed.

        Raises ReconnectRequired ("Reconnect Microsoft 365") when no account is signed in or the
        refresh token was refused; network failures propagate as requests exceptions.
        """
        with self._lock:
            if not self._has(msal.TokenCache.CredentialType.ACCOUNT):
                raise _reconnect("not signed in")
            acct = self._msal_account()
            if acct is None:
                raise _reconnect("not signed in")
            result: dict[str, Any] | None = self.app.acquire_token_silent_with_error(
                self.scopes, account=acct, force_refresh=force_refresh
            )
            self._persist()
            if result and "access_token" in result:
                return str(result["access_token"])
            code = str((result or {}).get("error", "no_token"))
            log.warning("Microsoft silent token refresh failed: %s", code)
            raise _reconnect(code)

    def sign_out(self) -> None:
        with self._lock:
            for acct in self.app.get_accounts():
                self.app.remove_account(acct)
            self._credentials.delete(self._cache_name)
            self._cache.has_state_changed = False
