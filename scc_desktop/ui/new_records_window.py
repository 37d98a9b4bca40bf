"""The New Records window: frequent correspondents who are not in Salesforce.

Each row offers Create Contact, Create Lead (asks the company) and Do Not Sync (adds the address
to the user's Blacklisted Domains); a row disappears once handled. Names and addresses come from
the mailbox and are shown as plain text only. The work happens on the actions thread.
"""

from __future__ import annotations

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QInputDialog,
    QLineEdit,
    QMainWindow,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.email_actions import Correspondent
from scc_desktop.ui.actions_thread import (
    CREATE_CONTACT,
    CREATE_LEAD,
    DO_NOT_SYNC,
    LOAD_CORRESPONDENTS,
    EmailActions,
)
from scc_desktop.ui.widgets import Feedback, button_row, help_label, pick_one_table

COLUMNS = ("Name", "Address", "Emails")
OWN_ACTIONS = (LOAD_CORRESPONDENTS, CREATE_CONTACT, CREATE_LEAD, DO_NOT_SYNC)


class NewRecordsWindow(QMainWindow):
    def __init__(self, actions: EmailActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.email_actions = actions
        self.setWindowTitle("New Records - scc-desktop")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(720, 480)
        self.people: list[Correspondent] = []
        self.pending: set[str] = set()

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.addWidget(
            help_label(
                "People you exchanged email with in the last 30 days who are not Contacts, "
                "Leads or Users in Salesforce (blacklisted and internal addresses left out).",
                central,
            )
        )
        self.table = pick_one_table(central, COLUMNS, stretch=(0, 1))
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)

        self.feedback = Feedback(central)
        self.status, self.error = self.feedback.status, self.feedback.error
        layout.addWidget(self.status)
        layout.addWidget(self.error)

        buttons, self.refresh_button, actions_shown = button_row(
            central,
            self.reload,
            ("Create Contact", self.create_contact),
            ("Create Lead", self.create_lead),
            ("Do Not Sync", self.do_not_sync),
        )
        self.contact_button, self.lead_button, self.skip_button = actions_shown
        layout.addLayout(buttons)
        self.setCentralWidget(central)

        actions.correspondents_loaded.connect(self._show_people)
        actions.handled.connect(self._handled)
        actions.failed.connect(self._show_failure)
        self._update_buttons()

    # --- asking (tests replace this) ------------------------------------------------------------

    def ask_text(self, title: str, label: str, default: str = "") -> str | None:
        """A line of text from the user, or None when cancelled."""
        text, ok = QInputDialog.getText(self, title, label, QLineEdit.EchoMode.Normal, default)
        return text if ok else None

    # --- requests -------------------------------------------------------------------------------

    def reload(self) -> None:
        self._say("Looking for frequent correspondents…")
        self.email_actions.load_correspondents()

    def selected(self) -> Correspondent | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].row()
        return self.people[row] if 0 <= row < len(self.people) else None

    def create_contact(self) -> None:
        person = self.selected()
        if person is None:
            return
        account = self.ask_text(
            "Create Contact", f"Account for {person.address} (leave empty for none):"
        )
        if account is None:
            return
        self._start(person, "Creating the Contact…")
        self.email_actions.create_contact(person.address, person.name, account.strip())

    def create_lead(self) -> None:
        person = self.selected()
        if person is None:
            return
        company = self.ask_text("Create Lead", f"Company of {person.address}:")
        if company is None:
            return
        if not company.strip():
            self._fail("A Lead needs a company.")
            return
        self._start(person, "Creating the Lead…")
        self.email_actions.create_lead(person.address, person.name, company.strip())

    def do_not_sync(self) -> None:
        person = self.selected()
        if person is None:
            return
        self._start(person, "Adding to your Blacklisted Domains…")
        self.email_actions.do_not_sync(person.address)

    # --- answers --------------------------------------------------------------------------------

    def _show_people(self, people: list[Correspondent]) -> None:
        self.people = list(people)
        self.pending.clear()
        self._fill()
        self._say("" if self.people else "Everyone you write to is already in Salesforce.")

    def _handled(self, address: str, text: str) -> None:
        self.pending.discard(address)
        self.people = [p for p in self.people if p.address != address]
        self._fill()
        self._say(text)

    def _show_failure(self, action: str, message: str) -> None:
        if action not in OWN_ACTIONS:
            return
        self.pending.clear()
        self._update_buttons()
        self._fail(message)

    # --- helpers --------------------------------------------------------------------------------

    def _fill(self) -> None:
        self.table.setRowCount(len(self.people))
        for row, person in enumerate(self.people):
            for col, text in enumerate((person.name, person.address, str(person.count))):
                self.table.setItem(row, col, QTableWidgetItem(text))
        if self.people:
            self.table.selectRow(0)
        self._update_buttons()

    def _start(self, person: Correspondent, text: str) -> None:
        self.pending.add(person.address)
        self._update_buttons()
        self._say(text)

    def _say(self, text: str) -> None:
        self.feedback.say(text)

    def _fail(self, text: str) -> None:
        self.feedback.fail(text)

    def _update_buttons(self) -> None:
        person = self.selected()
        enabled = person is not None and person.address not in self.pending
        for button in (self.contact_button, self.lead_button, self.skip_button):
            button.setEnabled(enabled)

    def bring_forward(self) -> None:
        self.reload()
        self.show()
        self.raise_()
        self.activateWindow()
