"""The HTTP layer every Graph call goes through.

- `Prefer: IdType="ImmutableId"` on every request, so ids survive moves between folders;
- a Bearer token from the auth module, refreshed and retried once after a 401;
- 429 and 502/503/504 retried after `Retry-After` (or an exponential backoff) with an injectable
  sleep, so tests never really wait;
- never more than `max_concurrency` (4: Outlook's per-mailbox limit) requests in flight;
- a per-session call counter by kind ('delta', 'batch', 'get', ...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests

from scc_desktop.mailbox.protocol import MailboxError, ReconnectRequired
from scc_desktop.net import https_session

log = logging.getLogger(__name__)

IMMUTABLE_ID = 'IdType="ImmutableId"'
MAX_CONCURRENCY = 4
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT = 60.0
MAX_BACKOFF_S = 60.0


class TokenSource(Protocol):
    def access_token(self, *, force_refresh: bool = False) -> str: ...


class GraphError(MailboxError):
    """A Graph call answered with an error (after retries, for transient ones)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        retryable: bool = False,
        body: Any = None,
    ) -> None:
        super().__init__(message, status=status, code=code, retryable=retryable)
        self.body = body

    @classmethod
    def from_response(cls, response: requests.Response) -> GraphError:
        code, message = _error_parts(_safe_json(response))
        return cls(
            f"Graph {response.request.method} {_short_path(response.url)} -> "
            f"{response.status_code} {code}: {message}",
            status=response.status_code,
            code=code,
            retryable=response.status_code in RETRY_STATUSES or response.status_code >= 500,
        )


def _safe_json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_parts(body: Any) -> tuple[str, str]:
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            return str(err.get("code", "")), str(err.get("message", ""))
    return "", ""


def _short_path(url: str | None) -> str:
    """The path of a URL without its query: delta tokens and filters stay out of logs."""
    if not url:
        return ""
    return url.split("?", 1)[0]


def retry_after_seconds(value: str | None, attempt: int) -> float:
    """Seconds to wait: the Retry-After header (seconds or an HTTP date), else exponential."""
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return float(min(MAX_BACKOFF_S, 2**attempt))


class GraphHttp:
    """A Graph v1.0 client for one mailbox. Thread-safe."""

    def __init__(
        self,
        graph_url: str,
        tokens: TokenSource,
        *,
        session: requests.Session | None = None,
        ca_file: str | None = None,
        max_concurrency: int = MAX_CONCURRENCY,
        max_attempts: int = 6,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = graph_url.rstrip("/")
        self.tokens = tokens
        self.session = session if session is not None else https_session(ca_file, pool_size=8)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._count_lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests this client ever had in flight at once

    # -- accounting --------------------------------------------------------------------------
    def call_counts(self) -> dict[str, int]:
        with self._count_lock:
            counts = dict(self._calls)
        counts["total"] = sum(counts.values())
        return counts

    def reset_counts(self) -> None:
        with self._count_lock:
            self._calls.clear()

    def _count(self, kind: str) -> None:
        with self._count_lock:
            self._calls[kind] += 1

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        with self._slots:
            with self._count_lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                yield
            finally:
                with self._count_lock:
                    self._in_flight -= 1

    # -- requests ------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def _headers(
        self, token: str, prefer: Sequence[str], extra: Mapping[str, str] | None
    ) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {token}",
            "Prefer": ", ".join([IMMUTABLE_ID, *prefer]),
            "Accept": "application/json",
        }
        if extra:
            headers.update(extra)
        return headers

    def request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        prefer: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one request with auth, retries and the concurrency limit.

        Returns the 2xx response (already read unless `stream`; a streamed response holds no
        slot, use `stream_bytes` to keep the limit while reading). Raises GraphError on an error
        status, ReconnectRequired when the token is refused twice.
        """
        url = self.url(path)
        refreshed = force = False
        if idempotent is None:  # a $batch of reads is a POST that is safe to repeat
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE")
        attempt = 0
        while True:
            attempt += 1
            token = self.tokens.access_token(force_refresh=force)
            force = False
            self._count(kind)
            try:
                with self._slot():
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=None if json_body is None else json.dumps(json_body),
                        headers={
                            **self._headers(token, prefer, headers),
                            **(
                                {"Content-Type": "application/json"}
                                if json_body is not None
                                else {}
                            ),
                        },
                        timeout=self.timeout,
                        stream=stream,
                    )
                    if not stream or response.status_code >= 300:
                        _ = response.content  # read the body while holding the slot
            except (requests.ConnectionError, requests.Timeout) as exc:
                if idempotent and attempt < self.max_attempts:
                    wait = retry_after_seconds(None, attempt - 1)
                    log.info(
                        "Graph %s %s: %s; retrying in %.0fs",
                        method,
                        _short_path(url),
                        type(exc).__name__,
                        wait,
                    )
                    self.sleep(wait)
                    continue
                raise GraphError(
                    f"Graph {method} {_short_path(url)}: {type(exc).__name__}", retryable=True
                ) from exc
            status = response.status_code
            if status == 401:
                if not refreshed:
                    refreshed = force = True
                    attempt -= 1  # a refresh is not a retry
                    continue
                raise ReconnectRequired("Reconnect Microsoft 365", "token refused by Graph")
            retry = status in RETRY_STATUSES or (status >= 500 and idempotent)
            if retry and attempt < self.max_attempts:
                wait = retry_after_seconds(response.headers.get("Retry-After"), attempt - 1)
                log.info(
                    "Graph %s %s -> %s; retrying in %.1fs", method, _short_path(url), status, wait
                )
                response.close()
                self.sleep(wait)
                continue
            if status >= 400:
                raise GraphError.from_response(response)
            return response

    def get_json(
        self,
        path: str,
        *,
        kind: str = "get",
        params: Mapping[str, str] | None = None,
        prefer: Sequence[str] = (),
    ) -> Any:
        return self.request("GET", path, kind=kind, params=params, prefer=prefer).json()

    def send_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        kind: str | None = None,
        prefer: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        response = self.request(
            method,
            path,
            kind=kind or method.lower(),
            json_body=body,
            prefer=prefer,
            headers=headers,
            idempotent=idempotent,
        )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def iter_pages(
        self,
        path: str,
        *,
        kind: str = "get",
        params: Mapping[str, str] | None = None,
        prefer: Sequence[str] = (),
    ) -> Iterator[Mapping[str, Any]]:
        """Every item of a paged collection, following `@odata.nextLink`."""
        data = self.get_json(path, kind=kind, params=params, prefer=prefer)
        while True:
            yield from data.get("value", [])
            next_link = data.get("@odata.nextLink")
            if not next_link:
                return
            data = self.get_json(next_link, kind=kind, prefer=prefer)

    def stream_bytes(
        self, path: str, *, kind: str = "attachment", chunk_size: int = 256 * 1024
    ) -> Iterator[bytes]:
        """Stream a binary body (an attachment's `/$value`) in chunks, holding a concurrency
        slot while reading; retries happen before the first byte only."""
        url = self.url(path)
        refreshed = force = False
        attempt = 0
        while True:
            attempt += 1
            token = self.tokens.access_token(force_refresh=force)
            force = False
            self._count(kind)
            with self._slot():
                headers = self._headers(token, (), None)
                headers["Accept"] = "*/*"
                try:
                    response = self.session.get(
                        url, headers=headers, timeout=self.timeout, stream=True
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    response = None
                    error: Exception | None = exc
                else:
                    error = None
                if response is not None and response.status_code < 300:
                    with contextlib.closing(response):
                        yield from response.iter_content(chunk_size=chunk_size)
                    return
                if response is not None:
                    _ = response.content
            if error is not None:
                if attempt < self.max_attempts:
                    self.sleep(retry_after_seconds(None, attempt - 1))
                    continue
                raise GraphError(
                    f"Graph GET {_short_path(url)}: {type(error).__name__}", retryable=True
                ) from error
            assert response is not None
            if response.status_code == 401 and not refreshed:
                refreshed = force = True
                attempt -= 1
                continue
            if response.status_code == 401:
                raise ReconnectRequired("Reconnect Microsoft 365", "token refused by Graph")
            transient = response.status_code >= 500 or response.status_code == 429
            if transient and attempt < self.max_attempts:
                self.sleep(retry_after_seconds(response.headers.get("Retry-After"), attempt - 1))
                continue
            raise GraphError.from_response(response)
