from pathlib import Path

import pytest

from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.engine_runner import EngineRunner, describe
from scc_desktop.mailbox.protocol import MailboxError, ReconnectRequired
from scc_desktop.salesforce.errors import ReconnectRequired as SalesforceReconnect


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def connect(self, ctx: AppContext) -> None:
        raise self.error


class Absent:
    def connect(self, ctx: AppContext) -> None:
        return None


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    return AppContext.open(
        tmp_path / "p", secret_backend=MemoryBackend(), policy_path=tmp_path / "none.toml"
    )


def test_no_accounts_is_not_connected(ctx: AppContext) -> None:
    outcome = EngineRunner(ctx, Absent()).run("cli", lambda _: None)
    assert outcome.status == "not_connected"


def test_an_outage_ends_the_session_with_a_message_not_a_traceback(ctx: AppContext) -> None:
    outcome = EngineRunner(ctx, Failing(MailboxError("GET /me: 503", retryable=True))).run(
        "cli", lambda _: None
    )
    assert outcome.status == "failed" and not outcome.needs_attention
    assert "next session tries again" in outcome.message


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (SalesforceReconnect("refresh token revoked"), "Reconnect Salesforce"),
        (ReconnectRequired("Reconnect Microsoft 365", "invalid_grant"), "Reconnect Microsoft 365"),
    ],
)
def test_reconnect_asks_the_user(ctx: AppContext, error: Exception, message: str) -> None:
    outcome = EngineRunner(ctx, Failing(error)).run("cli", lambda _: None)
    assert (outcome.status, outcome.message, outcome.needs_attention) == ("failed", message, True)


def test_describe_reads_like_a_sentence() -> None:
    summary = {
        "counts": {
            "contact": {"mailbox": {"created": 4, "updated": 0, "deleted": 0}},
            "event": {"mailbox": {"created": 1}, "salesforce": {"updated": 1}},
        },
        "email": {"shared": 3},
        "issues": [{"kind": "contact"}],
    }
    assert describe(summary) == (
        "Synced 4 contacts and 2 calendar items; saved 3 emails to Salesforce; 1 issue to look at"
    )
    assert describe({"counts": {}, "issues": []}) == "Everything is up to date"
