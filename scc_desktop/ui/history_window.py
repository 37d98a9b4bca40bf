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
from scc_desktop.store.history import RunRecord
from scc_desktop.ui.store_thread import StoreClient
from scc_desktop.ui.widgets import plain_label

COLUMNS = ("Started", "Trigger", "Status", "Message", "Counts")


def format_counts(summary: dict[str, Any]) -> str:
    """A session summary as one line: numbers as they are, nested per-object maps flattened."""
    parts: list[str] = []
    for key, value in sorted(summary.items()):
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            parts.append(f"{key} {value}")
        elif isinstance(value, dict):
            inner = format_counts(value)
            if inner:
                parts.append(f"{key}: {inner}")
    return "; ".join(parts)


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
        self.resize(820, 420)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
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
            cells = (
                format_time(run.started_at),
                run.trigger,
                STATUS_TEXT.get(run.status, run.status),
                run.message,
                format_counts(run.summary),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)  # items show text as plain text
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.empty.setVisible(not runs)
