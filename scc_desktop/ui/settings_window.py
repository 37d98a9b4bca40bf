"""The settings window, built from the declarations in `scc_desktop.settings`.

Nothing here names a setting except the blacklist box's layout: a new declaration appears in its
group's card by itself. Values go to the store thread and come back as saved or refused; the
window never touches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.settings import (
    SETTINGS,
    Group,
    Kind,
    Policy,
    Setting,
    SettingsError,
    Value,
    parse_value,
)
from scc_desktop.ui.accounts_flow import AccountsFlow, DeviceCodeDialog, ask_login_url
from scc_desktop.ui.store_thread import AccountState, StoreClient
from scc_desktop.ui.widgets import (
    Card,
    FocusOutPlainTextEdit,
    ToggleSwitch,
    error_label,
    help_label,
    lock_label,
    plain_label,
)

BLACKLIST_DEBOUNCE_MS = 600

ACCOUNT_KINDS = (
    ("salesforce", "Salesforce", "Connect Salesforce"),
    ("mailbox", "Mailbox", "Connect Microsoft 365"),
)
MAILBOX_KINDS = {"microsoft": "Microsoft 365", "google": "Google Workspace"}
# The row of the Accounts card -> the account kind its Connect button signs in to.
CONNECT_KIND = {"salesforce": "salesforce", "mailbox": "microsoft"}
NOT_WIRED_TIP = (
    "Signing in is not available in this window. `scc-desktop --sandbox` runs against "
    "built-in demo accounts."
)
STATE_TEXT = {"connected": "Connected", "reconnect": "Reconnect needed"}


@dataclass
class AccountRow:
    """One line of the Accounts card."""

    status: QLabel
    button: QPushButton  # Connect ... / Reconnect ...
    disconnect: QPushButton
    message: QLabel
    connect_text: str
    account: AccountState | None = None


def confirm_disconnect(parent: QWidget, service: str, who: str) -> bool:
    answer = QMessageBox.question(
        parent,
        f"Disconnect {service}",
        f"Disconnect {who} from scc-desktop? Sync stops until you connect again; "
        "nothing is deleted in either account.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel,
    )
    return answer == QMessageBox.StandardButton.Yes


def split_label(label: str) -> tuple[str, str]:
    """'Contacts: direction' -> ('Contacts', 'Direction'): rows sharing a prefix get a heading."""
    head, sep, rest = label.partition(": ")
    if not sep:
        return "", label
    return head, rest[:1].upper() + rest[1:]


@dataclass
class Editor:
    """One setting's widgets and how to read and write its value."""

    decl: Setting
    widget: QWidget
    set_value: Callable[[Value], None]
    message: QLabel
    label: QLabel
    help: QLabel
    lock: QLabel
    saved: Value = field(default=False)
    locked: bool = False

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))


class SettingsWindow(QMainWindow):
    """Mirrors the dashboard: accounts, the Email Sync Options card, then the other groups."""

    change_requested = Signal(str, object)

    def __init__(
        self,
        store: StoreClient,
        policy: Policy | None = None,
        *,
        sandbox: bool = False,
        accounts: AccountsFlow | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._accounts = None if sandbox else accounts
        # Replaceable in tests: the login-host question and the disconnect confirmation.
        self.ask_login_url: Callable[[QWidget], str | None] = ask_login_url
        self.confirm_disconnect: Callable[[QWidget, str, str], bool] = confirm_disconnect
        self.device_dialog: DeviceCodeDialog | None = None
        self._signing_in = ""  # the row whose sign-in is under way
        self._policy = policy or Policy()
        self._sandbox = sandbox
        self._loading = False
        self.loaded = False  # True once the stored values are shown
        self.editors: dict[str, Editor] = {}
        self.setWindowTitle("scc-desktop Settings")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(680, 760)

        content = QWidget()
        content.setObjectName("settingsContent")
        column = QVBoxLayout(content)
        column.setContentsMargins(24, 18, 24, 24)
        column.setSpacing(8)
        self.account_rows: dict[str, AccountRow] = {}
        column.addLayout(self._header())
        self._add_section(column, "Accounts", self._accounts_card())
        for group in Group:
            decls = [d for d in SETTINGS if d.group is group]
            if decls:
                self._add_section(column, group.value, self._group_card(decls))
        column.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)
        self.setCentralWidget(scroll)

        self._blacklist_timer = QTimer(self)
        self._blacklist_timer.setSingleShot(True)
        self._blacklist_timer.setInterval(BLACKLIST_DEBOUNCE_MS)
        self._blacklist_timer.timeout.connect(self.check_blacklist)

        store.settings_loaded.connect(self._on_loaded)
        store.setting_saved.connect(self._on_saved)
        store.setting_refused.connect(self._on_refused)
        store.accounts_loaded.connect(self._on_accounts)
        store.load_settings()
        store.load_accounts()

    # --- building -------------------------------------------------------------------------------

    def _header(self) -> QHBoxLayout:
        """No Save button anywhere, so the header says when changes take effect."""
        icon = QLabel()
        icon.setPixmap(QIcon(str(asset_path("icons/scc-desktop.svg"))).pixmap(40, 40))
        title = QLabel("scc-desktop")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        title.setFont(font)
        subtitle = help_label(
            "Changes are saved as you make them and apply from the next sync session."
        )
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(title)
        text.addWidget(subtitle)
        row = QHBoxLayout()
        row.setSpacing(12)
        row.addWidget(icon)
        row.addLayout(text, 1)
        return row

    def _add_section(self, column: QVBoxLayout, title: str, card: QWidget) -> None:
        heading = QLabel(title)
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        heading.setFont(font)
        heading.setContentsMargins(2, 12, 0, 2)
        column.addWidget(heading)
        column.addWidget(card)

    def _accounts_card(self) -> Card:
        card = Card()
        grid = QGridLayout(card)
        grid.setContentsMargins(16, 12, 16, 12)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(10)
        wired = self._accounts is not None
        row = 0
        for kind, title, button_text in ACCOUNT_KINDS:
            name = QLabel(title)
            bold = name.font()
            bold.setBold(True)
            name.setFont(bold)
            status = plain_label("Demo account (sandbox)" if self._sandbox else "Not connected")
            status.setObjectName(f"account-{kind}")
            button = QPushButton(button_text)
            button.setObjectName(f"connect-{kind}")
            button.setEnabled(wired)
            if self._sandbox:
                button.setToolTip("The sandbox's demo account is used; no sign-in needed.")
            elif not wired:
                button.setToolTip(NOT_WIRED_TIP)
            else:
                button.setToolTip(f"Sign in to {button_text.removeprefix('Connect ')}")
            disconnect = QPushButton("Disconnect")
            disconnect.setObjectName(f"disconnect-{kind}")
            disconnect.setVisible(False)
            message = error_label()
            grid.addWidget(name, row, 0)
            grid.addWidget(status, row, 1)
            buttons = QHBoxLayout()
            buttons.addWidget(disconnect)
            buttons.addWidget(button)
            grid.addLayout(buttons, row, 2, alignment=Qt.AlignmentFlag.AlignRight)
            grid.addWidget(message, row + 1, 1, 1, 2)
            line = AccountRow(status, button, disconnect, message, button_text)
            self.account_rows[kind] = line
            button.clicked.connect(lambda _=False, k=kind: self._connect_clicked(k))
            disconnect.clicked.connect(lambda _=False, k=kind: self._disconnect_clicked(k))
            row += 2
        if self._sandbox:
            text = "Sandbox mode: both accounts are the built-in demo accounts."
        elif wired:
            text = (
                "Sign-in happens in your browser; scc-desktop keeps only a refresh token, in "
                "your system keyring."
            )
        else:
            text = NOT_WIRED_TIP
        grid.addWidget(help_label(text), row, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        if self._accounts is not None:
            self._accounts.succeeded.connect(self._on_connected)
            self._accounts.failed.connect(self._on_account_failed)
            self._accounts.disconnected.connect(self._on_disconnected)
            self._accounts.device_code.connect(self._on_device_code)
            self._accounts.busy_changed.connect(self._on_accounts_busy)
        return card

    def _group_card(self, decls: list[Setting]) -> Card:
        card = Card()
        grid = QGridLayout(card)
        grid.setContentsMargins(16, 10, 16, 14)
        grid.setHorizontalSpacing(16)
        grid.setVerticalSpacing(4)
        grid.setColumnStretch(0, 1)
        row = 0
        heading_shown = ""
        # Rows without a "Heading: " prefix first, so no plain row sits under another's heading.
        decls = sorted(decls, key=lambda d: bool(split_label(d.label)[0]))
        for decl in decls:
            head, label_text = split_label(decl.label)
            if head and head != heading_shown:
                sub = QLabel(head)
                font = sub.font()
                font.setBold(True)
                sub.setFont(font)
                sub.setContentsMargins(0, 10 if row else 0, 0, 0)
                grid.addWidget(sub, row, 0, 1, 3)
                row += 1
            heading_shown = head
            row = self._add_editor(grid, row, decl, label_text)
        return card

    def _add_editor(self, grid: QGridLayout, row: int, decl: Setting, label_text: str) -> int:
        label = QLabel(label_text)
        label.setToolTip(decl.help)
        label.setWordWrap(True)
        helper = help_label(decl.help)
        lock = lock_label(self._policy.reason)
        lock.setVisible(False)
        message = error_label()
        widget, set_value = self._make_control(decl)
        widget.setToolTip(decl.help)
        label.setBuddy(widget)
        editor = Editor(decl, widget, set_value, message, label, helper, lock, decl.default)
        self.editors[decl.key] = editor
        top = 8 if row else 4
        label.setContentsMargins(0, top, 0, 0)
        if decl.kind is Kind.BLACKLIST:
            label.setWordWrap(False)
            title_row = QHBoxLayout()
            title_row.addWidget(label)
            title_row.addStretch(1)
            title_row.addWidget(lock)
            grid.addLayout(title_row, row, 0, 1, 3)
            grid.addWidget(widget, row + 1, 0, 1, 3)
            grid.addWidget(helper, row + 2, 0, 1, 3)
            grid.addWidget(message, row + 3, 0, 1, 3)
            row += 4
            if self._policy.corporate_blacklist:
                corporate = help_label(
                    "Your administrator also blocks: " + ", ".join(self._policy.corporate_blacklist)
                )
                grid.addWidget(corporate, row, 0, 1, 3)
                row += 1
            return row
        grid.addWidget(label, row, 0)
        grid.addWidget(lock, row, 1, alignment=Qt.AlignmentFlag.AlignBottom)
        align = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom
        grid.addWidget(widget, row, 2, alignment=align)
        grid.addWidget(helper, row + 1, 0, 1, 2)
        grid.addWidget(message, row + 2, 0, 1, 3)
        return row + 3

    def _make_control(self, decl: Setting) -> tuple[QWidget, Callable[[Value], None]]:
        key = decl.key
        if decl.kind is Kind.BOOL:
            toggle = ToggleSwitch()
            toggle.setAccessibleName(decl.label)
            toggle.toggled.connect(lambda on: self._changed(key, bool(on)))
            return toggle, lambda v: toggle.setChecked(bool(v))
        if decl.kind is Kind.INT:
            spin = QSpinBox()
            spin.setRange(
                decl.minimum if decl.minimum is not None else 0,
                decl.maximum if decl.maximum is not None else 1_000_000,
            )
            if decl.unit:
                spin.setSuffix(f" {decl.unit}")
            spin.setKeyboardTracking(False)
            spin.setMinimumWidth(120)
            spin.setAlignment(Qt.AlignmentFlag.AlignRight)
            spin.valueChanged.connect(lambda n: self._changed(key, int(n)))
            return spin, lambda v: spin.setValue(int(v))
        if decl.kind is Kind.CHOICE:
            combo = QComboBox()
            for value, text in decl.choices:
                combo.addItem(text, value)
            combo.setMinimumWidth(200)
            combo.activated.connect(lambda i: self._changed(key, str(combo.itemData(i))))

            def set_choice(v: Value) -> None:
                index = combo.findData(str(v))
                if index >= 0:
                    combo.setCurrentIndex(index)

            return combo, set_choice
        if decl.kind is Kind.BLACKLIST:
            box = FocusOutPlainTextEdit()
            box.setPlaceholderText("gmail.com, outlook.com, someone@example.com")
            box.setTabChangesFocus(True)
            box.setFixedHeight(72)
            box.setAccessibleName(decl.label)
            box.textChanged.connect(self._blacklist_typed)
            box.focus_lost.connect(lambda: self.check_blacklist(rewrite=True))
            self._blacklist_box = box
            return box, lambda v: box.setPlainText(str(v))
        line = QLineEdit()
        line.setMinimumWidth(260)
        line.editingFinished.connect(lambda: self._changed(key, line.text()))
        return line, lambda v: line.setText(str(v))

    # --- user changes ---------------------------------------------------------------------------

    def _changed(self, key: str, value: Value) -> None:
        if self._loading:
            return
        editor = self.editors[key]
        if editor.locked or value == editor.saved:
            return
        self._store.set_setting(key, value)
        self.change_requested.emit(key, value)

    def _blacklist_typed(self) -> None:
        if not self._loading:
            self._blacklist_timer.start()

    def check_blacklist(self, rewrite: bool = False) -> bool:
        """Validate the box now; save a valid value, keep an invalid one only in the box."""
        self._blacklist_timer.stop()
        editor = self.editors.get("blacklist")
        if editor is None or editor.locked or self._loading:
            return False
        text = self._blacklist_box.toPlainText()
        try:
            canonical = parse_value(editor.decl, text)
        except SettingsError as exc:
            editor.show_message(str(exc))
            return False
        editor.show_message("")
        if rewrite and canonical != text:
            self._set_quietly(editor, canonical)
        if canonical != editor.saved:
            self._store.set_setting("blacklist", canonical)
            self.change_requested.emit("blacklist", canonical)
        return True

    # --- answers from the store thread ----------------------------------------------------------

    def _on_loaded(self, values: dict[str, Any], locked: dict[str, str]) -> None:
        self._loading = True
        try:
            for key, editor in self.editors.items():
                if key in values:
                    typing = key == "blacklist" and self._blacklist_unsaved(editor)
                    editor.saved = values[key]
                    if not typing or locked.get(key) is not None:
                        editor.set_value(values[key])
                self._apply_lock(editor, locked.get(key))
        finally:
            self._loading = False
        self.loaded = True

    def _blacklist_unsaved(self, editor: Editor) -> bool:
        """The user has typed in the box and it is not saved yet: a load must not erase it."""
        if self._blacklist_timer.isActive():
            return True
        text = self._blacklist_box.toPlainText()
        return bool(text.strip()) and text != str(editor.saved) and self.loaded

    def _apply_lock(self, editor: Editor, reason: str | None) -> None:
        if reason is None and editor.decl.pending:  # declared, not working yet: say so
            editor.locked = True
            editor.widget.setEnabled(False)
            editor.widget.setToolTip(editor.decl.pending)
            editor.help.setText(f"{editor.decl.help}\n{editor.decl.pending}")
            return
        editor.locked = reason is not None
        editor.widget.setEnabled(reason is None)
        editor.lock.setVisible(reason is not None)
        if reason is not None:
            text = f"Locked by your administrator. {reason}"
            editor.lock.setToolTip(text)
            editor.widget.setToolTip(text)
            editor.label.setToolTip(text)
            editor.help.setText(f"{editor.decl.help}\n{text}")
        else:
            editor.widget.setToolTip(editor.decl.help)
            editor.help.setText(editor.decl.help)

    def _on_saved(self, key: str, value: object) -> None:
        editor = self.editors.get(key)
        if editor is None or not isinstance(value, bool | int | str):
            return
        editor.saved = value
        editor.show_message("")
        if key == "blacklist":
            if not self._blacklist_box.hasFocus():
                current = self._blacklist_box.toPlainText()
                try:
                    same = parse_value(editor.decl, current) == value
                except SettingsError:
                    same = False
                if same and current != value:
                    self._set_quietly(editor, value)
            return
        self._set_quietly(editor, value)

    def _on_refused(self, key: str, message: str) -> None:
        editor = self.editors.get(key)
        if editor is None:
            return
        editor.show_message(message)
        if editor.decl.kind not in (Kind.BLACKLIST, Kind.TEXT):  # text boxes keep the typing
            self._set_quietly(editor, editor.saved)

    # --- accounts -------------------------------------------------------------------------------

    def _on_accounts(self, accounts: list[AccountState]) -> None:
        if self._sandbox:
            return
        by_row: dict[str, AccountState] = {}
        for account in accounts:
            by_row["salesforce" if account.kind == "salesforce" else "mailbox"] = account
        for kind, line in self.account_rows.items():
            line.account = by_row.get(kind)
            self._show_account(line)

    @staticmethod
    def _service(kind: str, account: AccountState | None) -> str:
        if kind == "salesforce":
            return "Salesforce"
        return MAILBOX_KINDS.get(account.kind if account else "microsoft", "Microsoft 365")

    def _show_account(self, line: AccountRow) -> None:
        kind = next(k for k, v in self.account_rows.items() if v is line)
        account = line.account
        busy = self._accounts is not None and self._accounts.busy
        if account is None:
            line.status.setText("Not connected")
            line.button.setText(line.connect_text)
            line.button.setVisible(True)
            line.disconnect.setVisible(False)
        else:
            who = account.username or account.display_name
            state = STATE_TEXT.get(account.state, account.state)
            line.status.setText(f"{who} \u2014 {state}")
            line.status.setToolTip(account.display_name)
            reconnect = account.state == "reconnect"
            line.button.setText(f"Reconnect {self._service(kind, account)}")
            line.button.setVisible(reconnect)
            line.disconnect.setVisible(self._accounts is not None)
        enabled = self._accounts is not None and not busy
        line.button.setEnabled(enabled)
        line.disconnect.setEnabled(enabled)
        if busy and kind == self._signing_in:  # the sign-in under way can be cancelled
            line.button.setText("Cancel sign-in")
            line.button.setVisible(True)
            line.button.setEnabled(True)

    def _connect_clicked(self, kind: str) -> None:
        flow = self._accounts
        if flow is not None and flow.busy and kind == self._signing_in:
            flow.cancel()
            return
        if flow is None or flow.busy:
            return
        line = self.account_rows[kind]
        line.message.setVisible(False)
        if kind == "salesforce":
            account = line.account
            known = str(account.detail.get("login_url", "")) if account is not None else ""
            # Reconnecting signs in where the account lives; a new connection asks where.
            login_url = known if known else self.ask_login_url(self)
            if login_url is None:
                return
            started = flow.connect_salesforce(login_url)
            waiting = "Waiting for you to sign in in your browser\u2026"
        else:
            started = flow.connect_microsoft()
            waiting = "Waiting for you to sign in\u2026"
        if started:
            self._signing_in = kind
            line.status.setText(waiting)
            self._show_busy(line, waiting)

    def _disconnect_clicked(self, kind: str) -> None:
        flow = self._accounts
        line = self.account_rows[kind]
        if flow is None or flow.busy or line.account is None:
            return
        service = self._service(kind, line.account)
        who = line.account.username or service
        if not self.confirm_disconnect(self, service, who):
            return
        if flow.disconnect_account(line.account.kind):
            line.status.setText("Disconnecting\u2026")

    def _row_for(self, account_kind: str) -> AccountRow:
        return self.account_rows["salesforce" if account_kind == "salesforce" else "mailbox"]

    def _on_connected(self, kind: str, username: str) -> None:
        self._close_device_dialog()
        line = self._row_for(kind)
        line.message.setVisible(False)
        line.account = AccountState(kind, username, "", "connected", {})
        self._show_account(line)
        self._store.load_accounts()

    def _on_disconnected(self, kind: str) -> None:
        line = self._row_for(kind)
        line.account = None
        self._show_account(line)
        self._store.load_accounts()

    def _on_account_failed(self, kind: str, message: str) -> None:
        self._close_device_dialog()
        line = self._row_for(kind)
        self._show_account(line)
        line.message.setText(message)
        line.message.setVisible(True)
        self._store.load_accounts()

    def _show_busy(self, line: AccountRow, status: str) -> None:
        self._show_account(line)
        line.status.setText(status)  # keep "Waiting ..." while the job runs

    def _on_accounts_busy(self, busy: bool) -> None:
        if not busy:
            self._signing_in = ""
        for line in self.account_rows.values():
            if busy:
                self._show_busy(line, line.status.text())
            else:
                self._show_account(line)

    def _on_device_code(self, message: str, user_code: str, verification_uri: str) -> None:
        self._close_device_dialog()
        dialog = DeviceCodeDialog(message, user_code, verification_uri, self)
        flow = self._accounts
        if flow is not None:
            dialog.rejected.connect(flow.cancel)
        self.device_dialog = dialog
        dialog.show()

    def _close_device_dialog(self) -> None:
        dialog, self.device_dialog = self.device_dialog, None
        if dialog is not None:
            dialog.blockSignals(True)  # closing is not cancelling
            dialog.done(QDialog.DialogCode.Accepted)
            dialog.deleteLater()

    def _set_quietly(self, editor: Editor, value: Value) -> None:
        self._loading = True
        try:
            editor.set_value(value)
        finally:
            self._loading = False

    # --- window behaviour -----------------------------------------------------------------------

    def bring_forward(self) -> None:
        """Show, un-minimize and raise: what a second launch or the tray's Settings... do."""
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.show()
        self.raise_()
        self.activateWindow()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window leaves the app in the tray; an unsaved valid box is saved first."""
        if self._blacklist_timer.isActive():
            self.check_blacklist()
        super().closeEvent(event)
