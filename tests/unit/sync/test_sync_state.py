"""Typed access to the engine's tables."""

from __future__ import annotations

import sqlite3

import pytest

from scc_desktop.sync.state import Link, SyncState


def link(**over: object) -> Link:
    values: dict[str, object] = {
        "id": None,
        "kind": "contact",
        "mailbox_id": "m1",
        "mailbox_version": "v1",
        "mailbox_hash": "h",
        "salesforce_id": "s1",
        "salesforce_version": "w1",
        "salesforce_hash": "h",
        "base": {"email": "a@x.io", "attendees": None},
    }
    values.update(over)
    return Link(**values)  # type: ignore[arg-type]


def test_links_round_trip_and_stay_unique_per_side(state: SyncState) -> None:
    link_id = state.save_link(link())
    (stored,) = state.links("contact")
    assert stored.id == link_id and stored.base["email"] == "a@x.io"
    assert state.links_for("contact", "salesforce", ["s1", "nope"])["s1"].mailbox_id == "m1"
    assert state.count_active_links("contact") == 1
    with pytest.raises(sqlite3.IntegrityError):
        state.save_link(link(salesforce_id="s2"))  # m1 already linked
    state.save_link(link(kind="task"))  # unique per kind, not across kinds
    state.save_link(link(id=link_id, mailbox_id=None, state="mailbox_detached"))
    assert state.count_active_links("contact") == 0
    state.save_link(link(mailbox_id=None, salesforce_id="s3", state="mailbox_detached"))
    state.delete_link(link_id)
    assert [x.salesforce_id for x in state.links("contact")] == ["s3"]


def test_intents_are_pending_until_finished(state: SyncState) -> None:
    state.add_intents("contact", "salesforce", [("k1", {"source_id": "m1"}), ("k2", {})])
    assert [i.correlation_key for i in state.pending_intents("contact", "salesforce")] == [
        "k1",
        "k2",
    ]
    assert state.pending_intents("contact", "mailbox") == []
    state.finish_intents(["k1"])
    assert [i.payload for i in state.pending_intents("contact", "salesforce")] == [{}]
    state.prune_intents()
    assert state.db.connect().execute("SELECT COUNT(*) FROM sync_intents").fetchone()[0] == 1


def test_a_failed_transaction_leaves_nothing(state: SyncState) -> None:
    with pytest.raises(RuntimeError), state.transaction():
        state.save_link(link())
        state.set_cursor("sync:contact:mailbox", "5")
        raise RuntimeError("crash mid-batch")
    assert state.links("contact") == []
    assert state.cursor("sync:contact:mailbox") is None


def test_issues_dedupe_and_resolve(state: SyncState) -> None:
    run = state.start_run("cli")
    first = state.record_issue(
        run_id=run,
        kind="contact",
        category="error",
        title="t",
        message="m1",
        item_key="mailbox:m1",
        payload={},
    )
    again = state.record_issue(
        run_id=run,
        kind="contact",
        category="error",
        title="t",
        message="m2",
        item_key="mailbox:m1",
        payload={},
    )
    assert first == again
    assert [i.message for i in state.open_issues("contact")] == ["m2"]
    state.resolve_item_issues("contact", ["mailbox:m1"], "synced")
    assert state.open_issues() == []
    state.finish_run(run, "ok", "", {"status": "ok"})


def test_mass_delete_answers_are_used_once(state: SyncState) -> None:
    issue = state.record_issue(
        run_id=None,
        kind="task",
        category="mass_delete",
        title="t",
        message="m",
        item_key="task",
        payload={},
    )
    assert state.take_mass_delete_answer("task") is None
    state.resolve_issue(issue, "restore")
    assert state.take_mass_delete_answer("contact") is None
    assert state.take_mass_delete_answer("task") == "restore"
    assert state.take_mass_delete_answer("task") is None


def test_retries(state: SyncState) -> None:
    state.add_retries("event", "mailbox", ["a", "b", "a"])
    assert state.retry_ids("event", "mailbox") == {"a", "b"}
    state.clear_retries("event", "mailbox", ["a"])
    assert state.retry_ids("event", "mailbox") == {"b"}
    assert state.retry_ids("event", "salesforce") == set()
