"""The Save Email window: pick a recent message, optionally a Related To record, and save it.

Everything it shows comes from the mailbox or Salesforce, so it is shown as plain text only
(table cells and plain labels; nothing is ever interpreted as markup). The work happens on the
actions thread (`EmailActions`); this window only sends requests and shows answers.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QMainWindow,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.email_actions import MessageSummary, RecordChoice, SaveOutcome
from scc_desktop.ui.actions_thread import LOAD_MESSAGES, SAVE, SEARCH, EmailActions
from scc_desktop.ui.widgets import (
    Feedback,
    RecordSearch,
    button_row,
    help_label,
    local_minute,
    pick_one_table,
    plain_label,
)

COLUMNS = ("From", "Subject", "Date")
THREAD_BOX = "Auto-save all next emails in this thread"
NO_RECORD = "No record: link to the matching Contacts or Leads only"
OPEN_UNRESOLVED = "Open Unresolved Emails..."


class SaveEmailWindow(QMainWindow):
    unresolved_requested = Signal()  # the result line's button after a save ended unresolved

    def __init__(self, actions: EmailActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.email_actions = actions
        self.setWindowTitle("Save Email - scc-desktop")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(820, 600)
        self.messages: list[MessageSummary] = []
        self.thread_switch_on = True
        self._busy = False

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(plain_label("Recent messages (Inbox and Sent Items):"))
        self.table = pick_one_table(central, COLUMNS, stretch=(1,))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 3)

        layout.addWidget(plain_label("Related To (optional):"))
        self.picker = picker = RecordSearch(
            central, "Search Accounts, Opportunities, Contacts, Leads"
        )
        picker.on_search(self.search)
        self.search_box, self.search_button = picker.box, picker.button
        self.results = picker.results
        layout.addLayout(picker.row)
        layout.addWidget(self.results, 1)
        self._reset_results([])

        self.thread_box = QCheckBox(THREAD_BOX, central)
        self.thread_box.setChecked(True)
        layout.addWidget(self.thread_box)
        self.thread_help = help_label(
            "Turn on Auto-Save All Emails In Threads in Settings to use this.", central
        )
        self.thread_help.setVisible(False)
        layout.addWidget(self.thread_help)

        self.feedback = Feedback(central)
        self.status, self.error = self.feedback.status, self.feedback.error
        result_row = QHBoxLayout()
        result_row.addWidget(self.status, 1)
        self.unresolved_button = QPushButton(OPEN_UNRESOLVED, central)
        self.unresolved_button.setVisible(False)
        self.unresolved_button.clicked.connect(self.unresolved_requested)
        result_row.addWidget(self.unresolved_button)
        layout.addLayout(result_row)
        layout.addWidget(self.error)

        buttons, self.refresh_button, (self.save_button,) = button_row(
            central, self.reload, ("Save", self.save)
        )
        layout.addLayout(buttons)
        self.setCentralWidget(central)

        actions.messages_loaded.connect(self._show_messages)
        actions.records_found.connect(self._show_records)
        actions.saved.connect(self._show_outcome)
        actions.failed.connect(self._show_failure)
        self._update_buttons()

    # --- requests -------------------------------------------------------------------------------

    def reload(self) -> None:
        self._say("Loading recent messages…")
        self.email_actions.load_messages()

    def search(self) -> None:
        text = self.search_box.text().strip()
        if text:
            self._say("Searching Salesforce…")
            self.email_actions.search(text)

    def selected_message(self) -> MessageSummary | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].row()
        return self.messages[row] if 0 <= row < len(self.messages) else None

    def selected_record(self) -> RecordChoice | None:
        data = self.picker.selected()
        return data if isinstance(data, RecordChoice) else None

    def save(self) -> None:
        message = self.selected_message()
        if message is None or self._busy:
            return
        record = self.selected_record()
        autosave = self.thread_box.isChecked() and self.thread_box.isEnabled()
        self._busy = True
        self._update_buttons()
        self.unresolved_button.setVisible(False)
        self._say("Saving…")
        self.email_actions.save(
            message.id, record.id if record else "", record.name if record else "", autosave
        )

    # --- answers --------------------------------------------------------------------------------

    def _show_messages(self, messages: list[MessageSummary], thread_autosave: bool) -> None:
        self.messages = list(messages)
        self.table.setRowCount(len(self.messages))
        for row, message in enumerate(self.messages):
            cells = (message.sender, message.subject or "(no subject)", local_minute(message.when))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(message.recipients if col == 0 else text)
                self.table.setItem(row, col, item)
        if self.messages:
            self.table.selectRow(0)
        self.thread_switch_on = thread_autosave
        self.thread_box.setEnabled(thread_autosave)
        self.thread_box.setChecked(thread_autosave)
        self.thread_help.setVisible(not thread_autosave)
        self._say("" if self.messages else "No recent messages.")
        self._update_buttons()

    def _reset_results(self, records: list[RecordChoice]) -> None:
        self.picker.fill([(r.label, r) for r in records], first=NO_RECORD)
        self.results.setCurrentRow(0)

    def _show_records(self, text: str, records: list[RecordChoice]) -> None:
        if text != self.search_box.text().strip():
            return  # an older search's answer
        self._reset_results(records)
        if records:
            self.results.setCurrentRow(1)
        self._say(f"{len(records)} record{'' if len(records) == 1 else 's'} found.")

    def _show_outcome(self, outcome: object) -> None:
        self._busy = False
        self._update_buttons()
        if isinstance(outcome, SaveOutcome):
            if outcome.status == "failed":
                self._fail(outcome.message)
            else:
                self._say(outcome.message)
            self.unresolved_button.setVisible(outcome.status == "unresolved")

    def _show_failure(self, action: str, message: str) -> None:
        if action not in (LOAD_MESSAGES, SEARCH, SAVE):
            return
        if action == SAVE:
            self._busy = False
            self._update_buttons()
        self._fail(message)

    # --- helpers --------------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        self.feedback.say(text)

    def _fail(self, text: str) -> None:
        self.feedback.fail(text)

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(not self._busy and self.selected_message() is not None)

    def bring_forward(self) -> None:
        self.reload()
        self.show()
        self.raise_()
        self.activateWindow()
