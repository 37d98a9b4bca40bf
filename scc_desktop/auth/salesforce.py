"""Salesforce sign-in: OAuth 2.0 web-server flow with PKCE through the system browser.

`SalesforceAuth.sign_in()` opens the login host's authorize page, receives the code on a loopback
listener, exchanges it over HTTPS, reads the identity URL, and keeps the refresh token in the
credential store (the OS keyring) - never in SQLite, config or logs. It returns the non-secret
account metadata the caller saves in the accounts table. Afterwards `access_token()` and
`refresh()` serve the Salesforce client; a refresh token Salesforce no longer accepts raises
`ReconnectRequired` ("Reconnect Salesforce").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from scc_desktop.auth.credentials import CredentialStore
from scc_desktop.auth.loopback import (
    DEFAULT_TIMEOUT_S,
    BrowserOpener,
    SignInError,
    new_pkce,
    run_browser_flow,
)
from scc_desktop.salesforce.errors import ReconnectRequired, TransientError
from scc_desktop.salesforce.transport import new_http_session

log = logging.getLogger(__name__)

PRODUCTION_LOGIN = "https://login.salesforce.com"
SANDBOX_LOGIN = "https://test.salesforce.com"
DEFAULT_API_VERSION = "59.0"
DEFAULT_SCOPE = "api refresh_token"
# The consumer key of scc-desktop's connected app; an administrator may configure another.
DEFAULT_CLIENT_ID = "scc-desktop"
REFRESH_TOKEN_NAME = "salesforce.refresh_token"  # noqa: S105 - a keyring entry name


def normalize_login_url(value: str) -> str:
    """`login`, `test`, a My Domain host or an https URL -> an https origin without a path.

    Plain http is refused: tokens never travel unencrypted.
    """
    text = value.strip().rstrip("/")
    shortcuts = {
        "login": PRODUCTION_LOGIN,
        "production": PRODUCTION_LOGIN,
        "test": SANDBOX_LOGIN,
        "sandbox": SANDBOX_LOGIN,
    }
    if text.lower() in shortcuts:
        return shortcuts[text.lower()]
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"the Salesforce login host must be an https URL, not {value!r}")
    return f"https://{parts.netloc}"


@dataclass(frozen=True)
class SalesforceOAuthConfig:
    """Where and as which connected app to sign in; nothing secret."""

    login_url: str = PRODUCTION_LOGIN
    client_id: str = DEFAULT_CLIENT_ID
    scope: str = DEFAULT_SCOPE
    ca_file: Path | None = None  # the sandbox's CA; None trusts the system store
    api_version: str = DEFAULT_API_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "login_url", normalize_login_url(self.login_url))
        if not self.client_id:
            raise ValueError("a consumer key (client_id) is required")

    @classmethod
    def for_sandbox(cls, info: Mapping[str, Any]) -> SalesforceOAuthConfig:
        """From the sandbox's info JSON (`ca_file` and its `salesforce` part)."""
        sf = info["salesforce"]
        return cls(
            login_url=str(sf["login_url"]),
            client_id=str(sf["client_id"]),
            ca_file=Path(info["ca_file"]),
            api_version=str(sf.get("api_version", DEFAULT_API_VERSION)),
        )

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.login_url}/services/oauth2/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.login_url}/services/oauth2/token"

    @property
    def revoke_endpoint(self) -> str:
        return f"{self.login_url}/services/oauth2/revoke"


@dataclass(frozen=True)
class SalesforceAccount:
    """Non-secret facts about the signed-in user, for the accounts table."""

    username: str
    display_name: str
    email: str
    user_id: str
    org_id: str
    instance_url: str
    login_url: str
    identity_url: str

    def detail(self) -> dict[str, str]:
        """The JSON for accounts.detail (no tokens)."""
        return {
            "user_id": self.user_id,
            "org_id": self.org_id,
            "email": self.email,
            "login_url": self.login_url,
            "identity_url": self.identity_url,
        }


@dataclass
class _Grant:
    access_token: str = field(repr=False)
    instance_url: str
    identity_url: str
    issued_at: float


class SalesforceAuth:
    """Tokens for one Salesforce account: sign-in, cached access token, refresh, sign-out.

    Thread-safe; the client calls `access_token()` once and `refresh()` after a 401.
    """

    def __init__(
        self,
        config: SalesforceOAuthConfig,
        credentials: CredentialStore,
        session: requests.Session | None = None,
        instance_url: str | None = None,
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.session = session if session is not None else new_http_session(config.ca_file)
        self._lock = threading.RLock()
        self._grant: _Grant | None = None
        self._instance_url = instance_url

    # -- sign-in ---------------------------------------------------------------------------
    def authorize_url(self, redirect_uri: str, state: str, code_challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "scope": self.config.scope,
        }
        return f"{self.config.authorize_endpoint}?{urlencode(query)}"

    def sign_in(
        self, *, open_browser: BrowserOpener | None = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> SalesforceAccount:
        """Run the browser flow; store the refresh token; return the account's metadata."""
        pkce = new_pkce()
        callback, redirect_uri = run_browser_flow(
            lambda uri, state: self.authorize_url(uri, state, pkce.challenge),
            open_browser=open_browser,
            timeout=timeout,
        )
        body = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": callback.code,
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "code_verifier": pkce.verifier,
            },
            signing_in=True,
        )
        refresh_token = body.get("refresh_token")
        if not refresh_token:
            raise SignInError(
                "Salesforce returned no refresh token; the connected app needs the "
                "refresh_token scope"
            )
        grant = self._grant_from(body)
        account = self._identity(grant)
        with self._lock:
            self.credentials.set(REFRESH_TOKEN_NAME, str(refresh_token))
            self._grant = grant
            self._instance_url = grant.instance_url
        log.info("signed in to Salesforce as %s (org %s)", account.username, account.org_id)
        return account

    # -- tokens for the client ---------------------------------------------------------------
    @property
    def instance_url(self) -> str:
        with self._lock:
            if self._grant is not None:
                return self._grant.instance_url
            if self._instance_url:
                return self._instance_url
        self.refresh()
        return self._require_grant().instance_url

    def _require_grant(self) -> _Grant:
        with self._lock:
            grant = self._grant
        if grant is None:
            raise ReconnectRequired("no Salesforce access token")
        return grant

    def has_refresh_token(self) -> bool:
        return self.credentials.get(REFRESH_TOKEN_NAME) is not None

    def access_token(self) -> str:
        """The current access token, refreshing first if this process has none."""
        with self._lock:
            if self._grant is not None:
                return self._grant.access_token
        return self.refresh()

    def refresh(self) -> str:
        """Get a new access token with the stored refresh token (saving a rotated one)."""
        with self._lock:
            refresh_token = self.credentials.get(REFRESH_TOKEN_NAME)
            if not refresh_token:
                raise ReconnectRequired("no Salesforce refresh token is stored")
            body = self._token_request(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token,
                    "client_id": self.config.client_id,
                }
            )
            rotated = body.get("refresh_token")
            if rotated and rotated != refresh_token:
                self.credentials.set(REFRESH_TOKEN_NAME, str(rotated))
            self._grant = self._grant_from(body)
            self._instance_url = self._grant.instance_url
            log.info("Salesforce access token refreshed")
            return self._grant.access_token

    def account(self) -> SalesforceAccount:
        """Read the identity URL with the current token (refreshing once if it expired)."""
        self.access_token()
        try:
            return self._identity(self._require_grant())
        except ReconnectRequired:
            self.refresh()
            return self._identity(self._require_grant())

    def sign_out(self) -> None:
        """Revoke the refresh token at Salesforce (best effort) and forget it."""
        with self._lock:
            token = self.credentials.get(REFRESH_TOKEN_NAME)
            if token:
                try:
                    self.session.post(self.config.revoke_endpoint, data={"token": token})
                except requests.RequestException:
                    log.warning("could not reach Salesforce to revoke the token; forgetting it")
            self.credentials.delete(REFRESH_TOKEN_NAME)
            self._grant = None

    # -- internals ---------------------------------------------------------------------------
    def _token_request(self, form: dict[str, str], *, signing_in: bool = False) -> dict[str, Any]:
        try:
            response = self.session.post(
                self.config.token_endpoint,
                data=form,
                headers={"Accept": "application/json"},
            )
        except requests.RequestException as exc:
            raise TransientError(
                f"could not reach {self.config.login_url}: {type(exc).__name__}",
                user_message="Salesforce cannot be reached; sync will retry.",
            ) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if response.status_code == 200 and body.get("access_token"):
            return body
        error = str(body.get("error", ""))
        description = str(body.get("error_description", ""))
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(
                f"token endpoint answered {response.status_code}", status=response.status_code
            )
        if signing_in:
            raise SignInError(f"token exchange failed: {error} {description}".strip())
        # invalid_grant (revoked/expired refresh token), invalid_client, inactive user ...
        raise ReconnectRequired(
            f"Salesforce refused the refresh token: {error} {description}".strip()
        )

    @staticmethod
    def _grant_from(body: Mapping[str, Any]) -> _Grant:
        instance_url = str(body.get("instance_url", ""))
        if urlsplit(instance_url).scheme != "https":
            raise SignInError(f"Salesforce returned a non-https instance URL {instance_url!r}")
        issued_raw = body.get("issued_at")
        try:
            issued_at = int(str(issued_raw)) / 1000 if issued_raw else time.time()
        except ValueError:
            issued_at = time.time()
        return _Grant(
            access_token=str(body["access_token"]),
            instance_url=instance_url.rstrip("/"),
            identity_url=str(body.get("id", "")),
            issued_at=issued_at,
        )

    def _identity(self, grant: _Grant) -> SalesforceAccount:
        if not grant.identity_url:
            raise SignInError("Salesforce returned no identity URL")
        try:
            response = self.session.get(
                grant.identity_url,
                headers={
                    "Authorization": f"Bearer {grant.access_token}",
                    "Accept": "application/json",
                },
            )
        except requests.RequestException as exc:
            raise TransientError(f"identity URL unreachable: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise ReconnectRequired("the identity URL refused the access token")
        if response.status_code != 200:
            raise TransientError(
                f"identity URL answered {response.status_code}", status=response.status_code
            )
        data = response.json()
        return SalesforceAccount(
            username=str(data.get("username", "")),
            display_name=str(data.get("display_name", "")),
            email=str(data.get("email", "")),
            user_id=str(data.get("user_id", "")),
            org_id=str(data.get("organization_id", "")),
            instance_url=grant.instance_url,
            login_url=self.config.login_url,
            identity_url=grant.identity_url,
        )


def sandbox_opener(ca_file: Path | str) -> BrowserOpener:
    """A "browser" for the built-in sandbox, which approves at once: follow its redirect.

    GETs the authorize URL (trusting only the sandbox CA), then the loopback URL it redirects
    to. For `--sandbox` runs and tests; a real org needs the user's browser.
    """

    def open_url(url: str) -> bool:
        with requests.Session() as http:
            http.trust_env = False  # no env CA bundle overriding ours, no proxy for loopback
            approval = http.get(url, verify=str(ca_file), allow_redirects=False, timeout=30)
            location = approval.headers.get("Location", "")
            if approval.status_code not in (301, 302, 303) or not location.startswith(
                ("http://127.0.0.1:", "http://localhost:")
            ):
                return False
            http.get(location, timeout=30)
        return True

    return open_url
