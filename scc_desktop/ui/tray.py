"""The tray icon: state icon, tooltip, menu. It shows state and sends intents; it decides nothing.

The icon asks for attention while a session said something needs the user (a reconnect, a held
mass deletion, a conflict kept aside) or while conflicts and held deletions are open in Sync
Issues. Notifications are kept for those, once per new thing, never for routine sessions.
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


def notification(outcome: SessionOutcome) -> tuple[tuple[str, ...], str]:
    """What to tell the user about this session: (keys seen before or not, text); text '' = nothing.

    Held deletions and conflicts come from the summary's issues (keyed by issue id, so the same
    held deletion reported again by later sessions is told once); any other needs-attention
    outcome (Reconnect Salesforce, a sign-in that expired) is told by its message.
    """
    issues = outcome.summary.get("issues")
    listed = [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []
    held = [i for i in listed if i.get("category") == "mass_delete"]
    conflicts = [i for i in listed if i.get("category") == "conflict"]
    keys = tuple(f"issue:{i.get('id')}" for i in held + conflicts)
    lines: list[str] = []
    if held:
        titles = "; ".join(str(i.get("title", "")) for i in held)
        lines.append(f"Deletions held back: {titles}. Nothing was deleted.")
    if len(conflicts) == 1:
        lines.append(f"{conflicts[0].get('title', 'A conflict')}.")
    elif conflicts:
        lines.append(f"{len(conflicts)} conflicts: the losing versions were kept aside.")
    if lines:
        lines.append("Open Sync Issues to decide.")
        return keys, "\n".join(lines)
    if outcome.needs_attention and outcome.message:
        return (f"message:{outcome.message}",), outcome.message
    return (), ""


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
    save_email_requested = Signal()
    unresolved_requested = Signal()
    new_records_requested = Signal()
    issues_requested = Signal()
    history_requested = Signal()
    quit_requested = Signal()
    menu_opening = Signal()
    notified = Signal(str)  # a notification's text, also when the platform cannot show it

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
        self.save_email_action = self._add("Save Email...", self.save_email_requested)
        self.unresolved_action = self._add("Unresolved Emails...", self.unresolved_requested)
        self.new_records_action = self._add("New Records...", self.new_records_requested)
        self.issues_action = self._add("Sync Issues...", self.issues_requested)
        self.history_action = self._add("History...", self.history_requested)
        self.menu.addSeparator()
        self.quit_action = self._add("Quit", self.quit_requested)
        self.menu.aboutToShow.connect(self.menu_opening)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.icon.messageClicked.connect(self._message_clicked)
        QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _s: self._refresh())

        self.worker_state = "idle"
        self.paused = False
        self.progress = ""
        self.last_line = ""
        self.schedule_reason = ""
        self.issue_count = 0
        self.unresolved_count = 0
        self.attention_issues = 0
        self.needs_attention = False
        self._notified: set[str] = set()
        self._notice_about_issues = False
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
        keys, text = notification(outcome)
        if text and not set(keys) <= self._notified:
            self._notice_about_issues = not keys[0].startswith("message:")
            self._notify(text)
        # Forget what no longer applies, so it is told again if it comes back later.
        self._notified = {k for k in self._notified if k.startswith("issue:")} | set(keys)
        self._refresh()

    def _notify(self, text: str) -> None:
        self.notified.emit(text)
        if self.icon.isVisible() and self.icon.supportsMessages():
            self.icon.showMessage(
                "scc-desktop needs your attention", text, QSystemTrayIcon.MessageIcon.Warning
            )

    def set_schedule(self, schedule: object) -> None:
        self.schedule_reason = schedule.reason if isinstance(schedule, Schedule) else ""
        self._refresh()

    def set_issue_count(self, count: int) -> None:
        """Open issues waiting for the user: shown in the menu and tooltip."""
        self.issue_count = count
        self._refresh()

    def set_unresolved_count(self, count: int) -> None:
        """Emails saved without a link, waiting in the Unresolved Emails window."""
        self.unresolved_count = count
        self._refresh()

    def set_issue_counts(self, count: int, attention: int) -> None:
        """Open issues, and how many are conflicts or held deletions (the icon asks for those)."""
        self.issue_count = count
        self.attention_issues = attention
        self._refresh()

    # --- rendering ------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.worker_state == "syncing":
            return "syncing"
        if self.needs_attention or self.attention_issues > 0:
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
        n = self.unresolved_count
        self.unresolved_action.setText(
            f"Unresolved Emails ({n})..." if n else "Unresolved Emails..."
        )

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

    def _message_clicked(self) -> None:
        if self._notice_about_issues:
            self.issues_requested.emit()
        else:
            self.settings_requested.emit()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.settings_requested.emit()
