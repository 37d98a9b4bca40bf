"""The email stage's sessions over time: the demo acceptance, re-runs, folder moves, thread
auto-save, crash recovery and the history window of a first enabling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from email_harness import EmailHarness

from scc_desktop.mailbox.types import MessageFolder
from scc_desktop.salesforce.errors import TransientError
from scc_desktop.salesforce.files import Uploader
from scc_desktop.salesforce.writer import CollectionsWriter
from scc_desktop.sync.email_session import link_unresolved, unresolved_emails

JANE = "Jane Cooper <jane.cooper@acme.example>"
PRIYA = "Priya Shah <priya.shah@northwind.example>"

# The demo mailbox's messages whose participants match Contacts or Leads and fall within the
# first enabling's 6 days (Jane's first message is 6 days 3 hours old), plus Olivia's, which is
# categorized "Salesforce" (a manual save). Colleagues, the free-mail stranger and VendorCo are
# not shared.
DEMO_SHARED = {
    "RE: Fleet renewal - pricing questions",  # twice: the reply and Jane's answer
    "Intro - Hooli IT modernization",
    "Initech security review follow-up",
    "Globex purchase order",
    "Umbrella security suite - next steps",
}
DEMO_NOT_SHARED = {
    "Fleet renewal - pricing questions",
    "Notes from the Initech call",
    "Quick question about your product",
    "VendorCo: your monthly statement",
    "Pipeline review moved",
}


def _email_subjects(h: EmailHarness) -> list[str]:
    return sorted(str(r["Subject"]) for r in h.records("EmailMessage"))


def test_demo_autoshare_shares_exactly_the_matching_messages_once(email_demo: EmailHarness) -> None:
    h = email_demo
    h.run(email_autoshare=True, blacklist="vendorco.example")
    subjects = _email_subjects(h)
    assert set(subjects) == DEMO_SHARED
    assert subjects.count("RE: Fleet renewal - pricing questions") == 2
    assert len(subjects) == 6
    assert not DEMO_NOT_SHARED & set(subjects)

    again = h.run(email_autoshare=True, blacklist="vendorco.example")
    assert again.shared == 0
    assert _email_subjects(h) == subjects

    # A quiet session costs no Salesforce call: matches and the org's facts are cached.
    before = h.gateway.stats.total
    quiet = h.run(email_autoshare=True, blacklist="vendorco.example")
    assert quiet.shared == 0
    assert h.gateway.stats.total == before


def test_moving_a_shared_message_to_the_folder_creates_nothing(
    email_empty_mailbox: EmailHarness,
) -> None:
    h = email_empty_mailbox
    delivered = h.deliver(**{"from": JANE, "subject": "move me"})
    h.run(email_autoshare=True)
    assert len(h.activities("move me")) == 1
    h.mailbox.move_message(delivered["id"], MessageFolder.SALESFORCE_EMAILS)
    result = h.run(email_autoshare=True)
    assert result.already_saved == 1
    assert result.shared == 0
    assert len(h.activities("move me")) == 1


def test_manual_then_automatic_path_saves_once(email_empty_mailbox: EmailHarness) -> None:
    h = email_empty_mailbox
    delivered = h.deliver(**{"from": JANE, "subject": "manual first"})
    h.mailbox.move_message(delivered["id"], MessageFolder.SALESFORCE_EMAILS)
    h.run()  # auto-sharing off: the folder's manual save
    assert len(h.activities("manual first")) == 1
    # The same message (same Message-ID) delivered again to the Inbox, auto-sharing on.
    h.deliver(
        **{
            "from": JANE,
            "subject": "manual first",
            "internetMessageId": delivered["internetMessageId"],
        }
    )
    h.run(email_autoshare=True)
    assert len(h.activities("manual first")) == 1


def test_thread_auto_save_with_autoshare_off(email_empty_mailbox: EmailHarness) -> None:
    h = email_empty_mailbox
    first = h.deliver(**{"from": JANE, "subject": "thread start", "categories": ["Salesforce"]})
    h.run(email_thread_autosave=True)
    assert len(h.activities("thread start")) == 1
    h.deliver(
        **{"from": JANE, "subject": "RE: thread start", "conversationId": first["conversationId"]}
    )
    h.deliver(
        **{"from": PRIYA, "subject": "RE: internal only", "conversationId": first["conversationId"]}
    )
    h.deliver(**{"from": JANE, "subject": "another conversation"})
    h.run(email_thread_autosave=True)
    assert len(h.activities("RE: thread start")) == 1
    assert h.activities("RE: internal only") == []
    assert h.activities("another conversation") == []


@pytest.mark.parametrize("enhanced", [True, False], ids=["email_message", "task"])
def test_unmatched_manual_save_is_unresolved_until_linked(
    email_empty_mailbox: EmailHarness, enhanced: bool
) -> None:
    h = email_empty_mailbox
    if not enhanced:
        h.sf_settings(enhanced_email=False)
    delivered = h.deliver(**{"from": "Nobody <nobody@unknown.example>", "subject": "who is this"})
    h.mailbox.move_message(delivered["id"], MessageFolder.SALESFORCE_EMAILS)
    result = h.run()
    assert result.unresolved == 1
    assert "Saved without a link: who is this" in h.open_issues()
    [row] = unresolved_emails(h.state)
    assert row["subject"] == "who is this"
    assert row["sender"] == "nobody@unknown.example"
    [record] = h.activities("who is this")
    assert row["salesforce_id"] == record["Id"]
    assert record.get("RelatedToId" if enhanced else "WhatId") is None

    account = h.id_of("Account", "Initech")
    link_unresolved(h.gateway, h.state, row["save_key"], account)
    if enhanced:
        [task] = [t for t in h.records("Task") if t["Id"] == record["ActivityId"]]
    else:
        [task] = [t for t in h.records("Task") if t["Id"] == record["Id"]]
    assert task["WhatId"] == account
    assert unresolved_emails(h.state) == []
    assert "Saved without a link: who is this" not in h.open_issues()
    assert h.run().shared == 0


@pytest.mark.parametrize("enhanced", [True, False], ids=["email_message", "task"])
def test_crash_after_the_salesforce_write_creates_nothing_new(
    email_empty_mailbox: EmailHarness, monkeypatch: pytest.MonkeyPatch, enhanced: bool
) -> None:
    h = email_empty_mailbox
    if not enhanced:
        h.sf_settings(enhanced_email=False)
    h.deliver(**{"from": JANE, "subject": "crash test"})
    real_create = CollectionsWriter.create
    real_upsert = CollectionsWriter.upsert

    def create_then_crash(self: CollectionsWriter, *args: Any, **kwargs: Any) -> Any:
        real_create(self, *args, **kwargs)
        raise RuntimeError("crash after the write")

    def upsert_then_crash(self: CollectionsWriter, *args: Any, **kwargs: Any) -> Any:
        real_upsert(self, *args, **kwargs)
        raise RuntimeError("crash after the write")

    with monkeypatch.context() as patch:
        patch.setattr(CollectionsWriter, "create", create_then_crash)
        patch.setattr(CollectionsWriter, "upsert", upsert_then_crash)
        with pytest.raises(RuntimeError):
            h.run(email_autoshare=True)
    assert len(h.activities("crash test")) == 1

    result = h.run(email_autoshare=True)
    assert result.shared == 1  # recorded now, found in Salesforce rather than created
    assert len(h.activities("crash test")) == 1
    assert h.run(email_autoshare=True).shared == 0


@pytest.mark.parametrize("history", [None, 12], ids=["default_6_days", "setting_12_days"])
def test_first_enabling_takes_the_history_window(
    email_empty_mailbox: EmailHarness, history: int | None
) -> None:
    h = email_empty_mailbox
    window = {} if history is None else {"email_history_days": history}
    now = datetime.now(UTC)

    def stamp(days: float) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    for days, subject in ((3, "three days old"), (10, "ten days old")):
        h.deliver(
            **{
                "from": JANE,
                "subject": subject,
                "receivedDateTime": stamp(days),
                "sentDateTime": stamp(days),
            }
        )
    h.run()  # switch off: the Inbox is read (categories) and its cursor saved
    assert h.activities("three days old") == []
    h.run(email_autoshare=True, **window)  # first enabling: the last 6 days (the setting)
    assert len(h.activities("three days old")) == 1
    assert len(h.activities("ten days old")) == (1 if history == 12 else 0)


def test_interrupted_upload_resumes_without_duplicates(
    email_empty_mailbox: EmailHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = email_empty_mailbox
    h.deliver(
        **{
            "from": JANE,
            "subject": "two files",
            "attachments": [
                {"name": "a.pdf", "contentType": "application/pdf", "size": 2000},
                {"name": "b.pdf", "contentType": "application/pdf", "size": 3000},
            ],
        }
    )
    real_upload = Uploader.upload

    def flaky(self: Uploader, parent_id: str, name: str, data: bytes, **kwargs: Any) -> Any:
        if name == "b.pdf":
            raise TransientError("connection dropped")
        return real_upload(self, parent_id, name, data, **kwargs)

    def titles() -> list[str]:
        return sorted(str(r["Title"]) for r in h.records("ContentVersion"))

    with monkeypatch.context() as patch:
        patch.setattr(Uploader, "upload", flaky)
        first = h.run(email_autoshare=True)
    assert first.attachments_uploaded == 1
    assert "Attachment not uploaded yet: b.pdf" in h.open_issues()
    assert titles() == ["a.pdf"]

    second = h.run(email_autoshare=True)
    assert second.shared == 1
    assert second.attachments_uploaded == 1
    assert titles() == ["a.pdf", "b.pdf"]
    assert len(h.activities("two files")) == 1
    assert "Attachment not uploaded yet: b.pdf" not in h.open_issues()
    assert h.run(email_autoshare=True).attachments_uploaded == 0


def test_thread_marked_and_continued_in_one_session(email_empty_mailbox: EmailHarness) -> None:
    h = email_empty_mailbox
    first = h.deliver(**{"from": JANE, "subject": "same page", "categories": ["Salesforce"]})
    h.deliver(
        **{"from": JANE, "subject": "RE: same page", "conversationId": first["conversationId"]}
    )
    result = h.run(email_thread_autosave=True)
    assert result.reasons == {"manual": 1, "thread": 1}
    assert len(h.activities("same page")) == 1
    assert len(h.activities("RE: same page")) == 1


def test_a_refused_save_is_an_issue_and_not_retried(email_empty_mailbox: EmailHarness) -> None:
    h = email_empty_mailbox
    h.sf_settings(enhanced_email=False)  # an EmailMessage then needs a Case: refused
    h.deliver(**{"from": JANE, "subject": "refused"})
    result = h.run(email_autoshare=True, save_emails_as="email_message")
    assert result.failed == 1
    assert result.shared == 0
    assert "Email not saved: refused" in h.open_issues()
    assert h.activities("refused") == []
    assert h.state.db.connect().execute("SELECT COUNT(*) FROM email_retries").fetchone()[0] == 0


def test_retry_from_sync_issues_tries_a_refused_save_again(
    email_empty_mailbox: EmailHarness,
) -> None:
    h = email_empty_mailbox
    h.sf_settings(enhanced_email=False)  # an EmailMessage then needs a Case: refused
    h.deliver(**{"from": JANE, "subject": "refused at first"})
    assert h.run(email_autoshare=True, save_emails_as="email_message").failed == 1
    assert h.run(email_autoshare=True, save_emails_as="email_message").failed == 0  # not by itself
    issue = next(i for i in h.state.open_issues(kind="email") if i.category == "error")
    h.state.resolve_issue(issue.id, "retry")  # what Sync Issues > Retry records
    # the user fixed the cause (here: saves as Tasks now) and asked to retry
    result = h.run(email_autoshare=True, save_emails_as="task")
    assert result.shared == 1 and result.failed == 0
    assert len(h.activities("refused at first")) == 1
    assert h.run(email_autoshare=True, save_emails_as="task").shared == 0
