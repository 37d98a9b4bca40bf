"""simple-salesforce in direct mode, with our own token refresh, error mapping and retries.

simple-salesforce never refreshes a session it did not log in itself, and builds `sf.headers`
once. `SalesforceClient.call()` therefore catches `SalesforceExpiredSession`, asks the token
source for a new access token once, writes it into `session_id` and the headers, and repeats the
call; a second 401, or a refresh Salesforce refuses, becomes `ReconnectRequired`. Other failures
are mapped onto the connector's errors, and idempotent calls are retried with backoff.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError as SimpleSalesforceError,
)
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from scc_desktop.salesforce.errors import (
    ApiLimitExceeded,
    QueryError,
    ReconnectRequired,
    RequestRefused,
    SalesforceError,
    TransientError,
)
from scc_desktop.salesforce.records import SfRecord
from scc_desktop.salesforce.retry import RetryPolicy
from scc_desktop.salesforce.transport import CallStats, session_stats

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_API_VERSION = "59.0"
QUERY_BATCH_SIZE = 2000
_QUERY_CODES = {
    "MALFORMED_QUERY",
    "INVALID_FIELD",
    "INVALID_TYPE",
    "INVALID_QUERY_FILTER_OPERATOR",
    "INVALID_QUERY_LOCATOR",
}


class TokenSource(Protocol):
    """What the client needs from the sign-in side (SalesforceAuth implements it)."""

    @property
    def instance_url(self) -> str: ...

    def access_token(self) -> str: ...

    def refresh(self) -> str: ...


def error_body(content: Any) -> tuple[str, str]:
    """(errorCode, message) from Salesforce's `[{"errorCode","message"}]` error shape."""
    first: Any = content[0] if isinstance(content, list) and content else content
    if isinstance(first, Mapping):
        code = str(first.get("errorCode") or first.get("error") or "")
        message = str(first.get("message") or first.get("error_description") or "")
        return code, message
    if isinstance(content, bytes | str):
        return "", (content.decode("utf-8", "replace") if isinstance(content, bytes) else content)[
            :300
        ]
    return "", ""


def _certificate_failure(exc: BaseException) -> bool:
    """True when TLS failed on the certificate (not a connection cut during the handshake)."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return True
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.extend(x for x in (item.__cause__, item.__context__) if x is not None)
            reason = getattr(item, "reason", None)
            if reason is not None:
                stack.append(reason)
    return "certificate verify failed" in str(exc).lower()


def translate(exc: Exception, retry_after: float | None = None) -> SalesforceError:
    """Map a simple-salesforce or requests exception onto the connector's errors."""
    if isinstance(exc, SalesforceError):
        return exc
    if isinstance(exc, requests.exceptions.SSLError) and _certificate_failure(exc):
        return SalesforceError(
            f"TLS verification failed: {exc}",
            user_message="Salesforce's certificate could not be verified; sync stopped.",
        )
    if isinstance(exc, requests.RequestException):
        return TransientError(f"connection problem: {type(exc).__name__}")
    if isinstance(exc, SimpleSalesforceError):
        code, message = error_body(exc.content)
        status = int(exc.status)
        if code == "REQUEST_LIMIT_EXCEEDED":
            return ApiLimitExceeded(message or code)
        if isinstance(exc, SalesforceExpiredSession):
            return ReconnectRequired(message or "the session was refused after a refresh")
        if status == 429 or status >= 500:
            return TransientError(
                f"{status} {code} {message}".strip(), status=status, retry_after=retry_after
            )
        if isinstance(exc, SalesforceMalformedRequest) and code in _QUERY_CODES:
            return QueryError(message or code, error_code=code)
        if isinstance(exc, SalesforceRefusedRequest | SalesforceResourceNotFound):
            return RequestRefused(message or code, status=status, error_code=code)
        return RequestRefused(message or code or f"HTTP {status}", status=status, error_code=code)
    raise exc


class SalesforceClient:
    """A simple-salesforce client that keeps itself signed in and counts its calls."""

    def __init__(
        self,
        tokens: TokenSource,
        session: requests.Session,
        *,
        api_version: str = DEFAULT_API_VERSION,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.tokens = tokens
        self.session = session
        self.api_version = api_version
        self.retry = retry if retry is not None else RetryPolicy()
        stats = session_stats(session)
        self.stats: CallStats = stats if stats is not None else CallStats()
        self._lock = threading.RLock()
        self._sf: Salesforce | None = None

    # -- the simple-salesforce object --------------------------------------------------------
    @property
    def sf(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = Salesforce(
                    instance_url=self.tokens.instance_url,
                    session_id=self.tokens.access_token(),
                    session=self.session,
                    version=self.api_version,
                )
            return self._sf

    def _apply_new_token(self, stale: Salesforce) -> None:
        with self._lock:
            if self._sf is not stale or self._sf is None:
                return  # another thread already refreshed
            token = self.tokens.refresh()
            instance = self.tokens.instance_url
            sf = self._sf
            if instance.rstrip("/") != f"https://{sf.sf_instance}":
                self._sf = None  # the org moved instance: rebuild every URL
                return
            sf.session_id = token
            sf.headers = {**sf.headers, "Authorization": f"Bearer {token}"}

    @property
    def base_url(self) -> str:
        return str(self.sf.base_url)

    # -- calling -------------------------------------------------------------------------------
    def call_once(self, fn: Callable[[Salesforce], T]) -> T:
        """One logical call: refresh once on an expired session; errors mapped, not retried."""
        sf = self.sf
        try:
            return fn(sf)
        except SalesforceExpiredSession:
            log.info("Salesforce session expired; refreshing")
            self._apply_new_token(sf)
        except (SimpleSalesforceError, requests.RequestException) as exc:
            raise translate(exc, self.stats.last_retry_after) from exc
        try:
            return fn(self.sf)
        except (SimpleSalesforceError, requests.RequestException) as exc:
            raise translate(exc, self.stats.last_retry_after) from exc

    def call(self, fn: Callable[[Salesforce], T], *, retry: bool = True) -> T:
        """`call_once`, retrying transient failures with backoff when `retry` (idempotent)."""
        if not retry:
            return self.call_once(fn)
        return self.retry.run(lambda: self.call_once(fn))

    def restful(
        self,
        path: str,
        method: str = "GET",
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> Any:
        """A REST call relative to /services/data/vXX.X/."""
        kwargs: dict[str, Any] = {}
        if json is not None:
            kwargs["json"] = json
        if headers:
            kwargs["headers"] = dict(headers)
        return self.call(
            lambda sf: sf.restful(
                path, params=dict(params) if params else None, method=method, **kwargs
            ),
            retry=retry,
        )

    # -- reading ---------------------------------------------------------------------------------
    def query_pages(
        self,
        soql: str,
        *,
        batch_size: int = QUERY_BATCH_SIZE,
        include_deleted: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Raw record pages of a query, following nextRecordsUrl (one call per page)."""
        headers = {"Sforce-Query-Options": f"batchSize={max(200, min(2000, batch_size))}"}
        page: Any = self.call(
            lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers)
        )
        while True:
            yield list(page.get("records", []))
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            page = self.query_more(str(page["nextRecordsUrl"]), headers=headers)

    def query_more(self, next_records_url: str, headers: Mapping[str, str] | None = None) -> Any:
        """The next page of a query, from its nextRecordsUrl (a path)."""
        extra = dict(headers or {})

        def fetch(sf: Salesforce) -> Any:
            return sf.query_more(next_records_url, identifier_is_url=True, headers=extra)

        return self.call(fetch)

    def query_records(
        self,
        soql: str,
        *,
        sobject: str | None = None,
        batch_size: int = QUERY_BATCH_SIZE,
        include_deleted: bool = False,
    ) -> Iterator[list[SfRecord]]:
        """Pages of SfRecord."""
        for page in self.query_pages(soql, batch_size=batch_size, include_deleted=include_deleted):
            yield [SfRecord.from_api(raw, sobject) for raw in page]

    def query_all(self, soql: str, *, sobject: str | None = None) -> list[SfRecord]:
        return [r for page in self.query_records(soql, sobject=sobject) for r in page]
