"""Settings > Accounts: enabled outside sandbox mode, driven by an accounts flow's signals, the
device code shown as plain text with a Cancel that cancels the flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.store.accounts import Accounts
from scc_desktop.ui.accounts_flow import AccountsFlow, LoginHostDialog
from scc_desktop.ui.settings_window import SettingsWindow
from scc_desktop.ui.store_thread import StoreClient


class FakeFlow(AccountsFlow):
    """Records requests instead of signing in; the test emits the answers."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx)
        self.calls: list[tuple[str, str]] = []
        self.cancelled = 0

    @property
    def busy(self) -> bool:
        return False

    def connect_salesforce(self, login_url: str) -> bool:
        self.calls.append(("salesforce", login_url))
        return True

    def connect_microsoft(self) -> bool:
        self.calls.append(("microsoft", ""))
        return True

    def disconnect_account(self, kind: str) -> bool:
        self.calls.append(("disconnect", kind))
        return True

    def cancel(self) -> None:
        self.cancelled += 1


@pytest.fixture
def store(ctx: AppContext) -> Iterator[StoreClient]:
    client = StoreClient(ctx)
    yield client
    assert client.shutdown()


@pytest.fixture
def flow(ctx: AppContext) -> FakeFlow:
    return FakeFlow(ctx)


def make_window(
    qtbot: QtBot, store: StoreClient, flow: AccountsFlow, sandbox: bool = False
) -> SettingsWindow:
    window = SettingsWindow(store, sandbox=sandbox, accounts=flow)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.loaded, timeout=3_000)
    return window


def test_connect_buttons_are_enabled_outside_sandbox_mode(
    qtbot: QtBot, store: StoreClient, flow: FakeFlow
) -> None:
    window = make_window(qtbot, store, flow)
    for kind in ("salesforce", "mailbox"):
        line = window.account_rows[kind]
        assert line.button.isEnabled()
        assert line.status.text() == "Not connected"
        assert not line.disconnect.isVisibleTo(window)
    assert window.account_rows["salesforce"].button.text() == "Connect Salesforce"
    assert window.account_rows["mailbox"].button.text() == "Connect Microsoft 365"


def test_sandbox_mode_keeps_the_demo_accounts(
    qtbot: QtBot, store: StoreClient, flow: FakeFlow
) -> None:
    window = make_window(qtbot, store, flow, sandbox=True)
    for line in window.account_rows.values():
        assert not line.button.isEnabled()
        assert line.status.text() == "Demo account (sandbox)"


def test_connect_salesforce_asks_the_host_and_shows_the_username(
    qtbot: QtBot, ctx: AppContext, store: StoreClient, flow: FakeFlow
) -> None:
    window = make_window(qtbot, store, flow)
    window.ask_login_url = lambda parent: "https://test.salesforce.com"
    line = window.account_rows["salesforce"]
    qtbot.mouseClick(line.button, Qt.MouseButton.LeftButton)
    assert flow.calls == [("salesforce", "https://test.salesforce.com")]
    assert "browser" in line.status.text()
    # The real flow saves the row before it answers; the window then reloads the rows.
    Accounts(ctx.db).save("salesforce", "pat@example.com", detail={"login_url": "test"})
    with qtbot.waitSignal(store.accounts_loaded, timeout=3_000):
        flow.succeeded.emit("salesforce", "pat@example.com")
    qtbot.waitUntil(lambda: "pat@example.com" in line.status.text(), timeout=3_000)
    assert "Connected" in line.status.text()
    assert line.disconnect.isVisibleTo(window)
    assert not line.button.isVisibleTo(window)


def test_reconnect_needed_offers_reconnect_then_disconnect_asks_first(
    qtbot: QtBot, ctx: AppContext, store: StoreClient, flow: FakeFlow
) -> None:
    Accounts(ctx.db).save(
        "salesforce",
        "pat@example.com",
        state="reconnect",
        detail={"login_url": "https://acme.my.salesforce.com"},
    )
    window = make_window(qtbot, store, flow)
    line = window.account_rows["salesforce"]
    qtbot.waitUntil(lambda: "Reconnect needed" in line.status.text(), timeout=3_000)
    assert line.button.text() == "Reconnect Salesforce"
    assert line.button.isVisibleTo(window) and line.button.isEnabled()
    window.ask_login_url = lambda parent: pytest.fail("a reconnect signs in where it was")
    qtbot.mouseClick(line.button, Qt.MouseButton.LeftButton)
    assert flow.calls[-1] == ("salesforce", "https://acme.my.salesforce.com")

    asked: list[tuple[str, str]] = []

    def refuse(parent: QWidget, service: str, who: str) -> bool:
        asked.append((service, who))
        return False

    window.confirm_disconnect = refuse
    qtbot.mouseClick(line.disconnect, Qt.MouseButton.LeftButton)
    assert asked == [("Salesforce", "pat@example.com")]
    assert ("disconnect", "salesforce") not in flow.calls
    window.confirm_disconnect = lambda parent, service, who: True
    qtbot.mouseClick(line.disconnect, Qt.MouseButton.LeftButton)
    assert flow.calls[-1] == ("disconnect", "salesforce")
    Accounts(ctx.db).remove("salesforce")
    flow.disconnected.emit("salesforce")
    assert line.status.text() == "Not connected"
    assert line.button.text() == "Connect Salesforce"


def test_device_code_dialog_shows_the_code_as_plain_text_and_cancels(
    qtbot: QtBot, store: StoreClient, flow: FakeFlow
) -> None:
    window = make_window(qtbot, store, flow)
    line = window.account_rows["mailbox"]
    qtbot.mouseClick(line.button, Qt.MouseButton.LeftButton)
    assert flow.calls == [("microsoft", "")]
    flow.device_code.emit(
        "To sign in, use a web browser to open the page https://microsoft.com/devicelogin",
        "<b>ABCD-1234</b>",
        "https://microsoft.com/devicelogin",
    )
    dialog = window.device_dialog
    assert dialog is not None
    assert dialog.code_label.text() == "<b>ABCD-1234</b>"
    assert dialog.code_label.textFormat() == Qt.TextFormat.PlainText
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert flow.cancelled == 1
    flow.failed.emit("microsoft", "Microsoft 365 sign-in was cancelled.")
    assert window.device_dialog is None
    assert line.message.text() == "Microsoft 365 sign-in was cancelled."
    assert line.message.isVisibleTo(window)


def test_a_keyring_error_is_shown_with_its_message(
    qtbot: QtBot, store: StoreClient, flow: FakeFlow
) -> None:
    from scc_desktop.auth.credentials import KeyringLocked
    from scc_desktop.ui.accounts_flow import user_message

    window = make_window(qtbot, store, flow)
    text = user_message("salesforce", KeyringLocked("locked"))
    assert text == KeyringLocked.user_message
    flow.failed.emit("salesforce", text)
    line = window.account_rows["salesforce"]
    assert line.message.text() == KeyringLocked.user_message
    assert line.button.isEnabled()


def test_login_host_dialog_choices(qtbot: QtBot) -> None:
    dialog = LoginHostDialog()
    qtbot.addWidget(dialog)
    assert dialog.selected_url() == "https://login.salesforce.com"
    dialog.choice.setCurrentIndex(1)
    assert dialog.selected_url() == "https://test.salesforce.com"
    dialog.choice.setCurrentIndex(2)
    assert dialog.domain.isEnabled()
    with pytest.raises(ValueError):
        dialog.selected_url()
    dialog.domain.setText("acme.my.salesforce.com/")
    assert dialog.selected_url() == "https://acme.my.salesforce.com"
    dialog.domain.setText("http://acme.my.salesforce.com")
    with pytest.raises(ValueError):
        dialog.selected_url()


def test_the_real_flow_runs_off_the_gui_thread_and_reports_back(
    qtbot: QtBot, ctx: AppContext
) -> None:
    import threading

    threads: list[threading.Thread] = []

    def no_browser(url: str) -> bool:
        threads.append(threading.current_thread())
        return False

    flow = AccountsFlow(ctx, salesforce_options={"open_browser": no_browser, "timeout": 5})
    with qtbot.waitSignal(flow.failed, timeout=10_000) as failed:
        assert flow.connect_salesforce("login")
        assert flow.busy
        assert not flow.connect_microsoft()  # one job at a time
    assert failed.args[0] == "salesforce"
    assert failed.args[1] == "Sign-in did not complete. Please try again."
    assert threads and threads[0] is not threading.main_thread()
    assert not flow.busy
    ctx.credentials.set("salesforce.refresh_token", "secret")
    Accounts(ctx.db).save(
        "salesforce", "pat@example.com", detail={"login_url": "https://127.0.0.1:9"}
    )
    with qtbot.waitSignal(flow.disconnected, timeout=10_000) as done:
        assert flow.disconnect_account("salesforce")
    assert done.args == ["salesforce"]
    assert ctx.credentials.get("salesforce.refresh_token") is None
    assert ctx.db.connect().execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0


def test_a_salesforce_sign_in_waiting_on_the_browser_can_be_cancelled(
    qtbot: QtBot, ctx: AppContext, store: StoreClient
) -> None:
    opened: list[str] = []
    flow = AccountsFlow(ctx, salesforce_options={"open_browser": opened.append, "timeout": 30})
    window = make_window(qtbot, store, flow)
    window.ask_login_url = lambda parent: "https://login.salesforce.com"
    line = window.account_rows["salesforce"]
    qtbot.mouseClick(line.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(opened), timeout=5_000)
    assert "browser" in line.status.text()
    assert line.button.text() == "Cancel sign-in" and line.button.isEnabled()
    assert not window.account_rows["mailbox"].button.isEnabled()
    with qtbot.waitSignal(flow.failed, timeout=10_000):
        qtbot.mouseClick(line.button, Qt.MouseButton.LeftButton)
    assert line.message.text() == "Sign-in was cancelled."
    assert line.button.text() == "Connect Salesforce" and line.button.isEnabled()
    assert line.status.text() == "Not connected"
