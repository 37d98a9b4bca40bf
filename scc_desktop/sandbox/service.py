"""What every emulated service provides to the sandbox server, and the shared fault machinery.

A service owns a set of path prefixes, its own SQLite state under the sandbox data folder, its
seeds and its error shape. The server applies latency and generic faults (5xx, 429, dropped
connections) before a request reaches the service, in the service's own error shape, and counts
calls per service and per endpoint kind.
"""

from __future__ import annotations

import json
import random
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response


class DropConnection(Exception):
    """Raised by a service (or the fault layer) to cut the TCP connection without a response."""


@dataclass
class FaultProfile:
    """Probabilities per call; `seed` makes a run reproducible."""

    error_rate: float = 0.0  # 500 or 503, half each
    throttle_rate: float = 0.0  # 429 with Retry-After
    retry_after_s: float = 1.0
    drop_rate: float = 0.0  # connection closed with no response
    lock_row_rate: float = 0.0  # Salesforce: UNABLE_TO_LOCK_ROW on single collection records
    partial_failure_rate: float = 0.0  # a record of a batch fails alone (service-defined error)
    latency_ms: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultProfile:
        names = {f.name for f in fields(cls)} - {"rng"}
        unknown = set(data) - names - {"service"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rng", None)
        return data

    def chance(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


class CallCounters:
    """Thread-safe counts of calls per (service, endpoint kind)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, service: str, kind: str) -> None:
        with self._lock:
            self._counts[(service, kind)] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (service, kind), n in sorted(self._counts.items()):
                out.setdefault(service, {})[kind] = n
            for kinds in out.values():
                kinds["total"] = sum(kinds.values())
            return out

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        json.dumps(data, separators=(",", ":")),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json;charset=UTF-8",
    )


class SandboxService(ABC):
    """One emulated API. Subclasses set `name` and `prefixes`."""

    name: str = ""
    prefixes: tuple[str, ...] = ()

    def __init__(self, data_dir: Path, base_url: str) -> None:
        self.data_dir = data_dir
        self.base_url = base_url
        self.faults = FaultProfile()

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Serve one API request (its path starts with one of `prefixes`)."""

    @abstractmethod
    def reset(self, seed: str, params: Mapping[str, Any]) -> None:
        """Drop all state and load a seed: 'empty', 'demo' or 'large' (with size params)."""

    @abstractmethod
    def is_empty(self) -> bool:
        """True when the service has never been seeded (a fresh data folder)."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """This service's part of the `sandbox serve` JSON line (URLs, client ids)."""

    @abstractmethod
    def error_response(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        """An error in this API's own body shape."""

    def endpoint_kind(self, request: Request) -> str:
        """A short name for counters ('query', 'collections', 'delta', ...)."""
        return "other"

    def admin(self, request: Request, action: str) -> Response:
        """Service-specific admin actions under /__sandbox__/{name}/{action}."""
        return json_response({"error": f"unknown admin action {action!r}"}, status=404)

    def counts_towards_faults(self, request: Request) -> bool:
        """Whether generic faults may hit this request (sign-in pages may opt out)."""
        return True

    def close(self) -> None:  # noqa: B027 - optional hook, most services hold nothing to release
        """Release resources (database connections) when the server stops."""
