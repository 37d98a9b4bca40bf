"""The tray icon: state icon, tooltip, menu. It shows state and sends intents; it decides nothing.

Notifications are kept for what needs the user (a session asking for attention), never for
routine sessions.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QObject, Qt, Signal, SignalInstance
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from scc_desktop.assets import asset_path
from scc_desktop.runner import SessionOutcome
from scc_desktop.ui.worker import Schedule

STATES = ("idle", "syncing", "paused", "attention")
STATUS_WORDS = {
    "ok": "finished",
    "partial": "finished with problems",
    "failed": "failed",
    "not_connected": "not started",
}


def panel_is_dark() -> bool:
    """The colour scheme when the platform tells it, else the palette's window lightness."""
    scheme = QGuiApplication.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def tray_icon(state: str, dark_panel: bool) -> QIcon:
    """Light glyphs for dark panels, dark glyphs for light ones."""
    variant = "dark" if dark_panel else "light"
    return QIcon(str(asset_path(f"icons/tray-{state}-{variant}.svg")))


def describe_outcome(outcome: SessionOutcome, when: datetime) -> str:
    if outcome.status == "not_connected":
        return outcome.message
    word = STATUS_WORDS.get(outcome.status, outcome.status)
    line = f"Last sync {when:%H:%M} {word}"
    if outcome.status == "ok":
        line += f": {outcome.changes} change{'' if outcome.changes == 1 else 's'}"
    elif outcome.message:
        line += f": {outcome.message}"
    return line


class Tray(QObject):
    sync_now_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    settings_requested = Signal()
    issues_requested = Signal()
    history_requested = Signal()
    quit_requested = Signal()
    menu_opening = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.icon = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.status_action = self.menu.addAction("Starting…")
        self.status_action.setEnabled(False)
        self.menu.addSeparator()
        self.sync_action = self._add("Sync Now", self.sync_now_requested)
        self.pause_action = self.menu.addAction("Pause Syncing")
        self.pause_action.triggered.connect(self._toggle_pause)
        self.menu.addSeparator()
        self.settings_action = self._add("Settings...", self.settings_requested)
        self.issues_action = self._add("Sync Issues...", self.issues_requested)
        self.history_action = self._add("History...", self.history_requested)
        self.menu.addSeparator()
        self.quit_action = self._add("Quit", self.quit_requested)
        self.menu.aboutToShow.connect(self.menu_opening)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _s: self._refresh())

        self.worker_state = "idle"
        self.paused = False
        self.progress = ""
        self.last_line = ""
        self.schedule_reason = ""
        self.issue_count = 0
        self.needs_attention = False
        self._notified = ""
        self._refresh()

    def _add(self, text: str, signal: SignalInstance) -> QAction:
        action = self.menu.addAction(text)
        action.triggered.connect(signal)
        return action

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    # --- state from the worker and the store ----------------------------------------------------

    def set_worker_state(self, state: str) -> None:
        self.worker_state = state
        if state == "paused":
            self.paused = True
        elif state == "idle":
            self.paused = False
        if state != "syncing":
            self.progress = ""
        self._refresh()

    def set_paused(self, paused: bool) -> None:
        """Immediate feedback on the user's click; the worker confirms through its state."""
        self.paused = paused
        self._refresh()

    def set_progress(self, text: str) -> None:
        self.progress = text
        self._refresh()

    def set_outcome(self, outcome: SessionOutcome, when: datetime | None = None) -> None:
        self.last_line = describe_outcome(outcome, when or datetime.now())
        self.needs_attention = outcome.needs_attention
        if outcome.needs_attention and outcome.message != self._notified:
            self._notified = outcome.message
            if self.icon.isVisible() and self.icon.supportsMessages():
                self.icon.showMessage(
                    "scc-desktop needs your attention",
                    outcome.message,
                    QSystemTrayIcon.MessageIcon.Warning,
                )
        elif not outcome.needs_attention:
            self._notified = ""
        self._refresh()

    def set_schedule(self, schedule: object) -> None:
        self.schedule_reason = schedule.reason if isinstance(schedule, Schedule) else ""
        self._refresh()

    def set_issue_count(self, count: int) -> None:
        self.issue_count = count
        self._refresh()

    # --- rendering ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.worker_state == "syncing":
            return "syncing"
        if self.needs_attention or self.issue_count > 0:
            return "attention"
        if self.paused:
            return "paused"
        return "idle"

    def tooltip(self) -> str:
        lines = ["scc-desktop"]
        if self.worker_state == "syncing":
            lines.append(f"Syncing: {self.progress}" if self.progress else "Syncing…")
        elif self.paused:
            lines.append("Paused: sessions run only on Sync Now")
        if self.last_line:
            lines.append(self.last_line)
        if self.issue_count:
            lines.append(f"{self.issue_count} sync issue{'' if self.issue_count == 1 else 's'}")
        if self.schedule_reason:
            lines.append(self.schedule_reason)
        return "\n".join(lines)

    def _refresh(self) -> None:
        self.icon.setIcon(tray_icon(self.state, panel_is_dark()))
        self.icon.setToolTip(self.tooltip())
        self.status_action.setText(self._status_text())
        self.pause_action.setText("Resume Syncing" if self.paused else "Pause Syncing")
        issues = f"Sync Issues ({self.issue_count})..." if self.issue_count else "Sync Issues..."
        self.issues_action.setText(issues)

    def _status_text(self) -> str:
        if self.worker_state == "syncing":
            return f"Syncing: {self.progress}" if self.progress else "Syncing…"
        if self.paused:
            return "Paused"
        return self.last_line or "Waiting for the first session"

    def _toggle_pause(self) -> None:
        if self.paused:
            self.set_paused(False)
            self.resume_requested.emit()
        else:
            self.set_paused(True)
            self.pause_requested.emit()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.settings_requested.emit()
