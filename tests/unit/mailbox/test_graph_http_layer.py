"""GraphHttp without a server: headers, the 401 refresh-and-retry, Retry-After, give-up rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from scc_desktop.mailbox.graph.http import GraphError, GraphHttp
from scc_desktop.mailbox.protocol import ReconnectRequired


class Tokens:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    def access_token(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        return f"token-{len(self.calls)}"


class FakeSession(requests.Session):
    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        super().__init__()
        self.answers = answers
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append({"method": method, "url": url, **kw})
        status, headers, body = self.answers.pop(0)
        r = requests.Response()
        r.status_code = status
        r.headers.update(headers)
        r._content = json.dumps(body).encode() if body is not None else b""
        r.url = url
        r.request = requests.Request(method, url).prepare()
        return r


def make(
    answers: list[tuple[int, dict[str, str], Any]],
) -> tuple[GraphHttp, FakeSession, Tokens, list[float]]:
    sleeps: list[float] = []
    tokens = Tokens()
    session = FakeSession(answers)
    http = GraphHttp("https://graph.invalid/v1.0/", tokens, session=session, sleep=sleeps.append)
    return http, session, tokens, sleeps


def err(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "m"}}


def test_headers_and_relative_paths() -> None:
    http, session, _tokens, _ = make([(200, {}, {"ok": 1})])
    assert http.get_json("/me/events", prefer=['outlook.timezone="UTC"']) == {"ok": 1}
    sent = session.sent[0]
    assert sent["url"] == "https://graph.invalid/v1.0/me/events"
    assert sent["headers"]["Prefer"] == 'IdType="ImmutableId", outlook.timezone="UTC"'
    assert sent["headers"]["Authorization"] == "Bearer token-1"
    assert http.call_counts() == {"get": 1, "total": 1}


def test_a_401_refreshes_once_then_asks_to_reconnect() -> None:
    http, session, tokens, sleeps = make(
        [(401, {}, err("InvalidAuthenticationToken")), (200, {}, {})]
    )
    http.get_json("/me")
    assert tokens.calls == [False, True] and sleeps == []
    assert session.sent[1]["headers"]["Authorization"] == "Bearer token-2"
    # a retry after the refresh does not refresh again
    http, _s, tokens, sleeps = make(
        [(401, {}, err("x")), (429, {"Retry-After": "1"}, err("x")), (200, {}, {})]
    )
    http.get_json("/me")
    assert tokens.calls == [False, True, False] and sleeps == [1.0]
    http, _s, tokens, _ = make([(401, {}, err("x")), (401, {}, err("x"))])
    with pytest.raises(ReconnectRequired) as exc:
        http.get_json("/me")
    assert exc.value.user_message == "Reconnect Microsoft 365"


def test_retry_after_then_success_and_non_retryable_errors() -> None:
    http, _s, _t, sleeps = make(
        [(429, {"Retry-After": "12"}, err("TooManyRequests")), (503, {}, err("x")), (200, {}, {})]
    )
    http.get_json("/me")
    assert sleeps == [12.0, 2.0]
    http, _s, _t, sleeps = make([(404, {}, err("ErrorItemNotFound"))])
    with pytest.raises(GraphError) as exc:
        http.get_json("/me/contacts/x")
    assert (exc.value.status, exc.value.code, exc.value.retryable) == (
        404,
        "ErrorItemNotFound",
        False,
    )
    assert sleeps == []
    # a POST that failed with a 500 is not sent again (it may have happened)
    http, session, _t, sleeps = make([(500, {}, err("InternalServerError"))])
    with pytest.raises(GraphError) as exc:
        http.send_json("POST", "/me/contacts", {"givenName": "A"})
    assert exc.value.retryable and len(session.sent) == 1 and sleeps == []


def test_errors_keep_tokens_and_queries_out_of_messages() -> None:
    http, _s, _t, _ = make([(400, {}, err("BadRequest"))])
    with pytest.raises(GraphError) as exc:
        http.get_json(
            "https://graph.invalid/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=SECRET"
        )
    assert "SECRET" not in str(exc.value) and "token-" not in str(exc.value)


def test_a_batch_of_reads_is_retried_after_a_server_error_but_one_with_writes_is_not() -> None:
    from scc_desktop.mailbox.graph.batch import BatchOp, run_batch

    ok = {"responses": [{"id": "0", "status": 200, "body": {"id": "a"}}]}
    http, session, _tokens, sleeps = make([(500, {}, err("InternalServerError")), (200, {}, ok)])
    results = run_batch(http, [BatchOp("GET", "/me/contacts/a")])
    assert results[0].status == 200 and len(session.sent) == 2 and len(sleeps) == 1

    http, session, _tokens, _ = make([(500, {}, err("InternalServerError")), (200, {}, ok)])
    with pytest.raises(GraphError):
        run_batch(http, [BatchOp("POST", "/me/contacts", {"givenName": "A"})])
    assert len(session.sent) == 1  # a create may have landed: never sent twice blindly
