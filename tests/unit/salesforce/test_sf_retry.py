import random

import pytest

from scc_desktop.salesforce.errors import QueryError, TransientError
from scc_desktop.salesforce.retry import RetryPolicy


def test_delay_is_capped_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, rng=random.Random(1))
    for attempt in range(10):
        ceiling = min(8.0, 0.5 * 2**attempt)
        samples = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        # full jitter: the samples spread over the range rather than sitting at the ceiling
        assert min(samples) < ceiling * 0.2
        assert max(samples) > ceiling * 0.8


def test_retry_after_is_respected_but_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, max_retry_after=30.0, rng=random.Random(2))
    assert policy.delay(0, retry_after=5.0) >= 5.0
    assert policy.delay(0, retry_after=500.0) == 30.0


def test_run_retries_transient_then_succeeds() -> None:
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=4, sleep=slept.append, rng=random.Random(3))
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise TransientError("503", status=503)
        return "ok"

    assert policy.run(flaky) == "ok"
    assert calls["n"] == 3
    assert len(slept) == 2


def test_run_gives_up_after_max_attempts() -> None:
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=3, sleep=slept.append)

    def always() -> None:
        raise TransientError("down")

    with pytest.raises(TransientError):
        policy.run(always)
    assert len(slept) == 2


def test_run_does_not_retry_permanent_errors() -> None:
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append)
    calls = {"n": 0}

    def bad() -> None:
        calls["n"] += 1
        raise QueryError("MALFORMED_QUERY", error_code="MALFORMED_QUERY")

    with pytest.raises(QueryError):
        policy.run(bad)
    assert calls["n"] == 1
    assert slept == []
