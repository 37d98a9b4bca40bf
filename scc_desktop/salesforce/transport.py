"""The HTTP layer under simple-salesforce: TLS trust, call counting and API-usage tracking.

Every request the connector sends (queries, writes, OAuth) goes through one `requests.Session`
whose adapter counts it by kind and reads `Sforce-Limit-Info: api-usage=N/LIMIT`, so the session
summary reports the calls it spent and the scheduler can slow down above 80 % of the org's
daily limit. Verification is always on: the sandbox's CA file, or the system trust store.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from scc_desktop.net import PinnedCAAdapter

_LIMIT_RE = re.compile(r"api-usage=(\d+)/(\d+)")
_DATA_RE = re.compile(r"^/services/data/v[\d.]+/?(?P<rest>.*)$")

SLOW_DOWN_AT = 0.8
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read


@dataclass(frozen=True)
class ApiUsage:
    """The org's daily API use as the last response reported it."""

    used: int
    limit: int

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit > 0 else 0.0

    @property
    def should_slow_down(self) -> bool:
        return self.fraction >= SLOW_DOWN_AT


def classify(method: str, url: str) -> str:
    """A short kind for a Salesforce URL: query, query_more, collections, composite, ..."""
    path = urlsplit(url).path
    if path.startswith("/services/oauth2/"):
        return "oauth"
    match = _DATA_RE.match(path)
    if match is None:
        return "identity" if path.startswith("/id/") else "other"
    rest = match.group("rest").rstrip("/")
    if rest in ("query", "queryAll"):
        return "query"
    if rest.startswith(("query/", "queryAll/")):
        return "query_more"
    if rest.startswith("composite/sobjects"):
        return "collections"
    if rest.startswith("composite"):
        return "composite"
    if rest.startswith("sobjects/"):
        parts = rest.split("/")
        if len(parts) >= 3 and parts[2] in ("updated", "deleted", "describe"):
            return parts[2]
        return "sobject"
    if rest in {"", "sobjects"}:
        return "describe"
    return "other"


class CallStats:
    """Calls per kind for one sync session, and the last API usage seen. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._usage: ApiUsage | None = None
        self._local = threading.local()

    def record(self, kind: str, headers: Mapping[str, str] | None) -> None:
        usage = None
        if headers is not None:
            raw = headers.get("Sforce-Limit-Info")
            if raw:
                match = _LIMIT_RE.search(raw)
                if match:
                    usage = ApiUsage(int(match.group(1)), int(match.group(2)))
        retry_after: float | None = None
        if headers is not None and headers.get("Retry-After"):
            try:
                retry_after = float(headers["Retry-After"])
            except ValueError:
                retry_after = None
        self._local.retry_after = retry_after
        with self._lock:
            self._counts[kind] += 1
            if usage is not None:
                self._usage = usage

    @property
    def last_retry_after(self) -> float | None:
        """Retry-After (seconds) of this thread's last response, if it carried one."""
        value: float | None = getattr(self._local, "retry_after", None)
        return value

    @property
    def usage(self) -> ApiUsage | None:
        with self._lock:
            return self._usage

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        """Start a new session's counts; the last usage is kept (it is the org's, not ours)."""
        with self._lock:
            self._counts.clear()


class CountingAdapter(PinnedCAAdapter):
    """The pinned-CA adapter that also records every request (failed ones too) in a CallStats."""

    def __init__(
        self,
        stats: CallStats,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
    ) -> None:
        super().__init__(ca_file)
        self.stats = stats
        self.timeout = timeout

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kind = classify(request.method or "GET", request.url or "")
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException:
            self.stats.record(kind, None)
            raise
        self.stats.record(kind, response.headers)
        return response


def new_http_session(
    ca_file: str | Path | None = None,
    stats: CallStats | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> requests.Session:
    """A session that verifies TLS against `ca_file` (sandbox) or the system store (real org).

    Plain http is refused: only the https adapter is mounted.
    """
    session = requests.Session()
    session.verify = str(ca_file) if ca_file is not None else True
    adapter = CountingAdapter(
        stats if stats is not None else CallStats(),
        timeout,
        str(ca_file) if ca_file is not None else None,
    )
    session.adapters.clear()
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "scc-desktop"
    return session


def session_stats(session: requests.Session) -> CallStats | None:
    """The CallStats of a session made by `new_http_session`, if any."""
    adapter = session.adapters.get("https://")
    return adapter.stats if isinstance(adapter, CountingAdapter) else None
