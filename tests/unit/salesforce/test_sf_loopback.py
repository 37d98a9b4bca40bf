"""The loopback listener and PKCE helpers, with a browser played by requests."""

from __future__ import annotations

import base64
import hashlib
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from scc_desktop.auth.loopback import (
    LoopbackListener,
    SignInDenied,
    SignInTimedOut,
    new_pkce,
    run_browser_flow,
)


def test_pkce_s256() -> None:
    pkce = new_pkce()
    assert 43 <= len(pkce.verifier) <= 128
    digest = hashlib.sha256(pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pkce.verifier not in repr(pkce)
    assert new_pkce().verifier != pkce.verifier


def test_listener_binds_loopback_and_returns_code() -> None:
    with LoopbackListener("st") as listener:
        assert listener.redirect_uri.startswith("http://127.0.0.1:")
        page = requests.get(listener.redirect_uri, params={"code": "C1", "state": "st"}, timeout=5)
        assert page.status_code == 200
        assert "signed in" in page.text
        assert "C1" not in page.text
        assert listener.wait(2).code == "C1"


def test_wrong_state_is_ignored_then_real_callback_wins() -> None:
    with LoopbackListener("good") as listener:
        forged = requests.get(
            listener.redirect_uri, params={"code": "EVIL", "state": "bad"}, timeout=5
        )
        assert "did not complete" in forged.text
        requests.get(listener.redirect_uri, params={"code": "REAL", "state": "good"}, timeout=5)
        assert listener.wait(2).code == "REAL"


def test_error_callback_raises_denied_without_echoing_text() -> None:
    with LoopbackListener("s") as listener:
        page = requests.get(
            listener.redirect_uri,
            params={
                "error": "access_denied",
                "error_description": "<script>x</script>",
                "state": "s",
            },
            timeout=5,
        )
        assert "<script>" not in page.text
        with pytest.raises(SignInDenied) as info:
            listener.wait(2)
        assert info.value.error == "access_denied"


def test_other_paths_are_404() -> None:
    with LoopbackListener("s") as listener:
        url = listener.redirect_uri.replace("/callback", "/favicon.ico")
        assert requests.get(url, timeout=5).status_code == 404


def test_timeout() -> None:
    with LoopbackListener("s") as listener, pytest.raises(SignInTimedOut):
        listener.wait(0.3)


def test_run_browser_flow_with_a_scripted_browser() -> None:
    seen: dict[str, str] = {}

    def browser(url: str) -> bool:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        seen.update(query)

        def follow() -> None:
            requests.get(
                query["redirect_uri"], params={"code": "abc", "state": query["state"]}, timeout=5
            )

        threading.Thread(target=follow).start()
        return True

    result, redirect_uri = run_browser_flow(
        lambda uri, state: f"https://login.example/authorize?redirect_uri={uri}&state={state}",
        open_browser=browser,
        timeout=5,
    )
    assert result.code == "abc"
    assert redirect_uri == seen["redirect_uri"]
    # the port is closed again afterwards
    with pytest.raises(requests.ConnectionError):
        requests.get(redirect_uri, timeout=2)
