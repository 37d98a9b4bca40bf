"""The browser half of an OAuth sign-in: PKCE, `state`, and a one-shot loopback listener.

The app opens the provider's authorize URL in the system browser; the provider redirects the
browser to `http://127.0.0.1:PORT/callback?code=...&state=...`, where a tiny HTTP server bound to
the loopback interface only (random port) receives the code, answers with a plain page, and
stops. Plain http is fine for this hop: it never leaves the machine (RFC 8252 section 7.3).
The page is static text: nothing the provider or the URL sent is written into it.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import logging
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"
CALLBACK_PATH = "/callback"
DEFAULT_TIMEOUT_S = 300.0

BrowserOpener = Callable[[str], object]

_DONE_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scc-desktop</title>
<style>body{font-family:sans-serif;margin:4em auto;max-width:32em;color:#222}</style></head>
<body><h1>You are signed in</h1>
<p>scc-desktop received your approval. You can close this tab and return to the app.</p>
</body></html>
"""
_FAILED_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scc-desktop</title>
<style>body{font-family:sans-serif;margin:4em auto;max-width:32em;color:#222}</style></head>
<body><h1>Sign-in did not complete</h1>
<p>scc-desktop did not receive an approval. Close this tab and try again from the app.</p>
</body></html>
"""


class SignInError(Exception):
    """The interactive sign-in failed; `user_message` says what to do."""

    user_message = "Sign-in did not complete. Please try again."


class SignInTimedOut(SignInError):
    user_message = "Sign-in timed out waiting for the browser. Please try again."


class SignInDenied(SignInError):
    """The provider redirected back with `error=` (the user declined, or the app is blocked)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.user_message = "Sign-in was declined or failed in the browser. Please try again."


class StateMismatch(SignInError):
    user_message = "Sign-in was interrupted by an unexpected browser response. Please try again."


@dataclass(frozen=True)
class Pkce:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""

    verifier: str
    challenge: str
    method: str = "S256"

    def __repr__(self) -> str:
        return "Pkce(verifier=<hidden>, challenge=<hidden>)"


def s256_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    """A fresh 64-character verifier (43-128 allowed) and its challenge."""
    verifier = secrets.token_urlsafe(48)
    return Pkce(verifier, s256_challenge(verifier))


def new_state() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class CallbackResult:
    """The query parameters the browser brought back (first value of each)."""

    params: Mapping[str, str]

    @property
    def code(self) -> str:
        return self.params.get("code", "")


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != CALLBACK_PATH:
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Not found")
            return
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        accepted = self.server.offer(params)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(_DONE_PAGE if accepted else _FAILED_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        # The request line carries the authorization code: never log it.
        log.debug("loopback listener answered a request")


class _CallbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, expected_state: str) -> None:
        super().__init__((LOOPBACK_HOST, 0), _Handler)
        self.expected_state = expected_state
        self.result: CallbackResult | None = None
        self.failure: SignInError | None = None
        self.event = threading.Event()

    def offer(self, params: dict[str, str]) -> bool:
        """Take the first callback that carries our state; True if it was an approval."""
        if self.event.is_set():
            return self.result is not None
        if not secrets.compare_digest(params.get("state", ""), self.expected_state):
            # A stray or forged request: record it, but keep waiting for the real one.
            self.failure = StateMismatch("the callback's state did not match")
            return False
        if "error" in params:
            self.failure = SignInDenied(params["error"], params.get("error_description", ""))
            self.event.set()
            return False
        if not params.get("code"):
            self.failure = SignInError("the callback carried no code")
            self.event.set()
            return False
        self.result = CallbackResult(params)
        self.event.set()
        return True


class LoopbackListener:
    """A one-shot HTTP listener on 127.0.0.1:random for the OAuth redirect.

    with LoopbackListener(state) as listener:
        open_browser(authorize_url(redirect_uri=listener.redirect_uri))
        result = listener.wait(timeout)
    """

    def __init__(self, expected_state: str) -> None:
        self._server = _CallbackServer(expected_state)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}{CALLBACK_PATH}"

    def start(self) -> LoopbackListener:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="oauth-loopback",
            daemon=True,
        )
        self._thread.start()
        return self

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S) -> CallbackResult:
        """Block until the approval arrives; raise SignInTimedOut, SignInDenied, StateMismatch."""
        deadline = time.monotonic() + timeout
        while not self._server.event.wait(timeout=min(0.2, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                if self._server.failure is not None:
                    raise self._server.failure
                raise SignInTimedOut(f"no browser callback within {timeout:.0f} s")
        if self._server.result is None:
            raise self._server.failure or SignInError("sign-in failed")
        return self._server.result

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackListener:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_browser_flow(
    build_authorize_url: Callable[[str, str], str],
    *,
    open_browser: BrowserOpener | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> tuple[CallbackResult, str]:
    """Open the authorize URL and wait for the redirect.

    `build_authorize_url(redirect_uri, state)` returns the provider's URL. Returns the callback
    (its state already checked) and the redirect_uri that the token request must repeat.
    """
    state = new_state()
    opener: BrowserOpener = open_browser if open_browser is not None else webbrowser.open
    with LoopbackListener(state) as listener:
        url = build_authorize_url(listener.redirect_uri, state)
        if opener(url) is False:
            raise SignInError("no web browser could be opened")
        return listener.wait(timeout), listener.redirect_uri
