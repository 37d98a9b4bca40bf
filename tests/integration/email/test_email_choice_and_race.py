"""A Save Email keeps the user's choice through its retries, and a Save Email racing a session
over the same message writes it once (the claim on its `email_saves` row)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from email_harness import OWNER, EmailHarness, settings

from scc_desktop.email_actions import SaveOutcome, save_email
from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.salesforce.errors import RecordError
from scc_desktop.salesforce.gateway import SalesforceGateway, connect
from scc_desktop.salesforce.writer import CollectionsWriter, WriteResult
from scc_desktop.settings import Value
from scc_desktop.sync import email_session
from scc_desktop.sync.email_session import EmailStageResult
from scc_desktop.sync.state import SyncState

JANE = "Jane Cooper <jane.cooper@acme.example>"


def window_save(
    h: EmailHarness,
    message_id: str,
    *,
    gateway: SalesforceGateway | None = None,
    mailbox: GraphMailbox | None = None,
    related_to_id: str | None = None,
    autosave_thread: bool = False,
    **values: Value,
) -> SaveOutcome:
    """What the Save Email window's thread does (its own state connection for its thread)."""
    return save_email(
        gateway or h.gateway,
        mailbox or h.mailbox,
        SyncState(h.db),
        settings(**values),
        message_id,
        related_to_id=related_to_id,
        autosave_thread=autosave_thread,
        user_id=h.user_id,
        own_addresses=[OWNER],
        now=datetime.now(UTC),
    )


def task_of(h: EmailHarness, subject: str) -> dict[str, Any]:
    [task] = [
        t
        for t in h.records("Task")
        if t.get("Subject") == f"Email: {subject}" and t.get("SCC_Sync_Key__c")
    ]
    return task


# --- the user's choice survives a failed save --------------------------------------------------


@pytest.mark.parametrize("thread_box", [True, False], ids=["thread_on", "thread_off"])
def test_sync_issues_retry_keeps_related_to_and_the_thread_box(
    email_empty_mailbox: EmailHarness, thread_box: bool
) -> None:
    h = email_empty_mailbox
    h.sf_settings(enhanced_email=False)  # an EmailMessage then needs a Case: refused
    first = h.deliver(**{"from": JANE, "subject": "chosen record"})
    account = h.id_of("Account", "Initech")  # not Jane's account: only the user's choice says it
    outcome = window_save(
        h,
        first["id"],
        related_to_id=account,
        autosave_thread=thread_box,
        email_thread_autosave=True,
        save_emails_as="email_message",
    )
    assert outcome.status == "failed", outcome
    assert h.activities("chosen record") == []
    issue = next(i for i in h.state.open_issues(kind="email") if i.category == "error")
    h.state.resolve_issue(issue.id, "retry")  # Sync Issues > Retry
    h.deliver(
        **{"from": JANE, "subject": "RE: chosen record", "conversationId": first["conversationId"]}
    )

    # Next session: auto-sharing off; the user fixed the cause (Tasks now).
    result = h.run(email_thread_autosave=True, save_emails_as="task")

    assert result.failed == 0
    task = task_of(h, "chosen record")
    assert task["WhatId"] == account  # the Related To the user picked
    assert task["WhoId"] == h.contact_id("jane.cooper@acme.example")
    assert len(h.activities("RE: chosen record")) == (
        1 if thread_box else 0
    )  # the thread box as the user left it
    assert h.run(email_thread_autosave=True, save_emails_as="task").shared == 0
    assert len(h.activities("chosen record")) == 1


def test_a_transient_failure_is_retried_next_session_with_the_choice(
    email_empty_mailbox: EmailHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = email_empty_mailbox
    message = h.deliver(**{"from": JANE, "subject": "flaky save"})
    opportunity = h.id_of("Opportunity", "Acme - Fleet Renewal")

    def unavailable(self: CollectionsWriter, sobject: str, rows: Any, **kw: Any) -> Any:
        error = RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")
        return [WriteResult(i, False, errors=(error,)) for i in range(len(rows))]

    with monkeypatch.context() as patch:
        patch.setattr(CollectionsWriter, "create", unavailable)
        outcome = window_save(h, message["id"], related_to_id=opportunity, autosave_thread=False)
    assert outcome.status == "failed", outcome
    assert h.activities("flaky save") == []

    result = h.run()  # auto-sharing off: only the kept choice makes this a save
    assert result.shared == 1, result
    [email] = h.activities("flaky save")
    assert email["RelatedToId"] == opportunity
    count = h.state.db.connect().execute("SELECT COUNT(*) FROM email_retries").fetchone()[0]
    assert count == 0
    assert h.run().shared == 0


# --- a window save and a session at the same moment ---------------------------------------------


def _second_connections(h: EmailHarness) -> tuple[SalesforceGateway, GraphMailbox]:
    """The actions thread's own clients, as the app gives it (same state file)."""
    demo = h.demo
    gateway = connect(
        demo.salesforce,
        db=h.db,
        org_id=demo.salesforce_account.org_id,
        user_id=demo.salesforce_account.user_id,
    )
    mailbox = GraphMailbox.connect(
        demo.graph_url, demo.microsoft, ca_file=str(demo.ca_file), owner=OWNER
    )
    return gateway, mailbox


def _widen_the_window(patch: pytest.MonkeyPatch) -> None:
    """Sleep between the key lookup and the create: the moment two writers race in."""
    real = email_session._Stage.recover

    def slow(self: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        time.sleep(0.15)

    patch.setattr(email_session._Stage, "recover", slow)


def _one_round(
    h: EmailHarness, subject: str, gateway: SalesforceGateway, mailbox: GraphMailbox
) -> int:
    """A new message; a session and a window save of it released together. Returns the number
    of EmailMessages written for it."""
    message = h.deliver(**{"from": JANE, "subject": subject})
    gate = threading.Barrier(2)
    errors: list[BaseException] = []
    answers: dict[str, object] = {}

    def run(name: str, work: Callable[[], object]) -> None:
        try:
            gate.wait(10)
            answers[name] = work()
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            h.db.close()  # this thread's connection

    def session() -> object:
        return h.run(email_autoshare=True)

    def window() -> object:
        return window_save(h, message["id"], gateway=gateway, mailbox=mailbox)

    threads = [
        threading.Thread(target=run, args=("session", session)),
        threading.Thread(target=run, args=("window", window)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    outcome = answers["window"]
    assert isinstance(outcome, SaveOutcome) and outcome.status != "failed", outcome
    assert isinstance(answers["session"], EmailStageResult)
    return len([r for r in h.records("EmailMessage") if r["Subject"] == subject])


def _race(h: EmailHarness, rounds: int) -> list[int]:
    """EmailMessages written per round."""
    gateway, mailbox = _second_connections(h)
    return [_one_round(h, f"race {n}", gateway, mailbox) for n in range(rounds)]


def test_a_window_save_racing_a_session_writes_one_email(
    email_empty_mailbox: EmailHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = email_empty_mailbox
    _widen_the_window(monkeypatch)
    counts = _race(h, rounds=8)
    assert counts == [1] * 8
    # Nothing is left claimed or pending, and the next session writes nothing.
    conn = h.db.connect()
    assert (
        conn.execute("SELECT COUNT(*) FROM email_saves WHERE claim_token IS NOT NULL").fetchone()[0]
        == 0
    )
    assert conn.execute("SELECT COUNT(*) FROM email_saves WHERE state != 'done'").fetchone()[0] == 0
    assert h.run(email_autoshare=True).shared == 0
    assert [len(h.activities(f"race {n}")) for n in range(8)] == [1] * 8


def test_without_the_claim_the_same_race_writes_twice(
    email_empty_mailbox: EmailHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race above is real: with the claim bypassed, the same rounds duplicate (so the test
    above can fail)."""
    h = email_empty_mailbox
    _widen_the_window(monkeypatch)

    def everything(self: Any, keys: Any, token: str) -> tuple[set[str], set[str]]:
        return set(keys), set()

    monkeypatch.setattr(email_session.EmailStore, "claim", everything)
    counts = _race(h, rounds=3)
    assert any(c > 1 for c in counts), counts


def test_a_claim_left_by_a_dead_process_is_taken_over(email_empty_mailbox: EmailHarness) -> None:
    h = email_empty_mailbox
    # A crashed process (pid 2**22 + 1 does not exist) held the claim of a pending save.
    conn = h.db.connect()
    with h.state.transaction() as tx:
        tx.execute(
            "INSERT INTO email_saves (save_key, target, mailbox_id, claim_token, claimed_at)"
            " VALUES ('mid:orphan@x', 'email_message', 'gone', ?, ?)",
            (f"{2**22 + 1}:dead", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
        )
    store = email_session.EmailStore(h.state)
    claimed, done = store.claim(["mid:orphan@x"], "mine")
    assert claimed == {"mid:orphan@x"} and done == set()
    # A live holder (this process, a stage still running) keeps it.
    live = email_session._new_claim_token()
    try:
        with h.state.transaction() as tx:
            tx.execute(
                "UPDATE email_saves SET claim_token = ? WHERE save_key = 'mid:orphan@x'", (live,)
            )
        assert store.claim(["mid:orphan@x"], "mine") == (set(), set())
    finally:
        email_session._drop_claim_token(live)
    assert store.claim(["mid:orphan@x"], "mine") == ({"mid:orphan@x"}, set())
    assert (
        conn.execute(
            "SELECT claim_token FROM email_saves WHERE save_key = 'mid:orphan@x'"
        ).fetchone()[0]
        == "mine"
    )
