"""$batch chunking, per-item results in input order, and retries of throttled items."""

from __future__ import annotations

from typing import Any

import pytest

from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.mailbox.graph.batch import BatchOp, run_batch
from scc_desktop.mailbox.graph.delta import decode_cursor, encode_cursor, read_delta
from scc_desktop.mailbox.graph.http import GraphError, GraphHttp, retry_after_seconds
from scc_desktop.mailbox.protocol import MailboxError


class NoTokens:
    def access_token(self, *, force_refresh: bool = False) -> str:
        return "t"


class FakeHttp(GraphHttp):
    """Answers $batch from a function of (round, sub-request); records payloads and sleeps."""

    def __init__(self, answer: Any) -> None:
        self.sleeps: list[float] = []
        super().__init__("https://graph.invalid/v1.0", NoTokens(), sleep=self.sleeps.append)
        self.answer = answer
        self.payloads: list[dict[str, Any]] = []
        self.gets: list[str] = []
        self.pages: dict[str, Any] = {}

    def send_json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        assert (method, path) == ("POST", "/$batch")
        self.payloads.append(body)
        responses = [self.answer(len(self.payloads), r) for r in body["requests"]]
        return {"responses": list(reversed(responses))}  # Graph answers in any order

    def get_json(self, path: str, **kw: Any) -> Any:
        self.gets.append(path)
        page = self.pages[path]
        if isinstance(page, Exception):
            raise page
        return page


def ok(_round: int, req: dict[str, Any]) -> dict[str, Any]:
    return {"id": req["id"], "status": 201, "headers": {}, "body": {"id": "new-" + req["id"]}}


@pytest.mark.parametrize(("n", "calls"), [(0, 0), (1, 1), (20, 1), (21, 2), (100, 5), (101, 6)])
def test_chunks_of_twenty(n: int, calls: int) -> None:
    http = FakeHttp(ok)
    results = run_batch(http, [BatchOp("POST", "/me/contacts", {"n": i}) for i in range(n)])
    assert len(http.payloads) == calls
    assert all(len(p["requests"]) <= 20 for p in http.payloads)
    assert [r.body["id"] for r in results] == [f"new-{i}" for i in range(n)]
    for payload in http.payloads:
        for req in payload["requests"]:
            assert req["headers"]["Prefer"].startswith('IdType="ImmutableId"')
            assert req["headers"]["Content-Type"] == "application/json"


def test_partial_failures_and_throttled_retry() -> None:
    def answer(round_no: int, req: dict[str, Any]) -> dict[str, Any]:
        i = int(req["id"])
        if i == 3:
            return {
                "id": req["id"],
                "status": 400,
                "body": {"error": {"code": "ErrorInvalidRequest", "message": "bad"}},
            }
        if i in (5, 7) and round_no == 1:
            return {
                "id": req["id"],
                "status": 429,
                "headers": {"Retry-After": "7"},
                "body": {"error": {"code": "TooManyRequests"}},
            }
        return ok(round_no, req)

    http = FakeHttp(answer)
    results = run_batch(http, [BatchOp("POST", "/me/contacts", {}) for _ in range(10)])
    assert http.sleeps == [7.0]
    assert [len(p["requests"]) for p in http.payloads] == [10, 2]
    assert not results[3].ok and results[3].error_code == "ErrorInvalidRequest"
    assert all(r.ok for i, r in enumerate(results) if i != 3)


def test_throttled_forever_gives_up_with_the_last_answer() -> None:
    def answer(round_no: int, req: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": req["id"],
            "status": 429,
            "headers": {},
            "body": {"error": {"code": "TooManyRequests"}},
        }

    http = FakeHttp(answer)
    results = run_batch(http, [BatchOp("DELETE", "/me/contacts/x")], max_rounds=3)
    assert len(http.payloads) == 3 and len(http.sleeps) == 2
    assert results[0].status == 429 and results[0].error_code == "TooManyRequests"


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3", 0) == 3.0
    assert retry_after_seconds(None, 0) == 1.0
    assert retry_after_seconds(None, 3) == 8.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 0) == 0.0


def test_delta_replays_links_and_restarts_on_410() -> None:
    http = FakeHttp(ok)
    start = "https://graph.invalid/v1.0/me/mailFolders/inbox/messages/delta?$select=id"
    http.pages = {
        start: {"value": [{"id": "a"}], "@odata.nextLink": "https://graph.invalid/next?skip=1"},
        "https://graph.invalid/next?skip=1": {
            "value": [{"id": "b"}, {"id": "a", "@removed": {"reason": "deleted"}}],
            "@odata.deltaLink": "https://graph.invalid/d?t=1",
        },
    }
    pages = list(
        read_delta(http, stream="s", scope="inbox", initial_url=start, cursor=None, parse=dict)
    )
    assert [p.done for p in pages] == [False, True]
    assert all(p.full_sync for p in pages) and not any(p.restarted for p in pages)
    assert pages[1].changes[1].removed and pages[1].changes[1].removed_reason == "deleted"
    assert decode_cursor(pages[1].cursor, "inbox") == ("https://graph.invalid/d?t=1", False)
    assert decode_cursor(pages[1].cursor, "other-folder") is None
    # the stored deltaLink expired: a full pass again, flagged as restarted
    http.pages["https://graph.invalid/d?t=1"] = GraphError(
        "gone", status=410, code="SyncStateNotFound"
    )
    http.gets.clear()
    again = list(
        read_delta(
            http, stream="s", scope="inbox", initial_url=start, cursor=pages[1].cursor, parse=dict
        )
    )
    assert http.gets == ["https://graph.invalid/d?t=1", start, "https://graph.invalid/next?skip=1"]
    assert again[0].restarted and all(p.full_sync for p in again)
    # a cursor from the middle of a full pass resumes it, still full
    mid = encode_cursor("https://graph.invalid/next?skip=1", "inbox", True)
    resumed = list(
        read_delta(http, stream="s", scope="inbox", initial_url=start, cursor=mid, parse=dict)
    )
    assert len(resumed) == 1 and resumed[0].full_sync and resumed[0].done


def test_other_errors_propagate() -> None:
    http = FakeHttp(ok)
    http.pages = {"u": GraphError("nope", status=403, code="ErrorAccessDenied")}
    with pytest.raises(GraphError):
        list(read_delta(http, stream="s", scope="x", initial_url="u", cursor=None, parse=dict))


def test_write_results_map_conflicts_and_missing_items() -> None:
    from scc_desktop.mailbox.graph.batch import BatchResult
    from scc_desktop.mailbox.graph.mailbox import _result_from

    def err(status: int, code: str) -> BatchResult:
        return BatchResult(status, {"error": {"code": code, "message": "m"}}, {})

    assert _result_from(0, err(412, "ErrorIrresolvableConflict"), None).conflict
    assert _result_from(0, err(409, "ErrorIrresolvableConflict"), None).conflict
    assert not _result_from(0, err(409, "ErrorFolderExists"), None).conflict
    missing = _result_from(0, err(404, "ErrorItemNotFound"), None)
    assert missing.not_found and not missing.retryable and missing.error_code == "ErrorItemNotFound"
    assert _result_from(0, err(503, "ServiceUnavailable"), None).retryable
    ok = _result_from(2, BatchResult(201, {"id": "X"}, {}), lambda raw: raw["id"])
    assert (ok.ok, ok.id, ok.item, ok.index) == (True, "X", "X", 2)


def test_calendar_window_is_widened_to_whole_days() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from scc_desktop.mailbox.graph.mailbox import whole_days

    start = datetime(2026, 11, 8, 22, 57, 13, tzinfo=UTC)
    first, last = whole_days(start, start + timedelta(days=74))
    assert first == datetime(2026, 11, 8, tzinfo=UTC)
    assert last == datetime(2026, 1, 22, tzinfo=UTC).replace(year=2027)
    # an hour later in the same day: the same window, so the same cursor stays valid
    assert whole_days(start + timedelta(minutes=50), start + timedelta(days=74, minutes=50)) == (
        first,
        last,
    )
    # offsets are converted, never dropped
    paris = timezone(timedelta(hours=1))
    assert whole_days(datetime(2026, 11, 9, 0, 30, tzinfo=paris), start)[0] == first


def _found_unless_missing(_round: int, req: dict[str, Any]) -> dict[str, Any]:
    item_id = req["url"].split("?")[0].rsplit("/", 1)[-1]
    if item_id.startswith("missing"):
        return {"id": req["id"], "status": 404, "headers": {}, "body": {"error": {"code": "x"}}}
    body = {
        "id": item_id,
        "subject": "s",
        "start": {"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-10T10:00:00.0000000", "timeZone": "UTC"},
        "lastModifiedDateTime": "2026-03-01T08:00:00.1234567Z",
    }
    return {"id": req["id"], "status": 200, "headers": {}, "body": body}


def test_get_events_by_ids_batched_in_utc_from_the_primary_calendar() -> None:
    http = FakeHttp(_found_unless_missing)
    mailbox = GraphMailbox(http)
    ids = [f"ev{i}" for i in range(43)] + ["missing-1", "ev0"]  # a duplicate is asked once
    found = mailbox.get_events(ids)
    assert len(http.payloads) == 3  # 44 distinct ids: 20 + 20 + 4
    assert set(found) == {f"ev{i}" for i in range(43)}
    assert found["ev7"].modified_at is not None and found["ev7"].modified_at.tzinfo is not None
    for payload in http.payloads:
        for req in payload["requests"]:
            assert req["method"] == "GET" and req["url"].startswith("/me/calendar/events/")
            prefer = req["headers"]["Prefer"]  # in $batch, Prefer is per sub-request
            assert 'outlook.timezone="UTC"' in prefer and 'IdType="ImmutableId"' in prefer
            assert "$expand=singleValueExtendedProperties" in req["url"]
    assert mailbox.get_events([]) == {} and len(http.payloads) == 3


def test_get_by_ids_raises_on_a_failure_other_than_404() -> None:
    def forbidden(_round: int, req: dict[str, Any]) -> dict[str, Any]:
        return {"id": req["id"], "status": 403, "headers": {}, "body": {"error": {"code": "No"}}}

    with pytest.raises(MailboxError) as err:
        GraphMailbox(FakeHttp(forbidden)).get_contacts(["c1"])
    assert err.value.status == 403 and not err.value.retryable
