"""Sync Issues: the window's answers reach the engine's store and start a session; the tray asks
for attention only for what waits for the user, and says so once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.runner import SessionOutcome
from scc_desktop.store.issues import IssueRecord
from scc_desktop.sync.state import SyncState
from scc_desktop.ui.app import TrayApp
from scc_desktop.ui.issues_window import DIFFERS, IssuesWindow, conflict_rows
from scc_desktop.ui.tray import Tray

WAIT_MS = 3_000


@pytest.fixture
def tray_app(ctx: AppContext, runner_factory: Callable[[], Any]) -> Iterator[TrayApp]:
    app = TrayApp(ctx, runner_factory, run_at_start=False, minute_ms=60_000)
    app.start()
    yield app
    assert app.shutdown()


@pytest.fixture
def sessions(tray_app: TrayApp, make_relay: Callable[[object], Any]) -> Any:
    """The worker's signals on the GUI thread: wait on `sessions.finished`."""
    return make_relay(tray_app.worker.worker)


def cell(table: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = table.item(row, column)
    assert item is not None
    return item


def seed_conflict(ctx: AppContext, phone: str = "<b>+1 555 0199</b>") -> int:
    """As the engine records one: both full versions, the clashing fields, the winner."""
    return SyncState(ctx.db).record_issue(
        run_id=None,
        kind="contact",
        category="conflict",
        title="Conflict on contact 'Ann <i>Lee</i>': the mailbox version was kept aside",
        message="Both sides changed it (phone); the salesforce version won.",
        item_key="contact:AAMk1|003A1",
        payload={
            "winner": "salesforce",
            "fields": ["phone"],
            "mailbox": {"first_name": "Ann", "last_name": "Lee", "phone": phone, "title": "CFO"},
            "salesforce": {
                "first_name": "Ann",
                "last_name": "Lee",
                "phone": "+1 555 0100",
                "title": "CEO",
            },
            "ids": {"mailbox": "AAMk1", "salesforce": "003A1"},
        },
    )


def seed_mass_delete(ctx: AppContext) -> int:
    deletes = [
        {"side": "salesforce", "id": f"003D{n}", "label": f"Contact {n}"} for n in range(29)
    ] + [{"side": "salesforce", "id": "003DX", "label": "<script>x</script>"}]
    return SyncState(ctx.db).record_issue(
        run_id=None,
        kind="contact",
        category="mass_delete",
        title="30 contacts would be deleted",
        message="This session would delete 30 contacts, more than the safety threshold.",
        item_key="contact",
        payload={"deletes": deletes, "linked": 40},
    )


def seed_error(ctx: AppContext) -> int:
    return SyncState(ctx.db).record_issue(
        run_id=None,
        kind="task",
        category="error",
        title="Couldn't save task 'Call Ann' in Salesforce",
        message="REQUIRED_FIELD_MISSING: Subject. It will be retried.",
        item_key="task:AAMk9|00T9",
        payload={"side": "salesforce", "transient": True, "ids": {"mailbox": "AAMk9"}},
    )


def open_window(qtbot: QtBot, tray_app: TrayApp, issue_id: int) -> IssuesWindow:
    tray_app.show_issues()
    window = tray_app.issues_window
    assert window is not None
    qtbot.waitUntil(lambda: window.select_issue(issue_id), timeout=WAIT_MS)
    current = window.selected()
    assert current is not None and current.id == issue_id
    return window


def table_rows(window: IssuesWindow) -> dict[str, list[str]]:
    table = window.conflict_table
    rows = {}
    for row in range(table.rowCount()):
        cells = [cell(table, row, c).text() for c in range(table.columnCount())]
        rows[cells[1]] = cells
    return rows


# --- conflicts -------------------------------------------------------------------------------


def test_a_conflict_shows_both_versions_as_plain_text_and_keeps_the_mailbox_one(
    qtbot: QtBot, tray_app: TrayApp, ctx: AppContext, fake_runner: Any, sessions: Any
) -> None:
    issue_id = seed_conflict(ctx)
    window = open_window(qtbot, tray_app, issue_id)
    assert window.pages.currentWidget() is window.conflict_page
    rows = table_rows(window)
    assert rows["Phone"] == [DIFFERS, "Phone", "<b>+1 555 0199</b>", "+1 555 0100"]
    assert rows["Job title"] == [DIFFERS, "Job title", "CFO", "CEO"]
    assert rows["First name"] == ["", "First name", "Ann", "Ann"]
    assert list(rows) == ["First name", "Last name", "Phone", "Job title"]  # the kind's order
    assert cell(window.conflict_table, 2, 2).font().bold()  # phone: decided by the choice
    assert not cell(window.conflict_table, 3, 2).font().bold()  # title: merged, not decided
    header = window.conflict_table.horizontalHeaderItem(2)
    assert header is not None and header.text() == "Mailbox (kept aside)"
    # Remote text goes to plain-text labels: the markup is shown, never interpreted.
    assert window.title.textFormat() == Qt.TextFormat.PlainText
    assert window.title.text().endswith("'Ann <i>Lee</i>': the mailbox version was kept aside")

    with qtbot.waitSignal(sessions.finished, timeout=WAIT_MS):
        with qtbot.waitSignal(window.sync_requested, timeout=WAIT_MS):
            window.keep_mailbox_button.click()
    assert fake_runner.triggers == ["manual"]
    (issue,) = SyncState(ctx.db).open_issues("contact", "conflict")
    assert issue.resolution == "keep_mailbox"  # the next session applies it
    qtbot.waitUntil(lambda: "You chose the Mailbox version" in window.conflict_state.text())
    assert not window.keep_mailbox_button.isEnabled()
    assert window.keep_salesforce_button.isEnabled()  # a change of mind is still possible


def test_keeping_the_salesforce_version_records_it_and_clears_the_attention(
    qtbot: QtBot, tray_app: TrayApp, ctx: AppContext, fake_runner: Any, sessions: Any
) -> None:
    issue_id = seed_conflict(ctx)
    tray_app.store.count_issues()
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.state == "attention", timeout=WAIT_MS)
    assert tray.issues_action.text() == "Sync Issues (1)..."
    window = open_window(qtbot, tray_app, issue_id)
    with qtbot.waitSignal(sessions.finished, timeout=WAIT_MS):
        window.keep_salesforce_button.click()
    (issue,) = SyncState(ctx.db).open_issues("contact", "conflict")
    assert issue.resolution == "keep_salesforce"
    qtbot.waitUntil(lambda: tray.state == "idle", timeout=WAIT_MS)  # answered: nothing waits
    assert tray.issues_action.text() == "Sync Issues..."


# --- held mass deletions ---------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["allow", "restore"])
def test_a_held_mass_deletion_is_answered_and_a_session_starts(
    qtbot: QtBot,
    tray_app: TrayApp,
    ctx: AppContext,
    fake_runner: Any,
    sessions: Any,
    answer: str,
) -> None:
    issue_id = seed_mass_delete(ctx)
    window = open_window(qtbot, tray_app, issue_id)
    assert window.pages.currentWidget() is window.mass_delete_page
    summary = window.mass_delete_summary.text()
    assert summary.startswith("30 contacts would be deleted in Salesforce, out of 40 synced.")
    assert "<script>x</script> (in Salesforce)" in window.mass_delete_items.toPlainText()
    button = window.allow_button if answer == "allow" else window.restore_button
    with qtbot.waitSignal(sessions.finished, timeout=WAIT_MS):
        button.click()
    state = SyncState(ctx.db)
    assert state.open_issues("contact", "mass_delete") == []
    assert state.take_mass_delete_answer("contact") == answer  # what the engine reads
    assert fake_runner.triggers == ["manual"]
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.empty_page, timeout=WAIT_MS)


# --- errors ----------------------------------------------------------------------------------


def test_retry_closes_the_error_and_starts_a_session(
    qtbot: QtBot, tray_app: TrayApp, ctx: AppContext, fake_runner: Any, sessions: Any
) -> None:
    issue_id = seed_error(ctx)
    tray_app.store.count_issues()
    tray = tray_app.tray
    qtbot.waitUntil(lambda: tray.issue_count == 1, timeout=WAIT_MS)
    assert tray.state == "idle"  # an error alone is retried by every session
    window = open_window(qtbot, tray_app, issue_id)
    assert window.pages.currentWidget() is window.error_page
    assert window.message.text() == "REQUIRED_FIELD_MISSING: Subject. It will be retried."
    with qtbot.waitSignal(sessions.finished, timeout=WAIT_MS):
        window.retry_button.click()
    assert fake_runner.triggers == ["manual"]
    assert SyncState(ctx.db).open_issues("task", "error") == []
    row = (
        ctx.db.connect()
        .execute("SELECT resolution FROM sync_issues WHERE id = ?", (issue_id,))
        .fetchone()
    )
    assert row[0] == "retry"
    qtbot.waitUntil(lambda: tray.issue_count == 0, timeout=WAIT_MS)


def test_the_window_groups_issues_by_category(
    qtbot: QtBot, tray_app: TrayApp, ctx: AppContext
) -> None:
    seed_error(ctx)
    seed_conflict(ctx)
    seed_mass_delete(ctx)
    tray_app.show_issues()
    window = tray_app.issues_window
    assert window is not None
    qtbot.waitUntil(lambda: window.tree.topLevelItemCount() == 3, timeout=WAIT_MS)
    groups = [item.text(0) for n in range(3) if (item := window.tree.topLevelItem(n))]
    assert groups == ["Deletions held (1)", "Conflicts (1)", "Errors (1)"]
    current = window.selected()
    assert current is not None and current.category == "mass_delete"  # the first one


def test_an_answer_to_a_settled_issue_says_so_and_starts_nothing(
    qtbot: QtBot, tray_app: TrayApp, ctx: AppContext, fake_runner: Any
) -> None:
    issue_id = seed_error(ctx)
    window = open_window(qtbot, tray_app, issue_id)
    SyncState(ctx.db).resolve_issue(issue_id, "synced")  # a session got there first
    asked: list[bool] = []
    window.sync_requested.connect(lambda: asked.append(True))
    window.retry_button.click()
    qtbot.waitUntil(window.status.isVisible, timeout=WAIT_MS)  # the store's answer is in
    assert "settled in the meantime" in window.status.text()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.empty_page, timeout=WAIT_MS)
    assert asked == []
    assert fake_runner.triggers == []


# --- the tray --------------------------------------------------------------------------------


def test_the_tooltip_shows_the_sessions_progress(
    qtbot: QtBot, tray_app: TrayApp, fake_runner: Any
) -> None:
    fake_runner.gate = threading.Event()
    tray_app.worker.sync_now()
    try:
        qtbot.waitUntil(
            lambda: "Syncing: Reading changes" in tray_app.tray.icon.toolTip(), timeout=WAIT_MS
        )
        assert tray_app.tray.state == "syncing"
    finally:
        fake_runner.gate.set()
    qtbot.waitUntil(lambda: "Syncing" not in tray_app.tray.icon.toolTip(), timeout=WAIT_MS)


def held(issue_id: int) -> SessionOutcome:
    summary = {
        "issues": [
            {
                "id": issue_id,
                "kind": "contact",
                "category": "mass_delete",
                "title": "30 contacts would be deleted",
            }
        ]
    }
    return SessionOutcome("partial", "Synced 2 contacts", summary, needs_attention=True)


def test_notifications_only_for_what_needs_the_user_and_once(qtbot: QtBot) -> None:
    tray = Tray()
    told: list[str] = []
    tray.notified.connect(told.append)
    tray.set_outcome(SessionOutcome("ok", "Synced 3 contacts", changes=3))
    assert told == [] and tray.state == "idle"  # routine: nothing

    tray.set_outcome(held(7))
    assert len(told) == 1 and "30 contacts would be deleted" in told[0]
    assert "Nothing was deleted" in told[0]
    assert tray.state == "attention"
    tray.set_outcome(held(7))  # the same held deletion, reported again by the next session
    assert len(told) == 1

    conflict = {
        "issues": [
            {"id": 8, "category": "conflict", "title": "Conflict on contact 'Ann Lee'"},
        ]
    }
    tray.set_outcome(SessionOutcome("ok", "Synced", conflict, needs_attention=True))
    assert len(told) == 2 and "Conflict on contact 'Ann Lee'" in told[1]

    reconnect = SessionOutcome("failed", "Reconnect Salesforce", needs_attention=True)
    tray.set_outcome(reconnect)
    tray.set_outcome(reconnect)
    assert told[2:] == ["Reconnect Salesforce"]
    tray.set_outcome(SessionOutcome("ok", "Everything is up to date"))
    assert tray.state == "idle"
    tray.set_outcome(reconnect)  # back again after it was fixed: told again
    assert told[3:] == ["Reconnect Salesforce"]

    with qtbot.waitSignal(tray.settings_requested, timeout=1_000):
        tray.icon.messageClicked.emit()  # the last one was about the account
    tray.set_outcome(held(9))
    with qtbot.waitSignal(tray.issues_requested, timeout=1_000):
        tray.icon.messageClicked.emit()


def test_attention_follows_open_conflicts_and_held_deletions() -> None:
    tray = Tray()
    tray.set_issue_counts(2, 0)
    assert tray.state == "idle" and tray.issues_action.text() == "Sync Issues (2)..."
    tray.set_issue_counts(3, 1)
    assert tray.state == "attention" and tray.issues_action.text() == "Sync Issues (3)..."
    assert "3 sync issues" in tray.icon.toolTip()
    tray.set_issue_counts(0, 0)
    assert tray.state == "idle" and tray.issues_action.text() == "Sync Issues..."


def test_a_version_that_lost_to_a_deletion_shows_the_deleted_side() -> None:
    issue = IssueRecord(
        1,
        None,
        "task",
        "conflict",
        "Conflict on task 'Call Ann': the mailbox version was kept aside",
        "Both sides changed it (deleted on one side, edited on the other).",
        "task:x",
        {
            "winner": "salesforce",
            "fields": [],
            "mailbox": {"subject": "Call Ann"},
            "salesforce": None,
        },
        "2026-11-23T00:00:00.000000Z",
        None,
        "",
    )
    assert conflict_rows(issue) == [(True, False, "Subject", "Call Ann", "(deleted)")]
