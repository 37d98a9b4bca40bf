"""Capped exponential backoff with full jitter; the sleep is injectable so tests stay fast."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from scc_desktop.salesforce.errors import TransientError

T = TypeVar("T")


@dataclass
class RetryPolicy:
    """How often and how long to wait before trying a transient failure again.

    Attempt n (0-based) waits a uniform random time in [0, min(max_delay, base_delay * 2**n)],
    but at least the server's Retry-After (itself capped by max_retry_after).
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, attempt)))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Sleep before the next attempt; returns the time slept."""
        wait = self.delay(attempt, retry_after)
        self.sleep(wait)
        return wait

    def run(self, fn: Callable[[], T]) -> T:
        """Call fn, retrying TransientError up to max_attempts in all; re-raise the last one."""
        attempt = 0
        while True:
            try:
                return fn()
            except TransientError as exc:
                attempt += 1
                if attempt >= self.max_attempts:
                    raise
                self.backoff(attempt - 1, exc.retry_after)


def no_sleep(_seconds: float) -> None:
    """A sleep for tests."""
