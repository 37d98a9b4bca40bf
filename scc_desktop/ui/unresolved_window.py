"""The Unresolved Emails window: emails saved to Salesforce without a link, to link by hand.

A message saved manually whose participants match no Contact or Lead is saved unlinked and
listed here; the user picks it, searches Salesforce for a Contact, Lead, Account or Opportunity
(the same Related To search as Save Email) and links it. A linked email leaves the list. What it
shows comes from the mailbox or Salesforce, so it is shown as plain text only; the work happens
on the actions thread (`EmailActions`).
"""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QMainWindow,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.email_actions import RecordChoice, UnresolvedEmail
from scc_desktop.ui.actions_thread import LINK, LOAD_UNRESOLVED, SEARCH, EmailActions
from scc_desktop.ui.widgets import (
    Feedback,
    RecordSearch,
    button_row,
    help_label,
    local_minute,
    pick_one_table,
    plain_label,
)

COLUMNS = ("Subject", "From", "Date")
INTRO = (
    "Emails saved to Salesforce without a link: no Contact or Lead matched their participants. "
    "Pick one, find the record it belongs to, and link it."
)


class UnresolvedWindow(QMainWindow):
    def __init__(self, actions: EmailActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.email_actions = actions
        self.setWindowTitle("Unresolved Emails - scc-desktop")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(820, 600)
        self.emails: list[UnresolvedEmail] = []
        self._linking: str | None = None  # the key being linked
        self._searching: str | None = None  # the text this window searched for

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(help_label(INTRO, central))
        self.table = pick_one_table(central, COLUMNS, stretch=(0,))
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.table, 3)
        self.detail = plain_label("", central)
        self.detail.setWordWrap(True)
        layout.addWidget(self.detail)

        layout.addWidget(plain_label("Link to:", central))
        self.picker = picker = RecordSearch(
            central, "Search Contacts, Leads, Accounts, Opportunities"
        )
        picker.on_search(self.search)
        self.search_box, self.search_button = picker.box, picker.button
        self.results = picker.results
        layout.addLayout(picker.row)
        self.results.currentItemChanged.connect(lambda *_a: self._update_buttons())
        layout.addWidget(self.results, 2)

        self.feedback = Feedback(central)
        self.status, self.error = self.feedback.status, self.feedback.error
        layout.addWidget(self.status)
        layout.addWidget(self.error)

        buttons, self.refresh_button, (self.link_button,) = button_row(
            central, self.reload, ("Link", self.link)
        )
        layout.addLayout(buttons)
        self.setCentralWidget(central)

        actions.unresolved_loaded.connect(self._show_emails)
        actions.records_found.connect(self._show_records)
        actions.linked.connect(self._show_linked)
        actions.failed.connect(self._show_failure)
        self._update_buttons()

    # --- requests -------------------------------------------------------------------------------

    def reload(self) -> None:
        self.email_actions.load_unresolved()

    def search(self) -> None:
        text = self.search_box.text().strip()
        if text:
            self._searching = text
            self.feedback.say("Searching Salesforce…")
            self.email_actions.search(text)

    def selected_email(self) -> UnresolvedEmail | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].row()
        return self.emails[row] if 0 <= row < len(self.emails) else None

    def selected_record(self) -> RecordChoice | None:
        data = self.picker.selected()
        return data if isinstance(data, RecordChoice) else None

    def link(self) -> None:
        email = self.selected_email()
        record = self.selected_record()
        if email is None or record is None or self._linking is not None:
            return
        self._linking = email.key
        self._update_buttons()
        self.feedback.say("Linking…")
        self.email_actions.link(email.key, record)

    # --- answers --------------------------------------------------------------------------------

    def _show_emails(self, emails: list[UnresolvedEmail]) -> None:
        keep = self.selected_email()
        self.emails = list(emails)
        self.table.setRowCount(len(self.emails))
        for row, email in enumerate(self.emails):
            cells = (email.subject or "(no subject)", email.sender, local_minute(email.when))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, col, item)
        keys = [e.key for e in self.emails]
        if keep is not None and keep.key in keys:
            self.table.selectRow(keys.index(keep.key))
        elif self.emails:
            self.table.selectRow(0)
        if self._linking is None:
            self.feedback.say(
                "" if self.emails else "No unresolved emails: every saved email is linked."
            )
        self._selection_changed()

    def _show_records(self, text: str, records: list[RecordChoice]) -> None:
        if self._searching is None or text != self._searching:
            return  # another window's search, or an older one
        if text != self.search_box.text().strip():
            return
        self._searching = None
        self.picker.fill([(r.label, r) for r in records])
        if records:
            self.results.setCurrentRow(0)
        self.feedback.say(f"{len(records)} record{'' if len(records) == 1 else 's'} found.")
        self._update_buttons()

    def _show_linked(self, key: str, text: str) -> None:
        if key == self._linking:
            self._linking = None
        keys = [e.key for e in self.emails]
        if key in keys:
            row = keys.index(key)
            del self.emails[row]
            self.table.removeRow(row)
        self.feedback.say(text)
        self._selection_changed()

    def _show_failure(self, action: str, message: str) -> None:
        if action == SEARCH:
            if self._searching is None:
                return  # another window's search
            self._searching = None
        elif action == LINK:
            self._linking = None
        elif action != LOAD_UNRESOLVED:
            return
        self.feedback.fail(message)
        self._update_buttons()

    # --- helpers --------------------------------------------------------------------------------

    def _selection_changed(self) -> None:
        email = self.selected_email()
        self.detail.setText(email.reason if email is not None else "")
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = self.selected_email() is not None and self.selected_record() is not None
        self.link_button.setEnabled(ready and self._linking is None)

    def bring_forward(self) -> None:
        self.reload()
        self.show()
        self.raise_()
        self.activateWindow()
