"""Small widgets the windows share: the dashboard-style switch, the card frame, the lock mark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from PySide6.QtCore import QPoint, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFocusEvent, QIcon, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QWidget,
)

from scc_desktop.assets import asset_path


class ToggleSwitch(QCheckBox):
    """A QCheckBox drawn as the dashboard's switch; keeps QCheckBox's API and accessibility."""

    _TRACK_W = 36
    _TRACK_H = 20

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def sizeHint(self) -> QSize:
        return QSize(self._TRACK_W + 4, self._TRACK_H + 4)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def hitButton(self, pos: QPoint) -> bool:
        return self.rect().contains(pos)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        track = QRectF(2, (self.height() - self._TRACK_H) / 2, self._TRACK_W, self._TRACK_H)
        if self.isChecked():
            color = palette.color(QPalette.ColorRole.Highlight)
        else:
            color = palette.color(QPalette.ColorRole.Mid)
        if not self.isEnabled():
            color = QColor(color)
            color.setAlpha(90)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        radius = self._TRACK_H / 2
        painter.drawRoundedRect(track, radius, radius)
        knob_d = self._TRACK_H - 4
        x = track.right() - knob_d - 2 if self.isChecked() else track.left() + 2
        knob = QColor("#ffffff")
        if not self.isEnabled():
            knob.setAlpha(200)
        painter.setBrush(knob)
        painter.drawEllipse(QRectF(x, track.top() + 2, knob_d, knob_d))
        if self.hasFocus():
            pen = palette.color(QPalette.ColorRole.Highlight)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(track.adjusted(-1.5, -1.5, 1.5, 1.5), radius + 1, radius + 1)
        painter.end()


class Card(QFrame):
    """A rounded panel, like the dashboard's cards."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setStyleSheet(
            "QFrame#card { background: palette(base); border: 1px solid palette(midlight);"
            " border-radius: 8px; }"
        )


class FocusOutPlainTextEdit(QPlainTextEdit):
    """A text box that says when the user leaves it, so its text can be checked then."""

    focus_lost = Signal()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.focus_lost.emit()


def lock_label(reason: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(parent)
    label.setPixmap(QIcon(str(asset_path("icons/lock.svg"))).pixmap(14, 14))
    label.setToolTip(reason)
    label.setAccessibleName("Locked")
    return label


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A label for data: never interpreted as rich text."""
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def help_label(text: str, parent: QWidget | None = None) -> QLabel:
    label = plain_label(text, parent)
    label.setWordWrap(True)
    palette = label.palette()
    palette.setColor(
        QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.PlaceholderText)
    )
    label.setPalette(palette)
    font = label.font()
    font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
    label.setFont(font)
    return label


def error_label(parent: QWidget | None = None) -> QLabel:
    label = plain_label("", parent)
    label.setWordWrap(True)
    label.setStyleSheet("color: #c62828;")
    label.setVisible(False)
    return label


class Feedback:
    """A status line and an error line under it, of which one shows at a time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self.status = plain_label("", parent)
        self.status.setWordWrap(True)
        self.error = error_label(parent)

    def say(self, text: str) -> None:
        self.error.setVisible(False)
        self.status.setText(text)

    def fail(self, text: str) -> None:
        self.status.setText("")
        self.error.setText(text)
        self.error.setVisible(True)


def pick_one_table(
    parent: QWidget, columns: tuple[str, ...] | list[str], stretch: tuple[int, ...]
) -> QTableWidget:
    """A read-only table where the user picks one row: the email windows' message lists.
    Columns in `stretch` share the width; the others fit their contents."""
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    for column in range(len(columns)):
        mode = QHeaderView.ResizeMode.Stretch if column in stretch else None
        header.setSectionResizeMode(column, mode or QHeaderView.ResizeMode.ResizeToContents)
    return table


def local_minute(stamp: datetime | None) -> str:
    """A message's date as the email windows list it: local time, to the minute."""
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M") if stamp is not None else ""


class RecordSearch:
    """A search box, its button and the list of Salesforce records found: the same picker in
    Save Email (Related To) and Unresolved Emails (Link to)."""

    ROLE = Qt.ItemDataRole.UserRole  # a result row's record

    def __init__(self, parent: QWidget, placeholder: str) -> None:
        self.row = QHBoxLayout()
        self.box = QLineEdit(parent)
        self.box.setPlaceholderText(placeholder)
        self.button = QPushButton("Search", parent)
        self.row.addWidget(self.box, 1)
        self.row.addWidget(self.button)
        self.results = QListWidget(parent)

    def on_search(self, search: Callable[[], None]) -> None:
        self.box.returnPressed.connect(search)
        self.button.clicked.connect(search)

    def fill(self, records: Sequence[tuple[str, object]], first: str | None = None) -> None:
        """Show `(label, record)` rows (as plain text), after a `first` row with no record."""
        self.results.clear()
        if first is not None:
            self.results.addItem(QListWidgetItem(first))
        for label, record in records:
            item = QListWidgetItem(label)
            item.setData(self.ROLE, record)
            self.results.addItem(item)

    def selected(self) -> object | None:
        item = self.results.currentItem()
        record: object | None = item.data(self.ROLE) if item is not None else None
        return record


def button_row(
    parent: QWidget, refresh: Callable[[], None], *actions: tuple[str, Callable[[], None]]
) -> tuple[QHBoxLayout, QPushButton, list[QPushButton]]:
    """Refresh on the left, the window's actions on the right; the first action is the default
    when it is the only one."""
    row = QHBoxLayout()
    refresh_button = QPushButton("Refresh", parent)
    refresh_button.clicked.connect(refresh)
    row.addWidget(refresh_button)
    row.addStretch(1)
    buttons = []
    for text, act in actions:
        button = QPushButton(text, parent)
        button.clicked.connect(act)
        row.addWidget(button)
        buttons.append(button)
    if len(buttons) == 1:
        buttons[0].setDefault(True)
    return row, refresh_button, buttons
