"""The Save Email, New Records and Unresolved Emails windows and their tray items, with a fake
actions object; the actions thread against the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.email_actions import (
    Correspondent,
    MessageSummary,
    RecordChoice,
    SaveOutcome,
    UnresolvedEmail,
)
from scc_desktop.engine_runner import Connections
from scc_desktop.mailbox.types import MessageFolder
from scc_desktop.ui.actions_thread import (
    CREATE_LEAD,
    LINK,
    NOT_CONNECTED,
    SAVE,
    ActionsClient,
    EmailActions,
)
from scc_desktop.ui.app import TrayApp
from scc_desktop.ui.new_records_window import NewRecordsWindow
from scc_desktop.ui.save_email_window import THREAD_BOX, SaveEmailWindow
from scc_desktop.ui.tray import Tray
from scc_desktop.ui.unresolved_window import UnresolvedWindow

MARKUP = "<b>Quarterly</b> <a href='https://evil.example'>review</a>"


class FakeActions(EmailActions):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, ...]] = []

    def load_messages(self) -> None:
        self.calls.append(("load_messages",))

    def search(self, text: str) -> None:
        self.calls.append(("search", text))

    def save(
        self, message_id: str, related_to_id: str, related_to_name: str, autosave_thread: bool
    ) -> None:
        self.calls.append(("save", message_id, related_to_id, related_to_name, autosave_thread))

    def load_correspondents(self) -> None:
        self.calls.append(("load_correspondents",))

    def create_contact(self, address: str, name: str, account_name: str) -> None:
        self.calls.append(("create_contact", address, name, account_name))

    def create_lead(self, address: str, name: str, company: str) -> None:
        self.calls.append(("create_lead", address, name, company))

    def do_not_sync(self, address: str) -> None:
        self.calls.append(("do_not_sync", address))

    def load_unresolved(self) -> None:
        self.calls.append(("load_unresolved",))

    def count_unresolved(self) -> None:
        self.calls.append(("count_unresolved",))

    def link(self, key: str, record: RecordChoice) -> None:
        self.calls.append(("link", key, record))


def _messages() -> list[MessageSummary]:
    when = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    return [
        MessageSummary(
            "m1", MessageFolder.INBOX, "<i>Jane</i> <jane@acme.example>", "", MARKUP, when
        ),
        MessageSummary("m2", MessageFolder.SENT, "alex@northwind.example", "", "Sent one", when),
    ]


def test_save_email_window_renders_plain_text_and_saves(qtbot: QtBot) -> None:
    actions = FakeActions()
    window = SaveEmailWindow(actions)
    qtbot.addWidget(window)
    window.bring_forward()
    assert actions.calls == [("load_messages",)]
    assert not window.save_button.isEnabled()

    actions.messages_loaded.emit(_messages(), True)
    assert window.table.rowCount() == 2
    assert window.table.item(0, 1).text() == MARKUP  # shown as typed, never as markup
    assert window.table.item(0, 0).text() == "<i>Jane</i> <jane@acme.example>"
    assert window.status.textFormat() == Qt.TextFormat.PlainText
    assert window.error.textFormat() == Qt.TextFormat.PlainText
    assert window.thread_box.text() == THREAD_BOX
    assert window.thread_box.isEnabled() and window.thread_box.isChecked()

    window.search_box.setText("O'Brien")
    window.search_button.click()
    assert actions.calls[-1] == ("search", "O'Brien")
    record = RecordChoice("001000000000001AAA", "Account", "O'Brien <Freight>")
    actions.records_found.emit("O'Brien", [record])
    assert window.results.item(1).text() == "O'Brien <Freight> (Account)"
    assert window.selected_record() == record

    window.table.selectRow(0)
    window.save_button.click()
    assert actions.calls[-1] == ("save", "m1", record.id, record.name, True)
    assert not window.save_button.isEnabled()  # one save at a time
    actions.saved.emit(SaveOutcome("saved", "Saved as a completed Task linked to <Jane>."))
    assert window.status.text() == "Saved as a completed Task linked to <Jane>."
    assert window.save_button.isEnabled()

    # No record, thread box unticked.
    window.results.setCurrentRow(0)
    window.thread_box.setChecked(False)
    window.table.selectRow(1)
    window.save_button.click()
    assert actions.calls[-1] == ("save", "m2", "", "", False)
    actions.failed.emit(SAVE, "Salesforce refused it")
    assert window.error.isVisibleTo(window) and window.error.text() == "Salesforce refused it"
    assert window.save_button.isEnabled()


def test_thread_box_is_disabled_while_the_switch_is_off(qtbot: QtBot) -> None:
    actions = FakeActions()
    window = SaveEmailWindow(actions)
    qtbot.addWidget(window)
    actions.messages_loaded.emit(_messages(), False)
    assert not window.thread_box.isEnabled() and not window.thread_box.isChecked()
    assert window.thread_help.isVisibleTo(window)
    window.save_button.click()
    assert actions.calls[-1] == ("save", "m1", "", "", False)


def test_an_old_search_answer_is_ignored(qtbot: QtBot) -> None:
    actions = FakeActions()
    window = SaveEmailWindow(actions)
    qtbot.addWidget(window)
    window.search_box.setText("acme")
    actions.records_found.emit("ac", [RecordChoice("001x", "Account", "Acme")])
    assert window.results.count() == 1  # only "No record"


def test_new_records_window_creates_and_skips(qtbot: QtBot) -> None:
    actions = FakeActions()
    window = NewRecordsWindow(actions)
    qtbot.addWidget(window)
    answers: list[str | None] = ["O'Brien Freight", "", "VendorCo", None]
    window.ask_text = lambda *_a, **_k: answers.pop(0)  # type: ignore[method-assign]
    window.bring_forward()
    assert actions.calls == [("load_correspondents",)]
    people = [
        Correspondent("chris@gmail.example", "<b>Chris</b>", 4),
        Correspondent("nina@vendorco.example", "Nina Patel", 2),
        Correspondent("sam@else.example", "", 1),
    ]
    actions.correspondents_loaded.emit(people)
    assert window.table.rowCount() == 3
    assert window.table.item(0, 0).text() == "<b>Chris</b>"
    assert window.table.item(0, 2).text() == "4"

    window.table.selectRow(0)
    window.contact_button.click()
    assert actions.calls[-1] == (
        "create_contact",
        "chris@gmail.example",
        "<b>Chris</b>",
        "O'Brien Freight",
    )
    assert not window.contact_button.isEnabled()  # pending
    actions.handled.emit("chris@gmail.example", "Contact created for chris@gmail.example.")
    assert [window.table.item(r, 1).text() for r in range(window.table.rowCount())] == [
        "nina@vendorco.example",
        "sam@else.example",
    ]
    assert window.status.text() == "Contact created for chris@gmail.example."

    window.table.selectRow(0)
    window.lead_button.click()  # empty company: refused before asking the thread
    assert actions.calls[-1][0] == "create_contact"
    assert window.error.text() == "A Lead needs a company."
    window.lead_button.click()
    assert actions.calls[-1] == ("create_lead", "nina@vendorco.example", "Nina Patel", "VendorCo")
    actions.failed.emit(CREATE_LEAD, "Salesforce refused it")
    assert window.table.rowCount() == 2 and window.lead_button.isEnabled()
    window.contact_button.click()  # cancelled
    assert actions.calls[-1][0] == "create_lead"

    window.table.selectRow(1)
    window.skip_button.click()
    assert actions.calls[-1] == ("do_not_sync", "sam@else.example")
    actions.handled.emit("sam@else.example", "added")
    assert window.table.rowCount() == 1


def test_menu_items_in_design_order_and_open_the_windows(
    qtbot: QtBot, ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    tray = Tray()
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()][1:]
    assert texts == [
        "Sync Now",
        "Pause Syncing",
        "Settings...",
        "Save Email...",
        "Unresolved Emails...",
        "New Records...",
        "Sync Issues...",
        "History...",
        "Quit",
    ]
    actions = FakeActions()
    app = TrayApp(ctx, runner_factory, run_at_start=False, actions=actions)
    app.start()
    try:
        app.tray.save_email_action.trigger()
        assert app.save_email_window is not None and app.save_email_window.isVisible()
        app.tray.new_records_action.trigger()
        assert app.new_records_window is not None and app.new_records_window.isVisible()
        app.tray.unresolved_action.trigger()
        assert app.unresolved_window is not None and app.unresolved_window.isVisible()
        assert actions.calls == [
            ("load_messages",),
            ("load_correspondents",),
            ("load_unresolved",),
        ]
        app.tray.menu_opening.emit()  # the menu asks for the count
        assert actions.calls[-1] == ("count_unresolved",)
        actions.unresolved_count.emit(2)
        assert app.tray.unresolved_action.text() == "Unresolved Emails (2)..."
        actions.unresolved_count.emit(0)
        assert app.tray.unresolved_action.text() == "Unresolved Emails..."
    finally:
        assert app.shutdown()


def test_without_a_provider_the_items_are_disabled(
    ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    app = TrayApp(ctx, runner_factory, run_at_start=False)
    try:
        assert not app.tray.save_email_action.isEnabled()
        assert not app.tray.new_records_action.isEnabled()
        assert not app.tray.unresolved_action.isEnabled()
        app.show_unresolved()
        assert app.unresolved_window is None
        app.show_save_email()
        assert app.save_email_window is None
    finally:
        assert app.shutdown()


class _NoAccounts:
    def __init__(self) -> None:
        self.threads: list[str] = []

    def connect(self, ctx: AppContext) -> Connections | None:
        import threading

        self.threads.append(threading.current_thread().name)
        return None


def test_actions_thread_answers_off_the_gui_thread(qtbot: QtBot, ctx: AppContext) -> None:
    import threading

    provider = _NoAccounts()
    client = ActionsClient(ctx, provider)
    try:
        with qtbot.waitSignal(client.failed, timeout=5_000) as blocker:
            client.load_messages()
        assert blocker.args == ["load_messages", NOT_CONNECTED]
        assert provider.threads and provider.threads[0] != threading.current_thread().name
        with qtbot.waitSignal(client.setting_saved, timeout=5_000) as saved:
            client.do_not_sync("Nina@VendorCo.example")
        assert saved.args == ["blacklist", "nina@vendorco.example"]
        assert ctx.settings().get("blacklist") == "nina@vendorco.example"
    finally:
        assert client.shutdown()


def test_actions_thread_against_the_sandbox_while_paused(
    qtbot: QtBot, ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    """run_app's wiring for --sandbox: the factory's provider starts the sandbox lazily on the
    actions thread; the window lists messages and saves one while syncing is paused."""
    from scc_desktop.engine_runner import SandboxRunnerFactory

    factory = SandboxRunnerFactory(ctx)
    app = TrayApp(ctx, runner_factory, run_at_start=False, provider=factory.provider())
    app.start()
    try:
        app.tray.pause_action.trigger()
        assert app.tray.paused
        actions = app._actions()
        assert isinstance(actions, ActionsClient)
        with qtbot.waitSignal(actions.messages_loaded, timeout=30_000):
            app.tray.save_email_action.trigger()
        window = app.save_email_window
        assert window is not None and window.table.rowCount() > 0
        row = next(i for i, m in enumerate(window.messages) if m.subject == "Globex purchase order")
        window.table.selectRow(row)
        with qtbot.waitSignal(actions.saved, timeout=30_000) as blocker:
            window.save_button.click()
        outcome = blocker.args[0]
        assert isinstance(outcome, SaveOutcome) and outcome.status == "saved", outcome
        assert window.status.text() == outcome.message
        with qtbot.waitSignal(actions.saved, timeout=30_000) as again:
            window.save_button.click()
        assert again.args[0].status == "already_saved"
    finally:
        assert app.shutdown()
        factory.close()


# --- Unresolved Emails ---------------------------------------------------------------------------


def _unresolved() -> list[UnresolvedEmail]:
    when = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    return [
        UnresolvedEmail(
            "mid:a@x", MARKUP, "<i>nobody</i>@unknown.example", when, "no match", "02s1"
        ),
        UnresolvedEmail("mid:b@x", "", "sam@else.example", None, "no match either", "00T2"),
    ]


def test_unresolved_window_lists_plain_text_searches_and_links(qtbot: QtBot) -> None:
    actions = FakeActions()
    window = UnresolvedWindow(actions)
    qtbot.addWidget(window)
    window.bring_forward()
    assert actions.calls == [("load_unresolved",)]
    actions.unresolved_loaded.emit(_unresolved())
    assert window.table.rowCount() == 2
    assert window.table.item(0, 0).text() == MARKUP  # shown as typed, never as markup
    assert window.table.item(0, 1).text() == "<i>nobody</i>@unknown.example"
    assert window.table.item(1, 0).text() == "(no subject)"
    for label in (window.detail, window.status, window.error):
        assert label.textFormat() == Qt.TextFormat.PlainText
    assert window.detail.text() == "no match"
    assert not window.link_button.isEnabled()  # no record picked yet

    window.search_box.setText("Initech")
    window.search_button.click()
    assert actions.calls[-1] == ("search", "Initech")
    actions.records_found.emit("Other", [RecordChoice("001x", "Account", "Other")])
    assert window.results.count() == 0  # not this window's search
    initech = RecordChoice("001000000000002AAA", "Account", "<b>Initech</b>")
    contact = RecordChoice("003000000000001AAA", "Contact", "Wei Chen", "wei@initech.example")
    actions.records_found.emit("Initech", [initech, contact])
    assert [window.results.item(i).text() for i in range(2)] == [
        "<b>Initech</b> (Account)",
        "Wei Chen (Contact, wei@initech.example)",
    ]
    assert window.link_button.isEnabled()

    window.results.setCurrentRow(1)
    window.link_button.click()
    assert actions.calls[-1] == ("link", "mid:a@x", contact)
    assert not window.link_button.isEnabled()  # one link at a time
    actions.failed.emit(LINK, "Salesforce refused it: INVALID_CROSS_REFERENCE_KEY")
    assert window.error.isVisibleTo(window)
    assert window.error.text() == "Salesforce refused it: INVALID_CROSS_REFERENCE_KEY"
    assert window.table.rowCount() == 2 and window.link_button.isEnabled()

    window.link_button.click()
    actions.linked.emit("mid:a@x", "Linked to Wei Chen (Contact, wei@initech.example).")
    assert window.table.rowCount() == 1
    assert window.emails[0].key == "mid:b@x"
    assert window.status.text() == "Linked to Wei Chen (Contact, wei@initech.example)."
    assert not window.error.isVisibleTo(window)

    actions.failed.emit(SAVE, "a Save Email failure")  # another window's
    assert not window.error.isVisibleTo(window)


def test_an_unresolved_save_offers_the_unresolved_window(
    qtbot: QtBot, ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    actions = FakeActions()
    app = TrayApp(ctx, runner_factory, run_at_start=False, actions=actions)
    app.start()
    try:
        app.show_save_email()
        window = app.save_email_window
        assert window is not None
        actions.messages_loaded.emit(_messages(), True)
        assert not window.unresolved_button.isVisibleTo(window)
        window.save_button.click()
        actions.saved.emit(SaveOutcome("unresolved", "Saved without a link.", "mid:a@x", "02s1"))
        assert window.unresolved_button.isVisibleTo(window)
        window.unresolved_button.click()
        assert app.unresolved_window is not None and app.unresolved_window.isVisible()
        assert actions.calls[-1] == ("load_unresolved",)
        window.save_button.click()
        assert not window.unresolved_button.isVisibleTo(window)  # until the next answer
    finally:
        assert app.shutdown()


def test_unresolved_window_links_against_the_sandbox(
    qtbot: QtBot, ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    """The whole path over the sandbox: a Save Email of a stranger's message ends unresolved;
    the result line opens Unresolved Emails, which finds Initech and links it (the Task that
    Enhanced Email made gets the What); the email leaves the list and the tray count drops."""
    from scc_desktop.engine_runner import SandboxRunnerFactory
    from scc_desktop.net import https_session

    factory = SandboxRunnerFactory(ctx)
    app = TrayApp(ctx, runner_factory, run_at_start=False, provider=factory.provider())
    app.start()
    demo = factory.demo()
    admin = https_session(str(demo.ca_file))
    try:
        reply = admin.post(
            f"{demo.server.admin_url}/microsoft/deliver",
            json={
                "folder": "inbox",
                "direction": "received",
                "from": "Nobody <nobody@unknown.example>",
                "subject": "<b>who</b> is this",
            },
            timeout=30,
        )
        assert reply.status_code < 300, reply.text
        actions = app._actions()
        assert isinstance(actions, ActionsClient)
        with qtbot.waitSignal(actions.messages_loaded, timeout=30_000):
            app.show_save_email()
        save_window = app.save_email_window
        assert save_window is not None
        row = next(
            i for i, m in enumerate(save_window.messages) if m.subject == "<b>who</b> is this"
        )
        save_window.table.selectRow(row)
        with qtbot.waitSignal(actions.unresolved_count, timeout=30_000) as counted:
            save_window.save_button.click()
        assert counted.args == [1]
        assert app.tray.unresolved_action.text() == "Unresolved Emails (1)..."
        assert save_window.unresolved_button.isVisibleTo(save_window)

        with qtbot.waitSignal(actions.unresolved_loaded, timeout=30_000):
            save_window.unresolved_button.click()
        window = app.unresolved_window
        assert window is not None and window.table.rowCount() == 1
        assert window.table.item(0, 0).text() == "<b>who</b> is this"
        assert window.table.item(0, 1).text() == "nobody@unknown.example"
        window.search_box.setText("Initech")
        with qtbot.waitSignal(actions.records_found, timeout=30_000):
            window.search_button.click()
        row = next(
            i
            for i in range(window.results.count())
            if window.results.item(i).text() == "Initech (Account)"
        )
        window.results.setCurrentRow(row)
        account = window.selected_record()
        assert account is not None
        with qtbot.waitSignal(actions.linked, timeout=30_000):
            window.link_button.click()
        assert window.table.rowCount() == 0
        assert window.status.text() == "Linked to Initech (Account)."
        qtbot.waitUntil(lambda: app.tray.unresolved_action.text() == "Unresolved Emails...")

        def records(sobject: str) -> list[dict[str, Any]]:
            got = admin.get(
                f"{demo.server.admin_url}/salesforce/records", params={"type": sobject}, timeout=30
            )
            return [r for r in got.json()["records"] if not r.get("IsDeleted")]

        [email] = [r for r in records("EmailMessage") if r["Subject"] == "<b>who</b> is this"]
        [task] = [t for t in records("Task") if t["Id"] == email["ActivityId"]]
        assert task["WhatId"] == account.id
    finally:
        admin.close()
        assert app.shutdown()
        factory.close()
