"""JSON `$batch`: up to 20 requests per call, one result per request, throttled items retried.

Graph answers a well-formed batch with 200 and one response per sub-request (any order); a
sub-request can fail alone (4xx), or be throttled alone (429 with its own Retry-After). Throttled
and unavailable items are sent again, in a smaller batch, after the longest Retry-After seen.

More than 20 requests go out as several `$batch` calls at once, as many as Graph lets one
mailbox have in flight (4, `MailboxConcurrency`), so the waits overlap. The results are the
same as one call after the other: each op gets its own result, in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from scc_desktop.mailbox.graph.http import (
    IMMUTABLE_ID,
    MAX_CONCURRENCY,
    RETRY_STATUSES,
    GraphHttp,
    _error_parts,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

MAX_BATCH = 20


@dataclass(frozen=True)
class BatchOp:
    """One sub-request: `url` is relative to the version root ('/me/contacts')."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResult:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str:
        return _error_parts(self.body)[0]

    @property
    def error_message(self) -> str:
        return _error_parts(self.body)[1]


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _sub_request(index: int, op: BatchOp, prefer: Sequence[str]) -> dict[str, Any]:
    headers = {"Prefer": ", ".join([IMMUTABLE_ID, *prefer]), **op.headers}
    request: dict[str, Any] = {"id": str(index), "method": op.method.upper(), "url": op.url}
    if op.body is not None:
        headers["Content-Type"] = "application/json"
        request["body"] = op.body
    request["headers"] = headers
    return request


def run_batch(
    http: GraphHttp,
    ops: Sequence[BatchOp],
    *,
    prefer: Sequence[str] = (),
    max_rounds: int = 5,
    batch_size: int = MAX_BATCH,
    max_in_flight: int = MAX_CONCURRENCY,
) -> list[BatchResult]:
    """Send `ops` in batches of at most 20, up to `max_in_flight` batches at once, and return
    one result per op, in input order."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
    results: list[BatchResult | None] = [None] * len(ops)
    pending = list(range(len(ops)))
    round_no = 0
    while pending:
        retry: list[int] = []
        wait = 0.0
        parts = list(chunks(pending, batch_size))

        def send(chunk: Sequence[int]) -> Any:
            payload = {"requests": [_sub_request(i, ops[i], prefer) for i in chunk]}
            reads_only = all(ops[i].method.upper() == "GET" for i in chunk)
            return (
                http.send_json("POST", "/$batch", payload, kind="batch", idempotent=reads_only)
                or {}
            )

        if len(parts) > 1 and max_in_flight > 1:
            with ThreadPoolExecutor(
                max_workers=min(max_in_flight, len(parts)), thread_name_prefix="graph-batch"
            ) as pool:
                futures = [pool.submit(send, chunk) for chunk in parts]
            answers = [f.result() for f in futures]  # the first failure raises, as in sequence
        else:
            answers = [send(chunk) for chunk in parts]
        for chunk, data in zip(parts, answers, strict=True):
            seen: set[int] = set()
            for response in data.get("responses", []):
                index = int(response["id"])
                seen.add(index)
                headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
                status = int(response.get("status", 0))
                if status in RETRY_STATUSES and round_no + 1 < max_rounds:
                    retry.append(index)
                    retry_after = next(
                        (v for k, v in headers.items() if k.lower() == "retry-after"), None
                    )
                    wait = max(wait, retry_after_seconds(retry_after, round_no))
                    continue
                results[index] = BatchResult(status, response.get("body"), headers)
            for index in chunk:  # a sub-request the service did not answer: send it again
                if index not in seen:
                    retry.append(index)
        if retry:
            round_no += 1
            if round_no >= max_rounds:
                for index in retry:
                    if results[index] is None:
                        results[index] = BatchResult(
                            503,
                            {"error": {"code": "NoResponse", "message": "no answer in $batch"}},
                            {},
                        )
                break
            log.info("$batch: %d item(s) throttled; retrying in %.1fs", len(retry), wait)
            http.sleep(wait)
            pending = sorted(set(retry))
        else:
            pending = []
    return [r for r in results if r is not None]
