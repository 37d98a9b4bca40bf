"""The Save Email and New Records actions against the sandbox over HTTPS with the real clients."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from scc_desktop.demo import DemoAccounts, start_demo
from scc_desktop.email_actions import (
    Correspondent,
    count_unresolved,
    create_contact,
    create_lead,
    do_not_sync,
    frequent_correspondents,
    link_email,
    list_unresolved,
    recent_messages,
    save_email,
    search_records,
)
from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.mailbox.types import MessageFolder
from scc_desktop.net import https_session
from scc_desktop.paths import resolve_profile
from scc_desktop.salesforce.gateway import SalesforceGateway, connect
from scc_desktop.settings import SETTINGS, Settings, SettingsError, SettingsSnapshot, Value
from scc_desktop.store.db import Database, open_database
from scc_desktop.store.settings_table import SettingsTable
from scc_desktop.sync.email_session import run_email_stage, unresolved_emails
from scc_desktop.sync.state import SyncState

OWNER = "alex.morgan@northwind.example"
JANE = "Jane Cooper <jane.cooper@acme.example>"
STRANGER = "chris.jones1987@gmail.com"
VENDOR = "nina.patel@vendorco.example"


def snapshot(**values: Value) -> SettingsSnapshot:
    merged: dict[str, Value] = {s.key: s.default for s in SETTINGS}
    merged.update(values)
    return SettingsSnapshot(merged)


@dataclass
class Env:
    demo: DemoAccounts
    db: Database
    state: SyncState
    gateway: SalesforceGateway
    mailbox: GraphMailbox
    admin: requests.Session

    @property
    def user_id(self) -> str:
        return self.demo.salesforce_account.user_id

    def post(self, path: str, body: dict[str, Any]) -> Any:
        reply = self.admin.post(f"{self.demo.server.admin_url}/{path}", json=body, timeout=30)
        assert reply.status_code < 300, reply.text
        return reply.json() if reply.content else None

    def deliver(self, **body: Any) -> dict[str, Any]:
        body.setdefault("folder", "inbox")
        body.setdefault("direction", "received")
        return dict(self.post("microsoft/deliver", body))

    def records(self, sobject: str) -> list[dict[str, Any]]:
        reply = self.admin.get(
            f"{self.demo.server.admin_url}/salesforce/records",
            params={"type": sobject},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return [r for r in reply.json()["records"] if not r.get("IsDeleted")]

    def activities(self, subject: str) -> list[dict[str, Any]]:
        emails = [r for r in self.records("EmailMessage") if r.get("Subject") == subject]
        tasks = [
            r
            for r in self.records("Task")
            if r.get("Subject") == f"Email: {subject}" and r.get("SCC_Sync_Key__c")
        ]
        return emails + tasks

    def save(self, message_id: str, **kw: Any) -> Any:
        values = kw.pop("settings", {})
        kw.setdefault("related_to_id", None)
        kw.setdefault("autosave_thread", False)
        return save_email(
            self.gateway,
            self.mailbox,
            self.state,
            snapshot(**values),
            message_id,
            user_id=self.user_id,
            own_addresses=[OWNER],
            now=datetime.now(UTC),
            **kw,
        )

    def run_stage(self, **values: Value) -> Any:
        return run_email_stage(
            self.gateway,
            self.mailbox,
            self.state,
            snapshot(**values),
            user_id=self.user_id,
            own_addresses=[OWNER],
            now=datetime.now(UTC),
            run_id=self.state.start_run("test"),
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One sandbox for the module (the cases below do not undo each other's records)."""
    tmp: Path = tmp_path_factory.mktemp("actions")
    demo = start_demo(resolve_profile(tmp / "p").ensure(), seed="demo")
    admin = https_session(str(demo.ca_file))
    db = open_database(tmp / "state.sqlite3")
    try:
        yield Env(
            demo,
            db,
            SyncState(db),
            connect(
                demo.salesforce,
                db=db,
                org_id=demo.salesforce_account.org_id,
                user_id=demo.salesforce_account.user_id,
            ),
            GraphMailbox.connect(
                demo.graph_url, demo.microsoft, ca_file=str(demo.ca_file), owner=OWNER
            ),
            admin,
        )
    finally:
        db.close()
        admin.close()
        demo.stop()


def test_recent_messages_lists_inbox_and_sent_newest_first(env: Env) -> None:
    before = env.mailbox.http.call_counts()["total"]
    messages = recent_messages(env.mailbox, limit=50)
    assert env.mailbox.http.call_counts()["total"] - before <= 2
    subjects = {m.subject for m in messages}
    assert "Quick question about your product" in subjects
    assert "Initech security review follow-up" in subjects  # a sent one
    assert {m.folder for m in messages} == {MessageFolder.INBOX, MessageFolder.SENT}
    stamps = [m.when for m in messages]
    assert all(s is not None for s in stamps)
    assert stamps == sorted(stamps, key=lambda s: s or datetime.min, reverse=True)
    assert len(recent_messages(env.mailbox, limit=3)) == 3


def test_search_records_matches_literally_with_an_apostrophe(env: Env) -> None:
    env.post("salesforce/records", {"type": "Account", "fields": {"Name": "O'Brien Freight"}})
    env.post("salesforce/records", {"type": "Account", "fields": {"Name": "100% Widgets"}})
    found = search_records(env.gateway, "o'brien")
    assert [(c.kind, c.name) for c in found] == [("Account", "O'Brien Freight")]
    assert [c.name for c in search_records(env.gateway, "100%")] == ["100% Widgets"]
    assert search_records(env.gateway, "0% W") != []
    assert search_records(env.gateway, "_") == []  # `_` is not a wildcard
    kinds = {c.kind for c in search_records(env.gateway, "a")}
    assert kinds == {"Account", "Opportunity", "Contact", "Lead"}
    assert search_records(env.gateway, "   ") == []


def test_save_with_related_to_and_thread_box_then_thread_continues(env: Env) -> None:
    first = env.deliver(**{"from": JANE, "subject": "window save"})
    account = search_records(env.gateway, "O'Brien")[0]
    outcome = env.save(
        first["id"],
        related_to_id=account.id,
        related_to_name=account.name,
        autosave_thread=True,
        settings={"email_thread_autosave": True},
    )
    assert outcome.status == "saved", outcome
    assert "O'Brien Freight" in outcome.message and "Jane Cooper" in outcome.message
    [activity] = env.activities("window save")
    assert (activity.get("RelatedToId") or activity.get("WhatId")) == account.id

    again = env.save(first["id"], related_to_id=account.id, autosave_thread=True)
    assert again.status == "already_saved"
    assert len(env.activities("window save")) == 1

    # A later message of the conversation is saved by the next session, auto-sharing off.
    env.deliver(
        **{"from": JANE, "subject": "RE: window save", "conversationId": first["conversationId"]}
    )
    env.deliver(**{"from": JANE, "subject": "not in the thread"})
    result = env.run_stage(email_autoshare=False, email_thread_autosave=True)
    assert len(env.activities("RE: window save")) == 1
    assert env.activities("not in the thread") == []
    assert len(env.activities("window save")) == 1  # the manual one is not saved again
    assert result.failed == 0


def test_save_unmatched_is_listed_unresolved(env: Env) -> None:
    lone = env.deliver(**{"from": "Nobody <nobody@unknown-co.example>", "subject": "lonely"})
    outcome = env.save(lone["id"])
    assert outcome.status == "unresolved"
    assert "unresolved" in outcome.message
    assert any(r["subject"] == "lonely" for r in unresolved_emails(env.state))


def test_frequent_correspondents_then_create_and_do_not_sync(env: Env, tmp_path: Path) -> None:
    values = {"blacklist": "example-corp.example"}
    people = frequent_correspondents(env.mailbox, env.gateway, snapshot(**values), [OWNER], days=30)
    addresses = {p.address for p in people}
    assert STRANGER in addresses
    assert VENDOR in addresses
    assert "jane.cooper@acme.example" not in addresses  # a Contact
    assert not any(a.endswith("@northwind.example") for a in addresses)  # internal
    blocked = frequent_correspondents(
        env.mailbox, env.gateway, snapshot(blacklist="vendorco.example"), [OWNER]
    )
    assert VENDOR not in {p.address for p in blocked}
    chris = next(p for p in people if p.address == STRANGER)
    assert chris.name == "Chris Jones" and chris.count >= 1

    contact_id = create_contact(env.gateway, chris, account_name="O'Brien Freight")
    [contact] = [r for r in env.records("Contact") if r["Id"] == contact_id]
    assert (contact["FirstName"], contact["LastName"], contact["Email"]) == (
        "Chris",
        "Jones",
        STRANGER,
    )
    assert contact["AccountId"] == search_records(env.gateway, "O'Brien")[0].id
    lead_id = create_lead(env.gateway, Correspondent(VENDOR, "Nina Patel", 1), "VendorCo")
    [lead] = [r for r in env.records("Lead") if r["Id"] == lead_id]
    assert (lead["LastName"], lead["Company"]) == ("Patel", "VendorCo")
    after = {
        p.address for p in frequent_correspondents(env.mailbox, env.gateway, snapshot(), [OWNER])
    }
    assert STRANGER not in after and VENDOR not in after

    settings = Settings(SettingsTable(open_database(tmp_path / "settings.sqlite3")))
    settings.set("blacklist", "spam.example")
    saved = do_not_sync(settings, "Someone@Else.example")
    assert saved == "spam.example, someone@else.example"
    assert do_not_sync(settings, "someone@else.example") == saved  # no duplicate
    with pytest.raises(SettingsError):
        do_not_sync(settings, "not an address")


def test_save_as_task_says_what_it_is_linked_to(env: Env) -> None:
    message = env.deliver(**{"from": JANE, "subject": "as a task"})
    outcome = env.save(message["id"], settings={"save_emails_as": "task"})
    assert outcome.status == "saved"
    assert outcome.message == "Saved as a completed Task linked to Jane Cooper."
    [task] = env.activities("as a task")
    assert task["Status"] == "Completed" and task["WhoId"]


@pytest.mark.parametrize("save_as", ["email_message", "task"])
def test_unresolved_linked_to_a_contact_the_user_found(env: Env, save_as: str) -> None:
    """The Unresolved Emails window's path: list, search a Contact, link; the email leaves the
    list and Salesforce has the link (an EmailMessageRelation, or the Task's WhoId)."""
    subject = f"link me ({save_as})"
    lone = env.deliver(**{"from": "Nobody <nobody@unknown-co.example>", "subject": subject})
    outcome = env.save(lone["id"], settings={"save_emails_as": save_as})
    assert outcome.status == "unresolved", outcome
    listed = [e for e in list_unresolved(env.state) if e.subject == subject]
    assert len(listed) == 1 and listed[0].sender == "nobody@unknown-co.example"
    assert listed[0].when is not None
    before = count_unresolved(env.state)

    [wei] = [c for c in search_records(env.gateway, "Wei Chen") if c.kind == "Contact"]
    said = link_email(env.gateway, env.state, listed[0].key, wei)
    assert said == "Linked to Wei Chen (Contact, wei.chen@initech.example)."
    assert all(e.key != listed[0].key for e in list_unresolved(env.state))
    assert count_unresolved(env.state) == before - 1
    [activity] = env.activities(subject)
    if save_as == "task":
        assert activity["WhoId"] == wei.id
    else:
        relations = [
            r
            for r in env.records("EmailMessageRelation")
            if r["EmailMessageId"] == activity["Id"] and r["RelationId"] == wei.id
        ]
        assert len(relations) == 1
    with pytest.raises(KeyError):  # linked already: no longer in the list
        link_email(env.gateway, env.state, listed[0].key, wei)
