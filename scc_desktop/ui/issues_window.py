"""The Sync Issues window: what waits for the user, grouped by category, each with its answer.

- Errors: the message, and Retry (closes the error and starts a session; the engine keeps the
  failed items on its retry list and records the error again if it fails again).
- Conflicts: both versions side by side, field by field, and "Keep the mailbox version" /
  "Keep the Salesforce version"; the choice is applied by the next session, started at once.
- Held mass deletions: what would be deleted, and Allow / Restore, followed by a session.

Everything shown comes from remote systems, so it is shown as plain text only: labels in
plain-text format and item-view cells, never rich text and never tooltips made of remote data.
The window reads and answers through the store thread; it never touches SQLite itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QFont, QIcon, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.kind_names import kind_name
from scc_desktop.store.issues import IssueRecord
from scc_desktop.sync.fields import FIELDS, Kind
from scc_desktop.ui.store_thread import StoreClient
from scc_desktop.ui.widgets import error_label, help_label, plain_label

GROUPS = (
    ("mass_delete", "Deletions held"),
    ("conflict", "Conflicts"),
    ("error", "Errors"),
    ("notice", "Notices"),
)
SIDE_WORDS = {"mailbox": "the mailbox", "salesforce": "Salesforce"}
SIDE_TITLES = {"mailbox": "Mailbox", "salesforce": "Salesforce"}
FIELD_WORDS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "email2": "Other email",
    "phone": "Phone",
    "mobile": "Mobile",
    "title": "Job title",
    "company": "Company",
    "street": "Street",
    "city": "City",
    "state": "State",
    "postal_code": "Postal code",
    "country": "Country",
    "notes": "Notes",
    "subject": "Subject",
    "start": "Start",
    "end": "End",
    "is_all_day": "All day",
    "location": "Location",
    "description": "Description",
    "show_as": "Show as",
    "is_private": "Private",
    "attendees": "Attendees",
    "ical_uid": "Calendar id",
    "due_date": "Due date",
    "status": "Status",
    "priority": "Priority",
}
DIFFERS = "≠"  # the marker column of a conflict: the two versions differ in this field
CONFLICT_COLUMNS = ("", "Field", "Mailbox", "Salesforce")
ISSUE_ROLE = Qt.ItemDataRole.UserRole


def value_text(value: object) -> str:
    """A stored field value as the user reads it; always plain text."""
    if value is None or value in ("", []):
        return "(empty)"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def field_name(name: str) -> str:
    return FIELD_WORDS.get(name, name.replace("_", " ").capitalize())


def conflict_rows(issue: IssueRecord) -> list[tuple[bool, bool, str, str, str]]:
    """(differs, decided by keep, field label, mailbox text, Salesforce text) per field.

    Fields in the kind's order, then any others the payload holds. A deleted side (None) shows
    as '(deleted)' in every row.
    """
    payload = issue.payload
    sides = {side: payload.get(side) for side in ("mailbox", "salesforce")}
    versions: dict[str, Mapping[str, Any] | None] = {
        side: value if isinstance(value, dict) else None for side, value in sides.items()
    }
    listed = payload.get("fields")
    decided = {str(n) for n in listed} if isinstance(listed, list) else set()
    known: Sequence[str] = FIELDS.get(cast(Kind, issue.kind), ())
    present = [n for version in versions.values() if version for n in version]
    names = [n for n in known if n in present] + sorted(set(present) - set(known))
    rows = []
    for name in names:
        texts = [
            "(deleted)" if version is None else value_text(version.get(name))
            for version in (versions["mailbox"], versions["salesforce"])
        ]
        differs = texts[0] != texts[1]
        rows.append((differs, name in decided, field_name(name), texts[0], texts[1]))
    return rows


def local_time(stamp: str) -> str:
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


class IssuesWindow(QMainWindow):
    """Open issues on the left, the selected one with its answer buttons on the right."""

    sync_requested = Signal()  # an answer was saved: the app starts a session to apply it

    def __init__(self, store: StoreClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.issues: list[IssueRecord] = []
        self._current: IssueRecord | None = None
        self._asked: set[int] = set()  # answers sent from here and not yet confirmed
        self._items: dict[int, QTreeWidgetItem] = {}
        self.setWindowTitle("scc-desktop Sync Issues")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(960, 560)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Issue", "Kind"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._selection_changed)

        self.title = plain_label()
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.1)
        self.title.setFont(font)
        self.message = plain_label()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.pages = QStackedWidget()
        self.empty_page = self._empty_page()
        self.error_page = self._error_page()
        self.conflict_page = self._conflict_page()
        self.mass_delete_page = self._mass_delete_page()
        self.notice_page = self._notice_page()
        for page in (
            self.empty_page,
            self.error_page,
            self.conflict_page,
            self.mass_delete_page,
            self.notice_page,
        ):
            self.pages.addWidget(page)

        detail = QWidget()
        detail_layout = QVBoxLayout(detail)
        detail_layout.addWidget(self.title)
        detail_layout.addWidget(self.message)
        detail_layout.addWidget(self.pages, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.tree)
        splitter.addWidget(detail)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([360, 600])

        self.status = error_label()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.reload)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status)
        bottom.addStretch(1)
        bottom.addWidget(refresh)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)
        self.setCentralWidget(body)

        store.issues_loaded.connect(self._on_loaded)
        store.issue_answered.connect(self._on_answered)
        store.error.connect(self._on_error)
        self._show(None)

    # --- pages ----------------------------------------------------------------------------------

    def _empty_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.empty_text = help_label("No open issues: everything is in sync.")
        layout.addWidget(self.empty_text)
        layout.addStretch(1)
        return page

    def _error_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.error_detail = help_label("")
        self.retry_button = QPushButton("Retry")
        self.retry_button.setToolTip("Try this item again now")
        self.retry_button.clicked.connect(lambda: self._answer("retry"))
        layout.addWidget(self.error_detail)
        layout.addLayout(_buttons(self.retry_button))
        layout.addStretch(1)
        return page

    def _conflict_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.conflict_state = plain_label()
        self.conflict_state.setWordWrap(True)
        self.conflict_table = QTableWidget(0, len(CONFLICT_COLUMNS))
        self.conflict_table.setHorizontalHeaderLabels(list(CONFLICT_COLUMNS))
        self.conflict_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.conflict_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.conflict_table.setWordWrap(True)
        rows = self.conflict_table.verticalHeader()
        rows.setVisible(False)
        rows.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # wrapped values
        header = self.conflict_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        legend = help_label(
            f"{DIFFERS} marks the fields where the two versions differ; the fields in bold were "
            "changed on both sides and are set by the version you keep."
        )
        self.keep_mailbox_button = QPushButton("Keep the mailbox version")
        self.keep_mailbox_button.clicked.connect(lambda: self._answer("keep_mailbox"))
        self.keep_salesforce_button = QPushButton("Keep the Salesforce version")
        self.keep_salesforce_button.clicked.connect(lambda: self._answer("keep_salesforce"))
        layout.addWidget(self.conflict_state)
        layout.addWidget(self.conflict_table, 1)
        layout.addWidget(legend)
        layout.addLayout(_buttons(self.keep_mailbox_button, self.keep_salesforce_button))
        return page

    def _mass_delete_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.mass_delete_summary = plain_label()
        self.mass_delete_summary.setWordWrap(True)
        self.mass_delete_items = QPlainTextEdit()  # plain text: labels come from remote systems
        self.mass_delete_items.setReadOnly(True)
        explain = help_label(
            "Allow: delete them at the next sync. Restore: put the deleted items back where "
            "they were deleted, and keep them synced."
        )
        self.allow_button = QPushButton("Allow")
        self.allow_button.clicked.connect(lambda: self._answer("allow"))
        self.restore_button = QPushButton("Restore")
        self.restore_button.clicked.connect(lambda: self._answer("restore"))
        layout.addWidget(self.mass_delete_summary)
        layout.addWidget(self.mass_delete_items, 1)
        layout.addWidget(explain)
        layout.addLayout(_buttons(self.restore_button, self.allow_button))
        return page

    def _notice_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.dismiss_button = QPushButton("Dismiss")
        self.dismiss_button.clicked.connect(lambda: self._answer("dismissed"))
        layout.addLayout(_buttons(self.dismiss_button))
        layout.addStretch(1)
        return page

    # --- loading --------------------------------------------------------------------------------

    def reload(self) -> None:
        self._store.load_issues()

    def _on_loaded(self, issues: list[IssueRecord]) -> None:
        keep = self._current.id if self._current is not None else None
        order = {category: n for n, (category, _) in enumerate(GROUPS)}
        self.issues = sorted(issues, key=lambda i: (order.get(i.category, len(order)), i.id))
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items = {}
        select: QTreeWidgetItem | None = None
        first: QTreeWidgetItem | None = None
        for category, word in GROUPS + tuple((c, c) for c in self._unknown_categories()):
            members = [i for i in self.issues if i.category == category]
            if not members:
                continue
            group = QTreeWidgetItem([f"{word} ({len(members)})", ""])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            self.tree.addTopLevelItem(group)
            for issue in members:
                item = QTreeWidgetItem([issue.title, kind_name(issue.kind).title])
                item.setData(0, ISSUE_ROLE, issue.id)
                self._items[issue.id] = item
                group.addChild(item)
                first = first or item
                if issue.id == keep:
                    select = item
            group.setExpanded(True)
        self.tree.blockSignals(False)
        target = select or first
        if target is not None:
            self.tree.setCurrentItem(target)
            target.setSelected(True)
        self._selection_changed()

    def _unknown_categories(self) -> list[str]:
        known = {c for c, _ in GROUPS}
        return sorted({i.category for i in self.issues} - known)

    # --- selection ------------------------------------------------------------------------------

    def select_issue(self, issue_id: int) -> bool:
        item = self._items.get(issue_id)
        if item is None:
            return False
        self.tree.setCurrentItem(item)
        return True

    def selected(self) -> IssueRecord | None:
        return self._current

    def _selection_changed(self) -> None:
        items = self.tree.selectedItems()
        issue_id = items[0].data(0, ISSUE_ROLE) if items else None
        self._show(next((i for i in self.issues if i.id == issue_id), None))

    def _show(self, issue: IssueRecord | None) -> None:
        self._current = issue
        if issue is None:
            self.title.setText("Sync Issues" if not self.issues else "Select an issue")
            self.message.setText("")
            self.message.setVisible(False)
            self.empty_text.setText(
                "No open issues: everything is in sync."
                if not self.issues
                else "Select an issue on the left to see it and decide."
            )
            self.pages.setCurrentWidget(self.empty_page)
            return
        self.title.setText(issue.title)
        self.message.setText(issue.message)
        self.message.setVisible(bool(issue.message))
        waiting = issue.id in self._asked
        if issue.category == "conflict":
            self._show_conflict(issue, waiting)
        elif issue.category == "mass_delete":
            self._show_mass_delete(issue, waiting)
        elif issue.category == "error":
            self._show_error(issue, waiting)
        else:
            self.dismiss_button.setEnabled(not waiting)
            self.pages.setCurrentWidget(self.notice_page)

    def _show_error(self, issue: IssueRecord, waiting: bool) -> None:
        payload = issue.payload
        side = payload.get("side")
        lines = [f"Since {local_time(issue.created_at)}."]
        if isinstance(side, str) and side in SIDE_WORDS:
            lines.append(f"The change could not be saved in {SIDE_WORDS[side]}.")
        if payload.get("transient"):
            lines.append("Every sync tries it again; Retry tries it now.")
        self.error_detail.setText(" ".join(lines))
        self.retry_button.setEnabled(not waiting)
        self.pages.setCurrentWidget(self.error_page)

    def _show_conflict(self, issue: IssueRecord, waiting: bool) -> None:
        payload = issue.payload
        winner = payload.get("winner")
        titles = dict(SIDE_TITLES)
        if winner in titles:
            loser = "salesforce" if winner == "mailbox" else "mailbox"
            titles[str(winner)] += " (in place now)"
            titles[loser] += " (kept aside)"
        for side in ("mailbox", "salesforce"):
            if not isinstance(payload.get(side), dict):
                titles[side] = f"{SIDE_TITLES[side]} (deleted)"
        self.conflict_table.setHorizontalHeaderLabels(
            ["", "Field", titles["mailbox"], titles["salesforce"]]
        )
        rows = conflict_rows(issue)
        self.conflict_table.setRowCount(len(rows))
        marked = QBrush(self.palette().color(QPalette.ColorRole.AlternateBase))
        for row, (differs, decided, name, mailbox, salesforce) in enumerate(rows):
            cells = (DIFFERS if differs else "", name, mailbox, salesforce)
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setFlags(Qt.ItemFlag.ItemIsEnabled)
                if differs:
                    cell.setBackground(marked)
                if decided:
                    bold = QFont(cell.font())
                    bold.setBold(True)
                    cell.setFont(bold)
                if column == 0:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.conflict_table.setItem(row, column, cell)
        chosen = issue.resolution.removeprefix("keep_") if issue.resolution else ""
        if chosen in SIDE_WORDS:
            self.conflict_state.setText(
                f"You chose the {SIDE_TITLES[chosen]} version. The next sync applies it to both "
                "sides; you can still change your mind until then."
            )
        else:
            self.conflict_state.setText("Which version should both sides have?")
        self.keep_mailbox_button.setEnabled(not waiting and chosen != "mailbox")
        self.keep_salesforce_button.setEnabled(not waiting and chosen != "salesforce")
        self.pages.setCurrentWidget(self.conflict_page)

    def _show_mass_delete(self, issue: IssueRecord, waiting: bool) -> None:
        payload = issue.payload
        deletes = payload.get("deletes")
        listed = [d for d in deletes if isinstance(d, dict)] if isinstance(deletes, list) else []
        linked = payload.get("linked")
        kind = kind_name(issue.kind).many
        where = sorted({SIDE_WORDS.get(str(d.get("side")), str(d.get("side"))) for d in listed})
        summary = f"{len(listed)} {kind} would be deleted"
        if where:
            summary += " in " + " and ".join(where)
        if isinstance(linked, int) and linked:
            summary += f", out of {linked} synced"
        self.mass_delete_summary.setText(summary + ". Nothing has been deleted yet.")
        lines = [
            f"{d.get('label') or d.get('id')} (in {SIDE_WORDS.get(str(d.get('side')), '?')})"
            for d in listed
        ]
        self.mass_delete_items.setPlainText("\n".join(lines))
        self.allow_button.setEnabled(not waiting)
        self.restore_button.setEnabled(not waiting)
        self.pages.setCurrentWidget(self.mass_delete_page)

    # --- answering ------------------------------------------------------------------------------

    def _answer(self, answer: str) -> None:
        issue = self._current
        if issue is None:
            return
        self._asked.add(issue.id)
        self.status.setVisible(False)
        self._show(issue)  # buttons off until the store confirms
        self._store.answer_issue(issue.id, answer)

    def _on_answered(self, issue_id: int, answer: str) -> None:
        if issue_id not in self._asked:
            return
        self._asked.discard(issue_id)
        if answer != "dismissed":
            self.sync_requested.emit()
        if self._current is not None and self._current.id == issue_id:
            self._show(self._current)

    def _on_error(self, message: str) -> None:
        if not self._asked and not message.startswith("Sync Issues"):
            return  # another window's error
        self._asked.clear()
        self.status.setText(message)
        self.status.setVisible(True)
        self._show(self._current)


def _buttons(*buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    for button in buttons:
        row.addWidget(button)
    return row
