"""Sign-in against the sandbox identity platform with the real msal over TLS."""

from __future__ import annotations

import html
import re
import threading
import webbrowser
from typing import Any

import pytest
import requests

from scc_desktop.auth.credentials import CredentialStore, MemoryBackend
from scc_desktop.auth.microsoft import (
    CACHE_SECRET_NAME,
    RECONNECT_MESSAGE,
    BrowserUnavailable,
    DeviceCode,
    MicrosoftAuth,
)
from scc_desktop.mailbox.graph import GraphHttp
from scc_desktop.mailbox.protocol import ReconnectRequired
from scc_desktop.net import https_session
from scc_desktop.sandbox.server import SandboxServer


class ScriptedBrowser:
    """Plays the user's browser: GET the authorize URL, read the 302, GET the loopback URL."""

    def __init__(self, ca_file: str) -> None:
        self.ca_file = ca_file
        self.opened: list[str] = []
        self.threads: list[threading.Thread] = []
        self.loopback_status: int | None = None

    def open(self, url: str, *args: Any, **kwargs: Any) -> bool:
        self.opened.append(url)
        t = threading.Thread(target=self._follow, args=(url,), daemon=True)
        t.start()
        self.threads.append(t)
        return True

    def _follow(self, url: str) -> None:
        r = https_session(self.ca_file).get(url, allow_redirects=False, timeout=30)
        if r.status_code == 302:  # response_mode=query
            location = r.headers["Location"]
            assert location.startswith("http://localhost:")
            self.loopback_status = requests.get(location, timeout=30).status_code
            return
        # response_mode=form_post (what msal 1.39 asks for): submit the auto-posting form
        assert r.status_code == 200, r.text
        action = html.unescape(re.search(r'action="([^"]+)"', r.text).group(1))  # type: ignore[union-attr]
        fields = {
            html.unescape(k): html.unescape(v)
            for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', r.text)
        }
        assert action.startswith("http://localhost:") and "code" in fields
        self.loopback_status = requests.post(action, data=fields, timeout=30).status_code


def test_interactive_sign_in_with_scripted_browser(
    server: SandboxServer, store: CredentialStore, monkeypatch: pytest.MonkeyPatch, make_auth: Any
) -> None:
    browser = ScriptedBrowser(str(server.ca.ca_file))
    monkeypatch.setattr(webbrowser, "open", browser.open)
    auth = make_auth(store)
    assert auth.account() is None
    account = auth.sign_in_interactive(timeout=30)
    for t in browser.threads:
        t.join(10)
    assert account.username == server.info()["microsoft"]["username"]
    assert browser.loopback_status == 200
    (authorize_url,) = browser.opened
    assert "code_challenge=" in authorize_url and "code_challenge_method=S256" in authorize_url
    assert auth.access_token()
    # the cache went to the keyring in chunks: larger than one Windows credential blob
    cache = store.get(CACHE_SECRET_NAME)
    assert cache is not None and len(cache) > 1280
    assert "refresh_token" in cache.lower() or "RefreshToken" in cache


def test_no_browser_fails_fast_and_sign_in_falls_back_to_device_flow(
    admin: Any, store: CredentialStore, monkeypatch: pytest.MonkeyPatch, make_auth: Any
) -> None:
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: False)
    auth = make_auth(store)
    with pytest.raises(BrowserUnavailable):
        auth.sign_in_interactive(timeout=20)
    shown: list[DeviceCode] = []

    def approve(code: DeviceCode) -> None:
        shown.append(code)
        admin.ms("approve_device", {"user_code": code.user_code})

    account = auth.sign_in(approve, timeout=20)
    assert account.username and len(shown) == 1
    assert shown[0].user_code in shown[0].message


def test_device_flow_then_silent_use_from_the_keyring(
    auth: MicrosoftAuth, store: CredentialStore, make_auth: Any
) -> None:
    first = auth.access_token()
    # a new process: same keyring, no sign-in
    again = make_auth(store)
    assert again.is_signed_in()
    assert again.access_token() == first
    assert again.account() == auth.account()


def test_silent_refresh_after_expiry_and_a_401(
    server: SandboxServer, admin: Any, auth: MicrosoftAuth, ms_info: dict[str, Any]
) -> None:
    http = GraphHttp(ms_info["graph_url"], auth, ca_file=str(server.ca.ca_file))
    before = auth.access_token()
    admin.ms("expire_tokens")  # the server forgets the access token msal still thinks is valid
    me = http.get_json("/me")
    assert me["userPrincipalName"] == ms_info["username"]
    after = auth.access_token()
    assert after != before
    counts = admin.counters()
    assert counts.get("token", 0) >= 2  # sign-in + one refresh


def test_refused_refresh_means_reconnect(
    server: SandboxServer, admin: Any, auth: MicrosoftAuth, ms_info: dict[str, Any]
) -> None:
    admin.ms("expire_tokens", {"refresh": True})
    http = GraphHttp(ms_info["graph_url"], auth, ca_file=str(server.ca.ca_file))
    with pytest.raises(ReconnectRequired) as err:
        http.get_json("/me")
    assert err.value.user_message == RECONNECT_MESSAGE == "Reconnect Microsoft 365"


def test_not_signed_in_means_reconnect(make_auth: Any) -> None:
    auth = make_auth(CredentialStore("empty", MemoryBackend()))
    assert not auth.is_signed_in()
    with pytest.raises(ReconnectRequired):
        auth.access_token()


def test_sign_out_clears_the_keyring(auth: MicrosoftAuth, store: CredentialStore) -> None:
    assert store.get(CACHE_SECRET_NAME)
    auth.sign_out()
    assert store.get(CACHE_SECRET_NAME) is None
    with pytest.raises(ReconnectRequired):
        auth.access_token()
