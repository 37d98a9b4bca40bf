"""The Save Email and New Records windows and their tray items, with a fake actions object."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.email_actions import Correspondent, MessageSummary, RecordChoice, SaveOutcome
from scc_desktop.engine_runner import Connections
from scc_desktop.mailbox.types import MessageFolder
from scc_desktop.ui.actions_thread import (
    CREATE_LEAD,
    NOT_CONNECTED,
    SAVE,
    ActionsClient,
    EmailActions,
)
from scc_desktop.ui.app import TrayApp
from scc_desktop.ui.new_records_window import NewRecordsWindow
from scc_desktop.ui.save_email_window import THREAD_BOX, SaveEmailWindow
from scc_desktop.ui.tray import Tray

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
        assert actions.calls == [("load_messages",), ("load_correspondents",)]
    finally:
        assert app.shutdown()


def test_without_a_provider_the_items_are_disabled(
    ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    app = TrayApp(ctx, runner_factory, run_at_start=False)
    try:
        assert not app.tray.save_email_action.isEnabled()
        assert not app.tray.new_records_action.isEnabled()
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
