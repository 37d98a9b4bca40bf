"""Collections batching and retry rules against a scripted fake client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scc_desktop.salesforce.errors import ApiLimitExceeded, RequestRefused, TransientError
from scc_desktop.salesforce.records import SfRecord
from scc_desktop.salesforce.retry import RetryPolicy, no_sleep
from scc_desktop.salesforce.writer import OUTCOME_UNKNOWN, CollectionsWriter

Script = Callable[[str, str, Any, Any], Any]


class FakeClient:
    def __init__(self, script: Script) -> None:
        self.retry = RetryPolicy(max_attempts=5, sleep=no_sleep)
        self.script = script
        self.calls: list[tuple[str, str, Any, Any]] = []
        self.existing: dict[str, str] = {}

    def restful(
        self,
        path: str,
        method: str = "GET",
        *,
        params: Any = None,
        json: Any = None,
        headers: Any = None,
        retry: bool = True,
    ) -> Any:
        self.calls.append((path, method, params, json))
        return self.script(path, method, params, json)

    def query_all(self, soql: str, *, sobject: str | None = None) -> list[SfRecord]:
        return [
            SfRecord.from_api(
                {"attributes": {"type": "EmailMessage"}, "Id": rid, "MessageIdentifier": key}
            )
            for key, rid in self.existing.items()
            if f"'{key}'" in soql
        ]


def ok(records: list[dict[str, Any]], created: bool | None = None) -> list[dict[str, Any]]:
    out = []
    for i, _ in enumerate(records):
        item: dict[str, Any] = {"id": f"003X{i:011d}", "success": True, "errors": []}
        if created is not None:
            item["created"] = created
        out.append(item)
    return out


def rows(n: int) -> list[dict[str, Any]]:
    return [{"LastName": f"L{i}", "SCC_Sync_Key__c": f"k{i}"} for i in range(n)]


def test_batches_of_200_and_results_in_input_order() -> None:
    client = FakeClient(lambda p, m, params, body: ok(body["records"]))
    writer = CollectionsWriter(client)  # type: ignore[arg-type]
    results = writer.create("Contact", [{"LastName": f"L{i}"} for i in range(450)])
    assert [len(c[3]["records"]) for c in client.calls] == [200, 200, 50]
    assert all(c[0] == "composite/sobjects" and c[1] == "POST" for c in client.calls)
    assert all(c[3]["allOrNone"] is False for c in client.calls)
    assert [r.index for r in results] == list(range(450))
    assert all(r.success and r.created for r in results)


def test_create_with_external_key_is_sent_as_upsert() -> None:
    client = FakeClient(lambda p, m, params, body: ok(body["records"], created=True))
    writer = CollectionsWriter(client)  # type: ignore[arg-type]
    results = writer.create("Contact", rows(3), key_field="SCC_Sync_Key__c")
    assert client.calls[0][:2] == ("composite/sobjects/Contact/SCC_Sync_Key__c", "PATCH")
    assert all(r.success for r in results)


def test_locked_rows_are_retried_alone_and_permanent_errors_reported() -> None:
    attempts: list[list[str]] = []

    def script(p: str, m: str, params: Any, body: Any) -> Any:
        keys = [r["SCC_Sync_Key__c"] for r in body["records"]]
        attempts.append(keys)
        out = []
        for key in keys:
            if key == "k1" and len(attempts) == 1:
                out.append(
                    {
                        "success": False,
                        "errors": [
                            {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}
                        ],
                    }
                )
            elif key == "k2":
                out.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "STRING_TOO_LONG",
                                "message": "Last Name: data value too large",
                                "fields": ["LastName"],
                            }
                        ],
                    }
                )
            else:
                out.append({"id": "003" + key, "success": True, "errors": [], "created": True})
        return out

    client = FakeClient(script)
    results = CollectionsWriter(client).upsert("Contact", "SCC_Sync_Key__c", rows(4))  # type: ignore[arg-type]
    assert attempts == [["k0", "k1", "k2", "k3"], ["k1"]]
    assert [r.success for r in results] == [True, True, False, True]
    assert results[1].attempts == 2
    err = results[2].error
    assert err is not None and err.status_code == "STRING_TOO_LONG" and err.fields == ("LastName",)
    assert "data value too large" in err.user_message


def test_whole_call_transient_retries_idempotent_batches() -> None:
    failures = iter([TransientError("503", status=503), TransientError("drop")])

    def script(p: str, m: str, params: Any, body: Any) -> Any:
        exc = next(failures, None)
        if exc is not None:
            raise exc
        return ok(body["records"])

    client = FakeClient(script)
    results = CollectionsWriter(client).update("Contact", [{"Id": "003A", "LastName": "x"}])  # type: ignore[arg-type]
    assert len(client.calls) == 3 and results[0].success


def test_keyless_create_is_not_resent_after_an_ambiguous_failure() -> None:
    def script(p: str, m: str, params: Any, body: Any) -> Any:
        raise TransientError("connection dropped")

    client = FakeClient(script)
    results = CollectionsWriter(client).create("Lead", [{"LastName": "a", "Company": "c"}])  # type: ignore[arg-type]
    assert len(client.calls) == 1
    assert not results[0].success and results[0].error is not None
    assert results[0].error.status_code == OUTCOME_UNKNOWN


def test_keyless_create_is_resent_after_429() -> None:
    state = {"n": 0}

    def script(p: str, m: str, params: Any, body: Any) -> Any:
        state["n"] += 1
        if state["n"] == 1:
            raise TransientError("429", status=429, retry_after=1)
        return ok(body["records"])

    client = FakeClient(script)
    results = CollectionsWriter(client).create("Lead", [{"LastName": "a", "Company": "c"}])  # type: ignore[arg-type]
    assert state["n"] == 2 and results[0].success


def test_lookup_key_recovers_records_saved_before_a_dropped_answer() -> None:
    client = FakeClient(lambda *a: None)
    state = {"n": 0}

    def script(p: str, m: str, params: Any, body: Any) -> Any:
        state["n"] += 1
        if state["n"] == 1:
            # the server saved the first record, then the connection dropped
            client.existing["<m0@x>"] = "02sSAVED"
            raise TransientError("dropped")
        assert [r["MessageIdentifier"] for r in body["records"]] == ["<m1@x>"]
        return ok(body["records"])

    client.script = script
    data = [{"Subject": "s", "MessageIdentifier": f"<m{i}@x>"} for i in range(2)]
    results = CollectionsWriter(client).create(  # type: ignore[arg-type]
        "EmailMessage", data, key_field="MessageIdentifier", key_is_external_id=False
    )
    assert [r.success for r in results] == [True, True]
    assert results[0].id == "02sSAVED"


def test_request_limit_stops_with_completed_results() -> None:
    state = {"n": 0}

    def script(p: str, m: str, params: Any, body: Any) -> Any:
        state["n"] += 1
        if state["n"] == 2:
            raise ApiLimitExceeded("REQUEST_LIMIT_EXCEEDED")
        return ok(body["records"], created=True)

    client = FakeClient(script)
    with pytest.raises(ApiLimitExceeded) as info:
        CollectionsWriter(client).upsert("Contact", "SCC_Sync_Key__c", rows(300))  # type: ignore[arg-type]
    assert len(info.value.completed) == 200
    assert "API limit" in info.value.user_message


def test_refused_batch_reports_every_record() -> None:
    def script(p: str, m: str, params: Any, body: Any) -> Any:
        raise RequestRefused(
            "sObject type 'Nope' is not supported", status=400, error_code="INVALID_TYPE"
        )

    results = CollectionsWriter(FakeClient(script)).update("Nope", [{"Id": "1"}, {"Id": "2"}])  # type: ignore[arg-type]
    assert all(not r.success and r.error and r.error.status_code == "INVALID_TYPE" for r in results)


def test_delete_treats_already_deleted_as_done() -> None:
    def script(p: str, m: str, params: Any, body: Any) -> Any:
        assert m == "DELETE" and params["allOrNone"] == "false"
        return [
            {"id": "a", "success": True, "errors": []},
            {
                "id": "b",
                "success": False,
                "errors": [
                    {
                        "statusCode": "ENTITY_IS_DELETED",
                        "message": "entity is deleted",
                        "fields": [],
                    }
                ],
            },
        ]

    results = CollectionsWriter(FakeClient(script)).delete(["a", "b"])  # type: ignore[arg-type]
    assert [r.success for r in results] == [True, True]


def test_exhausted_retries_come_back_as_transient_failures() -> None:
    def script(p: str, m: str, params: Any, body: Any) -> Any:
        return [
            {
                "success": False,
                "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}],
            }
        ]

    client = FakeClient(script)
    results = CollectionsWriter(client).update("Contact", [{"Id": "1"}])  # type: ignore[arg-type]
    assert len(client.calls) == client.retry.max_attempts
    assert not results[0].success and results[0].error and results[0].error.transient
