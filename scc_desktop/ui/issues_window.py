"""The Sync Issues window: what waits for the user, each with a way to settle it.

A first version: open issues listed, details shown as plain text (a conflict shows both versions
from its payload), and a button that marks the selected issue resolved.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.store.issues import IssueRecord
from scc_desktop.ui.store_thread import StoreClient
from scc_desktop.ui.widgets import plain_label

COLUMNS = ("Kind", "Category", "Title", "Message")
ACTION_TEXT = {"error": "Retry", "conflict": "Keep Current Version", "mass_delete": "Dismiss"}


def pretty(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return str(value)


def describe(issue: IssueRecord) -> str:
    """The details pane: for a conflict both versions, else the record as stored."""
    lines = [issue.title, "", issue.message]
    payload = dict(issue.payload)
    if issue.category == "conflict":
        for side, label in (("salesforce", "Salesforce version"), ("mailbox", "Mailbox version")):
            if side in payload:
                lines += ["", f"{label}:", pretty(payload.pop(side))]
    if payload:
        lines += ["", "Details:", pretty(payload)]
    return "\n".join(lines)


class IssuesWindow(QMainWindow):
    retry_requested = Signal()  # an error marked for retry: the app starts a session

    def __init__(self, store: StoreClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.issues: list[IssueRecord] = []
        self.setWindowTitle("scc-desktop Sync Issues")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(820, 520)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.details = QPlainTextEdit()  # plain text: payloads come from remote systems
        self.details.setReadOnly(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        self.empty = plain_label("No open issues.")
        self.resolve_button = QPushButton("Resolve")
        self.resolve_button.setEnabled(False)
        self.resolve_button.clicked.connect(self._resolve_selected)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.reload)
        buttons = QHBoxLayout()
        buttons.addWidget(self.empty)
        buttons.addStretch(1)
        buttons.addWidget(refresh)
        buttons.addWidget(self.resolve_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(splitter)
        layout.addLayout(buttons)
        self.setCentralWidget(body)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        store.issues_loaded.connect(self._on_loaded)

    def reload(self) -> None:
        self._store.load_issues()

    def select(self, row: int) -> None:
        self.table.selectRow(row)

    def selected(self) -> IssueRecord | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.issues[rows[0].row()]

    def _on_loaded(self, issues: list[IssueRecord]) -> None:
        self.issues = list(issues)
        self.table.setRowCount(len(self.issues))
        for row, issue in enumerate(self.issues):
            for column, text in enumerate((issue.kind, issue.category, issue.title, issue.message)):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.empty.setVisible(not self.issues)
        self.details.clear()
        self._selection_changed()

    def _selection_changed(self) -> None:
        issue = self.selected()
        self.resolve_button.setEnabled(issue is not None)
        if issue is None:
            self.resolve_button.setText("Resolve")
            return
        self.resolve_button.setText(ACTION_TEXT.get(issue.category, "Resolve"))
        self.details.setPlainText(describe(issue))

    def _resolve_selected(self) -> None:
        issue = self.selected()
        if issue is None:
            return
        resolution = "retry" if issue.category == "error" else "resolved_by_user"
        self.resolve_button.setEnabled(False)
        self._store.resolve_issue(issue.id, resolution)
        if resolution == "retry":
            self.retry_requested.emit()
