"""The History window: recent sessions with their counts, read through the store thread."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMainWindow,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from scc_desktop.assets import asset_path
from scc_desktop.kind_names import kind_name
from scc_desktop.store.history import RunRecord
from scc_desktop.ui.store_thread import StoreClient
from scc_desktop.ui.widgets import plain_label

COLUMNS = (
    "Started",
    "Trigger",
    "Status",
    "In the mailbox",
    "In Salesforce",
    "API calls",
    "Message",
)
SIDES = ("mailbox", "salesforce")


def side_counts(summary: dict[str, Any], side: str) -> tuple[str, str]:
    """What a session wrote on one side: a short cell and a per-kind tooltip.

    The summary's `counts` are {kind: {side: {created, updated, deleted}}}.
    """
    totals = {"created": 0, "updated": 0, "deleted": 0}
    details: list[str] = []
    counts = summary.get("counts")
    for kind, sides in counts.items() if isinstance(counts, dict) else ():
        numbers = sides.get(side) if isinstance(sides, dict) else None
        if not isinstance(numbers, dict):
            continue
        words = [f"{numbers.get(k, 0)} {k}" for k in totals if numbers.get(k)]
        for key in totals:
            value = numbers.get(key, 0)
            totals[key] += value if isinstance(value, int) else 0
        if words:
            details.append(f"{kind_name(kind).many}: {', '.join(words)}")
    cells = [f"{n} {k}" for k, n in totals.items() if n]
    email = summary.get("email")
    shared = email.get("shared", 0) if isinstance(email, dict) else 0
    if side == "salesforce" and isinstance(shared, int) and shared:
        cells.append(f"{shared} email{'s' if shared != 1 else ''} saved")
        details.append(f"emails: {shared} saved as activities")
    cell = ", ".join(cells) or "no changes"
    return cell, "\n".join(details) or cell


def api_calls(summary: dict[str, Any]) -> str:
    calls = summary.get("api_calls")
    if not isinstance(calls, dict) or not calls:
        return ""
    names = {"salesforce": "Salesforce", "graph": "Microsoft 365"}
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in sorted(calls.items()))


STATUS_TEXT = {
    "ok": "OK",
    "partial": "Partly done",
    "failed": "Failed",
    "running": "Running",
    "not_connected": "Not connected",
}


def format_time(iso: str) -> str:
    """Stored in UTC; shown in the user's local time."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


class HistoryWindow(QMainWindow):
    def __init__(self, store: StoreClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self.setWindowTitle("scc-desktop History")
        self.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        self.resize(980, 420)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.empty = plain_label("No sessions yet.")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.reload)
        buttons = QHBoxLayout()
        buttons.addWidget(self.empty)
        buttons.addStretch(1)
        buttons.addWidget(refresh)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.setCentralWidget(body)
        store.history_loaded.connect(self._on_loaded)

    def reload(self) -> None:
        self._store.load_history(200)

    def _on_loaded(self, runs: list[RunRecord]) -> None:
        self.table.setRowCount(len(runs))
        for row, run in enumerate(runs):
            mailbox, mailbox_tip = side_counts(run.summary, "mailbox")
            salesforce, salesforce_tip = side_counts(run.summary, "salesforce")
            cells = (
                (format_time(run.started_at), ""),
                (run.trigger, ""),
                (STATUS_TEXT.get(run.status, run.status), ""),
                (mailbox, mailbox_tip),
                (salesforce, salesforce_tip),
                (api_calls(run.summary), ""),
                (run.message, ""),
            )
            for column, (text, tip) in enumerate(cells):
                item = QTableWidgetItem(text)  # items show text as plain text
                item.setToolTip(tip or text)
                self.table.setItem(row, column, item)
        self.empty.setVisible(not runs)
