"""Batched writes through sObject Collections: 200 records a call, allOrNone false.

Failures come in three kinds:
- the whole call failed transiently (5xx, 429, a dropped connection): the batch is sent again
  after a backoff - but only when resending cannot duplicate: updates, upserts and deletes are
  idempotent; a create carries a correlation key (sent as an upsert by external id, or looked up
  before re-creating); a keyless create is resent only when the server cannot have processed it
  (429, 503), otherwise its records come back failed with TRANSIENT_OUTCOME_UNKNOWN;
- single records failed transiently (UNABLE_TO_LOCK_ROW): only those records are sent again;
- single records failed for good (REQUIRED_FIELD_MISSING, STRING_TOO_LONG ...): they come back in
  the results with Salesforce's statusCode and message, for the Sync Issues list.
`REQUEST_LIMIT_EXCEEDED` raises ApiLimitExceeded (the session stops), a dead refresh token
ReconnectRequired; the list methods put the results of the batches already written on the
exception's `completed` attribute (the *_batches generators yielded them before raising).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scc_desktop.salesforce.client import SalesforceClient
from scc_desktop.salesforce.errors import (
    RecordError,
    RequestRefused,
    SalesforceError,
    TransientError,
)
from scc_desktop.salesforce.soql import select, soql_in, soql_name

log = logging.getLogger(__name__)

COLLECTION_LIMIT = 200
OUTCOME_UNKNOWN = "TRANSIENT_OUTCOME_UNKNOWN"
RETRIES_EXHAUSTED = "TRANSIENT_RETRIES_EXHAUSTED"
_ALREADY_DELETED = frozenset({"ENTITY_IS_DELETED"})
# Whole-call failures after which the server certainly did not write anything.
_UNPROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one input record, at its input position."""

    index: int
    success: bool
    id: str | None = None
    created: bool | None = None
    errors: tuple[RecordError, ...] = ()
    attempts: int = 1

    @property
    def error(self) -> RecordError | None:
        return self.errors[0] if self.errors else None


def _chunks(count: int, size: int) -> Iterator[list[int]]:
    for start in range(0, count, size):
        yield list(range(start, min(count, start + size)))


def _record_errors(raw: Any) -> tuple[RecordError, ...]:
    errors: list[RecordError] = []
    for item in raw or ():
        if isinstance(item, Mapping):
            errors.append(
                RecordError(
                    status_code=str(item.get("statusCode") or item.get("errorCode") or "UNKNOWN"),
                    message=str(item.get("message") or ""),
                    fields=tuple(str(f) for f in item.get("fields") or ()),
                )
            )
    return tuple(errors)


Sender = Callable[[list[int]], list[Mapping[str, Any]]]
Recover = Callable[[list[int]], dict[int, str]]


class CollectionsWriter:
    """Creates, updates, upserts and deletes through /composite/sobjects."""

    def __init__(self, client: SalesforceClient, *, batch_size: int = COLLECTION_LIMIT) -> None:
        if not 1 <= batch_size <= COLLECTION_LIMIT:
            raise ValueError("batch_size must be 1..200")
        self.client = client
        self.batch_size = batch_size

    # -- public operations (lists) ----------------------------------------------------------
    def create(
        self,
        sobject: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        key_field: str | None = None,
        key_is_external_id: bool = True,
    ) -> list[WriteResult]:
        return self._collect(
            self.create_batches(
                sobject, rows, key_field=key_field, key_is_external_id=key_is_external_id
            )
        )

    def update(self, sobject: str, rows: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._collect(self.update_batches(sobject, rows))

    def upsert(
        self, sobject: str, key_field: str, rows: Sequence[Mapping[str, Any]]
    ) -> list[WriteResult]:
        return self._collect(self.upsert_batches(sobject, key_field, rows))

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        return self._collect(self.delete_batches(ids))

    # -- public operations (one list of results per Collections batch) ------------------------
    def create_batches(
        self,
        sobject: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        key_field: str | None = None,
        key_is_external_id: bool = True,
    ) -> Iterator[list[WriteResult]]:
        """Create records of one type. With `key_field` a retried create cannot duplicate.

        `key_is_external_id`: the key field is an External ID (sent as an upsert, e.g.
        SCC_Sync_Key__c); otherwise (e.g. EmailMessage.MessageIdentifier) after an ambiguous
        failure the keys are looked up and only the missing records are created again.
        """
        soql_name(sobject)
        if key_field is not None and key_is_external_id:
            keyed = [i for i, row in enumerate(rows) if row.get(key_field)]
            if len(keyed) == len(rows):
                yield from self.upsert_batches(sobject, key_field, rows)
                return
        body_rows = [{"attributes": {"type": sobject}, **row} for row in rows]

        def send(indices: list[int]) -> list[Mapping[str, Any]]:
            payload = {"allOrNone": False, "records": [body_rows[i] for i in indices]}
            return self._send("composite/sobjects", "POST", payload)

        recover: Recover | None = None
        if key_field is not None:
            recover = self._lookup_recovery(sobject, key_field, rows)
        yield from self._batches(len(rows), send, idempotent=False, recover=recover)

    def update_batches(
        self, sobject: str, rows: Sequence[Mapping[str, Any]]
    ) -> Iterator[list[WriteResult]]:
        """Update records of one type; each row carries its Id."""
        soql_name(sobject)
        if any(not row.get("Id") for row in rows):
            raise ValueError("every updated row needs an Id")
        body_rows = [{"attributes": {"type": sobject}, **row} for row in rows]

        def send(indices: list[int]) -> list[Mapping[str, Any]]:
            payload = {"allOrNone": False, "records": [body_rows[i] for i in indices]}
            return self._send("composite/sobjects", "PATCH", payload)

        yield from self._batches(len(rows), send, idempotent=True)

    def upsert_batches(
        self, sobject: str, key_field: str, rows: Sequence[Mapping[str, Any]]
    ) -> Iterator[list[WriteResult]]:
        """Upsert by an External ID field; each row carries its key value."""
        soql_name(sobject)
        soql_name(key_field)
        if any(not row.get(key_field) for row in rows):
            raise ValueError(f"every upserted row needs a {key_field}")
        body_rows = [{"attributes": {"type": sobject}, **row} for row in rows]
        path = f"composite/sobjects/{sobject}/{key_field}"

        def send(indices: list[int]) -> list[Mapping[str, Any]]:
            payload = {"allOrNone": False, "records": [body_rows[i] for i in indices]}
            return self._send(path, "PATCH", payload)

        yield from self._batches(len(rows), send, idempotent=True)

    def delete_batches(self, ids: Sequence[str]) -> Iterator[list[WriteResult]]:
        """Delete by Id; a record already gone counts as deleted."""
        id_list = [str(i) for i in ids]

        def send(indices: list[int]) -> list[Mapping[str, Any]]:
            params = {"ids": ",".join(id_list[i] for i in indices), "allOrNone": "false"}
            return self._send("composite/sobjects", "DELETE", None, params=params)

        for batch in self._batches(len(id_list), send, idempotent=True):
            yield [
                WriteResult(r.index, True, id_list[r.index], None, (), r.attempts)
                if not r.success
                and r.errors
                and all(e.status_code in _ALREADY_DELETED for e in r.errors)
                else r
                for r in batch
            ]

    # -- machinery ----------------------------------------------------------------------------
    @staticmethod
    def _collect(batches: Iterable[list[WriteResult]]) -> list[WriteResult]:
        results: list[WriteResult] = []
        try:
            for batch in batches:
                results.extend(batch)
        except SalesforceError as exc:
            exc.completed = sorted(results, key=lambda r: r.index)
            raise
        return sorted(results, key=lambda r: r.index)

    def _send(
        self,
        path: str,
        method: str,
        payload: Any,
        params: Mapping[str, str] | None = None,
    ) -> list[Mapping[str, Any]]:
        result = self.client.restful(path, method, params=params, json=payload, retry=False)
        if not isinstance(result, list):
            raise TransientError(f"unexpected Collections answer: {type(result).__name__}")
        return result

    def _lookup_recovery(
        self, sobject: str, key_field: str, rows: Sequence[Mapping[str, Any]]
    ) -> Recover:
        def recover(indices: list[int]) -> dict[int, str]:
            keyed = {str(rows[i][key_field]): i for i in indices if rows[i].get(key_field)}
            if not keyed:
                return {}
            soql = select(sobject, ["Id", key_field], f"{key_field} IN {soql_in(keyed)}")
            found: dict[int, str] = {}
            for record in self.client.query_all(soql, sobject=sobject):
                index = keyed.get(str(record.get(key_field)))
                if index is not None:
                    found[index] = record.id
            return found

        return recover

    def _batches(
        self,
        count: int,
        send: Sender,
        *,
        idempotent: bool,
        recover: Recover | None = None,
    ) -> Iterator[list[WriteResult]]:
        for chunk in _chunks(count, self.batch_size):
            yield self._one_batch(chunk, send, idempotent=idempotent, recover=recover)

    def _one_batch(
        self,
        chunk: list[int],
        send: Sender,
        *,
        idempotent: bool,
        recover: Recover | None,
    ) -> list[WriteResult]:
        policy = self.client.retry
        done: dict[int, WriteResult] = {}
        pending = list(chunk)
        attempt = 0
        last_transient: RecordError | None = None
        while pending:
            attempt += 1
            retry_after: float | None = None
            try:
                answers = send(pending)
            except TransientError as exc:
                retry_after = exc.retry_after
                last_transient = RecordError(RETRIES_EXHAUSTED, str(exc))
                if not idempotent and exc.status not in _UNPROCESSED_STATUSES:
                    pending = self._after_ambiguous(pending, done, attempt, recover, exc)
                log.info("Collections call failed (%s); %d records pending", exc, len(pending))
            except RequestRefused as exc:
                error = RecordError(exc.error_code or f"HTTP_{exc.status}", str(exc))
                for index in pending:
                    done[index] = WriteResult(index, False, errors=(error,), attempts=attempt)
                pending = []
            else:
                if len(answers) != len(pending):
                    raise TransientError(
                        f"Collections answered {len(answers)} results for {len(pending)} records"
                    )
                retry: list[int] = []
                for index, answer in zip(pending, answers, strict=True):
                    errors = _record_errors(answer.get("errors"))
                    if answer.get("success"):
                        created = answer.get("created")
                        done[index] = WriteResult(
                            index,
                            True,
                            str(answer.get("id") or "") or None,
                            bool(created) if created is not None else (not idempotent or None),
                            (),
                            attempt,
                        )
                    elif errors and all(e.transient for e in errors):
                        retry.append(index)
                        last_transient = errors[0]
                    else:
                        done[index] = WriteResult(
                            index, False, str(answer.get("id") or "") or None, None, errors, attempt
                        )
                pending = retry
            if pending:
                if attempt >= policy.max_attempts:
                    error = last_transient or RecordError(RETRIES_EXHAUSTED, "retries exhausted")
                    for index in pending:
                        done[index] = WriteResult(index, False, errors=(error,), attempts=attempt)
                    break
                policy.backoff(attempt - 1, retry_after)
        return [done[i] for i in chunk]

    def _after_ambiguous(
        self,
        pending: list[int],
        done: dict[int, WriteResult],
        attempt: int,
        recover: Recover | None,
        exc: TransientError,
    ) -> list[int]:
        """A create whose outcome is unknown: keep only what provably was not written."""
        if recover is None:
            error = RecordError(
                OUTCOME_UNKNOWN,
                f"the create may or may not have been saved ({exc}); not resent to avoid a "
                "duplicate",
            )
            for index in pending:
                done[index] = WriteResult(index, False, errors=(error,), attempts=attempt)
            return []
        found = self.client.retry.run(lambda: recover(pending))
        for index, record_id in found.items():
            done[index] = WriteResult(index, True, record_id, True, (), attempt)
        return [i for i in pending if i not in found]
