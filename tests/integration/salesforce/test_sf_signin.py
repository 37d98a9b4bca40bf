"""The OAuth web-server flow with PKCE against the emulator, end to end over TLS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sf_harness import Admin, ScriptedBrowser, SignedIn

from scc_desktop.auth.credentials import CredentialStore
from scc_desktop.auth.loopback import SignInError
from scc_desktop.auth.salesforce import (
    REFRESH_TOKEN_NAME,
    SalesforceAuth,
    SalesforceOAuthConfig,
    normalize_login_url,
    sandbox_opener,
)
from scc_desktop.salesforce.client import SalesforceClient
from scc_desktop.salesforce.errors import ReconnectRequired, SalesforceError, TransientError
from scc_desktop.salesforce.transport import new_http_session
from scc_desktop.store.db import Database


def test_sign_in_with_system_browser_and_loopback(
    signed_in: SignedIn, browser: ScriptedBrowser, oauth_config: SalesforceOAuthConfig
) -> None:
    account = signed_in.account
    assert account.username and account.org_id.startswith("00D")
    assert account.user_id.startswith("005")
    assert account.instance_url.startswith("https://127.0.0.1:")
    assert account.email == "alex.morgan@northwind.example"
    # the authorize URL carried PKCE S256, state and the loopback redirect
    query = parse_qs(urlsplit(browser.opened[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert query["client_id"] == [oauth_config.client_id]
    assert len(query["state"][0]) >= 20
    # the browser landed on the friendly page
    assert browser.landing is not None and browser.landing.status_code == 200
    assert "You are signed in" in browser.landing.text
    # the refresh token went to the credential store; account metadata holds none
    token = signed_in.credentials.get(REFRESH_TOKEN_NAME)
    assert token
    assert token not in repr(account) and token not in str(account.detail())


def test_refresh_token_never_reaches_sqlite(signed_in: SignedIn, db: Database) -> None:
    token = signed_in.credentials.get(REFRESH_TOKEN_NAME)
    assert token
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO accounts (kind, username, endpoint, detail) VALUES (?, ?, ?, ?)",
            (
                "salesforce",
                signed_in.account.username,
                signed_in.account.instance_url,
                str(signed_in.account.detail()),
            ),
        )
    db.close()
    for path in db.path.parent.iterdir():
        assert token.encode() not in path.read_bytes()


def test_direct_mode_client_queries_demo_contacts(signed_in: SignedIn) -> None:
    client = SalesforceClient(signed_in.auth, signed_in.auth.session)
    records = client.query_all("SELECT Id, Email FROM Contact ORDER BY Email")
    assert "jane.cooper@acme.example" in {r.get("Email") for r in records}


def test_expired_session_refreshes_once_and_saves_rotated_token(
    signed_in: SignedIn, admin: Admin
) -> None:
    client = SalesforceClient(signed_in.auth, signed_in.auth.session)
    client.query_all("SELECT Id FROM Contact LIMIT 1")
    before = signed_in.credentials.get(REFRESH_TOKEN_NAME)
    old_headers = dict(client.sf.headers)
    admin.expire_tokens()
    client.stats.reset()
    records = client.query_all("SELECT Id FROM Contact LIMIT 1")
    assert len(records) == 1
    counts = client.stats.counts()
    assert counts["oauth"] == 1  # exactly one refresh
    assert counts["query"] == 2  # the 401, then the retry
    after = signed_in.credentials.get(REFRESH_TOKEN_NAME)
    assert after and after != before  # the emulator rotates refresh tokens
    assert client.sf.headers["Authorization"] != old_headers["Authorization"]
    assert client.sf.session_id == signed_in.auth.access_token()


def test_revoked_refresh_token_means_reconnect(
    signed_in: SignedIn, admin: Admin, oauth_config: SalesforceOAuthConfig
) -> None:
    client = SalesforceClient(signed_in.auth, signed_in.auth.session)
    token = signed_in.credentials.get(REFRESH_TOKEN_NAME)
    revoked = requests.post(
        f"{oauth_config.login_url}/services/oauth2/revoke",
        data={"token": token},
        verify=str(oauth_config.ca_file),
        timeout=10,
    )
    assert revoked.status_code == 200
    admin.expire_tokens()
    with pytest.raises(ReconnectRequired) as info:
        client.query_all("SELECT Id FROM Contact LIMIT 1")
    assert info.value.user_message == "Reconnect Salesforce"


def test_no_stored_token_means_reconnect(
    oauth_config: SalesforceOAuthConfig, credentials: CredentialStore
) -> None:
    auth = SalesforceAuth(oauth_config, credentials, new_http_session(oauth_config.ca_file))
    with pytest.raises(ReconnectRequired):
        auth.access_token()


def test_sign_out_revokes_and_forgets(signed_in: SignedIn, admin: Admin) -> None:
    token = signed_in.credentials.get(REFRESH_TOKEN_NAME)
    signed_in.auth.sign_out()
    assert signed_in.credentials.get(REFRESH_TOKEN_NAME) is None
    assert token
    signed_in.credentials.set(REFRESH_TOKEN_NAME, token)  # a stale copy is refused by the org
    with pytest.raises(ReconnectRequired):
        signed_in.auth.refresh()


def test_wrong_consumer_key_fails_sign_in(
    admin: Admin, oauth_config: SalesforceOAuthConfig, credentials: CredentialStore
) -> None:
    config = SalesforceOAuthConfig(
        login_url=oauth_config.login_url, client_id="not-our-app", ca_file=oauth_config.ca_file
    )
    auth = SalesforceAuth(config, credentials, new_http_session(config.ca_file))

    def browser(url: str) -> bool:
        answer = requests.get(url, verify=str(config.ca_file), allow_redirects=False, timeout=10)
        assert answer.status_code == 400  # Salesforce shows its own error page, no redirect
        return True

    with pytest.raises(SignInError):
        auth.sign_in(open_browser=browser, timeout=0.5)


def test_login_host_forms() -> None:
    assert normalize_login_url("login") == "https://login.salesforce.com"
    assert normalize_login_url("test") == "https://test.salesforce.com"
    assert normalize_login_url("acme.my.salesforce.com/") == "https://acme.my.salesforce.com"
    assert normalize_login_url("https://127.0.0.1:8443") == "https://127.0.0.1:8443"
    with pytest.raises(ValueError):
        normalize_login_url("http://login.salesforce.com")


def test_untrusted_certificate_is_refused(signed_in: SignedIn) -> None:
    # A session trusting only the system store must not accept the sandbox's certificate.
    client = SalesforceClient(signed_in.auth, new_http_session(None))
    with pytest.raises(SalesforceError) as info:
        client.query_all("SELECT Id FROM Contact LIMIT 1")
    assert not isinstance(info.value, TransientError)
    assert "certificate" in info.value.user_message


def test_sandbox_opener_signs_in_without_a_browser(
    admin: Admin, oauth_config: SalesforceOAuthConfig, credentials: CredentialStore
) -> None:
    auth = SalesforceAuth(oauth_config, credentials, new_http_session(oauth_config.ca_file))
    assert oauth_config.ca_file is not None
    account = auth.sign_in(open_browser=sandbox_opener(oauth_config.ca_file), timeout=10)
    assert account.email == "alex.morgan@northwind.example"
    assert auth.account().user_id == account.user_id


def test_loopback_sandbox_bypasses_proxies(
    signed_in: SignedIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    client = SalesforceClient(signed_in.auth, signed_in.auth.session)
    assert len(client.query_all("SELECT Id FROM Contact LIMIT 2")) == 2
