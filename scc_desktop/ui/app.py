"""The tray application: one per profile, wiring the store thread, the worker, the tray and windows.

The GUI thread only draws and forwards intents; SQLite is touched on the store thread and sessions
run on the worker thread, so neither a slow disk nor a long session freezes the tray.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import cast

from PySide6.QtCore import QObject, QSocketNotifier, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from scc_desktop.assets import asset_path
from scc_desktop.context import AppContext
from scc_desktop.engine_runner import ConnectionProvider
from scc_desktop.runner import SessionOutcome, SessionRunner
from scc_desktop.ui.accounts_flow import AccountsFlow
from scc_desktop.ui.actions_thread import ActionsClient, EmailActions
from scc_desktop.ui.history_window import HistoryWindow
from scc_desktop.ui.issues_window import IssuesWindow
from scc_desktop.ui.new_records_window import NewRecordsWindow
from scc_desktop.ui.save_email_window import SaveEmailWindow
from scc_desktop.ui.settings_window import SettingsWindow
from scc_desktop.ui.single_instance import InstanceServer, notify_running, server_name
from scc_desktop.ui.store_thread import StoreClient
from scc_desktop.ui.tray import Tray
from scc_desktop.ui.unresolved_window import UnresolvedWindow
from scc_desktop.ui.worker import HEARTBEAT_MS, MINUTE_MS, WorkerHandle

log = logging.getLogger(__name__)

TRAY_RETRY_MS = 5_000
SHOW_SETTINGS_ENV = "SCC_DESKTOP_SHOW_SETTINGS"


class TrayApp(QObject):
    """Everything one running app holds; windows are created when first asked for."""

    def __init__(
        self,
        ctx: AppContext,
        runner_factory: Callable[[], SessionRunner],
        *,
        sandbox: bool = False,
        minute_ms: int = MINUTE_MS,
        heartbeat_ms: int = HEARTBEAT_MS,
        run_at_start: bool = True,
        tray_retry_ms: int = TRAY_RETRY_MS,
        tray_available: Callable[[], bool] = QSystemTrayIcon.isSystemTrayAvailable,
        provider: ConnectionProvider | None = None,
        actions: EmailActions | None = None,
    ) -> None:
        """`provider` gives the Save Email / New Records thread its own connections (started on
        first use); `actions` replaces that thread (tests)."""
        super().__init__()
        self.ctx = ctx
        self._tray_available = tray_available
        self.sandbox = sandbox
        self.accounts_flow: AccountsFlow | None = None
        self.store = StoreClient(ctx)
        self.worker = WorkerHandle(
            ctx,
            runner_factory,
            minute_ms=minute_ms,
            heartbeat_ms=heartbeat_ms,
            run_at_start=run_at_start,
        )
        self.tray = Tray(self)
        self.settings_window: SettingsWindow | None = None
        self.history_window: HistoryWindow | None = None
        self.issues_window: IssuesWindow | None = None
        self.save_email_window: SaveEmailWindow | None = None
        self.new_records_window: NewRecordsWindow | None = None
        self.unresolved_window: UnresolvedWindow | None = None
        self._provider = provider
        self.actions: EmailActions | None = actions
        self._tray_timer = QTimer(self)
        self._tray_timer.setInterval(tray_retry_ms)
        self._tray_timer.timeout.connect(self._try_tray)

        worker = self.worker.worker
        worker.state_changed.connect(self.tray.set_worker_state)
        worker.progress.connect(self.tray.set_progress)
        worker.finished.connect(self._on_finished)
        worker.schedule_changed.connect(self.tray.set_schedule)
        self.store.setting_saved.connect(self.worker.setting_changed)
        self.store.issue_counts.connect(self.tray.set_issue_counts)

        self.tray.sync_now_requested.connect(self.worker.sync_now_requested)
        self.tray.pause_requested.connect(self.worker.pause_requested)
        self.tray.resume_requested.connect(self.worker.resume_requested)
        self.tray.settings_requested.connect(self.show_settings)
        self.tray.save_email_requested.connect(self.show_save_email)
        self.tray.new_records_requested.connect(self.show_new_records)
        self.tray.unresolved_requested.connect(self.show_unresolved)
        if provider is None and actions is None:
            self.tray.save_email_action.setEnabled(False)
            self.tray.new_records_action.setEnabled(False)
            self.tray.unresolved_action.setEnabled(False)
        if actions is not None:
            actions.unresolved_count.connect(self.tray.set_unresolved_count)
        self.tray.history_requested.connect(self.show_history)
        self.tray.issues_requested.connect(self.show_issues)
        self.tray.quit_requested.connect(self.quit)
        self.tray.menu_opening.connect(self.store.count_issues)
        self.tray.menu_opening.connect(self._count_unresolved)

    def start(self) -> None:
        self.worker.start()
        self.store.count_issues()
        if self._tray_available():
            self.tray.show()
        else:
            log.info("no system tray yet; showing the settings window and retrying")
            self.show_settings()
            self._tray_timer.start()
        recovery = self.ctx.db.recovery
        if recovery is not None:
            QTimer.singleShot(0, self, lambda: self._tell(recovery.user_message()))

    def _try_tray(self) -> None:
        if self._tray_available():
            self._tray_timer.stop()
            self.tray.show()
            log.info("system tray available; icon shown")

    def _tell(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "scc-desktop", message)
        box.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
        box.setModal(False)
        box.setParent(None)
        self._message_box = box
        box.show()

    def _on_finished(self, outcome: object) -> None:
        if isinstance(outcome, SessionOutcome):
            self.tray.set_outcome(outcome, datetime.now())
        self.store.count_issues()
        self._count_unresolved()
        if self.unresolved_window is not None and self.unresolved_window.isVisible():
            self.unresolved_window.reload()  # a session may have saved more
        if self.history_window is not None and self.history_window.isVisible():
            self.history_window.reload()
        if self.issues_window is not None and self.issues_window.isVisible():
            self.issues_window.reload()

    # --- windows --------------------------------------------------------------------------------

    def show_settings(self) -> None:
        if self.settings_window is None:
            if self.accounts_flow is None and not self.sandbox:
                self.accounts_flow = AccountsFlow(self.ctx)
                # a sync starts right after an account is connected
                self.accounts_flow.succeeded.connect(self.worker.sync_now_requested)
            self.settings_window = SettingsWindow(
                self.store, self.ctx.policy, sandbox=self.sandbox, accounts=self.accounts_flow
            )
        else:
            self.store.load_settings()
        self.settings_window.bring_forward()

    def show_history(self) -> None:
        if self.history_window is None:
            self.history_window = HistoryWindow(self.store)
        self.history_window.reload()
        self.history_window.show()
        self.history_window.raise_()
        self.history_window.activateWindow()

    def show_issues(self) -> None:
        if self.issues_window is None:
            self.issues_window = IssuesWindow(self.store)
            # Sent once the store saved the answer, so the session sees it.
            self.issues_window.sync_requested.connect(self.worker.sync_now_requested)
        self.issues_window.reload()
        self.issues_window.show()
        self.issues_window.raise_()
        self.issues_window.activateWindow()

    def _actions(self) -> EmailActions | None:
        """The actions thread, started on first use."""
        if self.actions is None and self._provider is not None:
            self.actions = ActionsClient(self.ctx, self._provider)
            # Do Not Sync saved the blacklist: the worker and an open settings window follow.
            self.actions.setting_saved.connect(self.worker.setting_changed)
            self.actions.setting_saved.connect(lambda _k, _v: self._reload_settings_window())
            self.actions.unresolved_count.connect(self.tray.set_unresolved_count)
        return self.actions

    def _count_unresolved(self) -> None:
        """The tray's "Unresolved Emails (N)": counted on the actions thread (SQLite only)."""
        actions = self._actions()
        if actions is not None:
            actions.count_unresolved()

    def _reload_settings_window(self) -> None:
        if self.settings_window is not None and self.settings_window.isVisible():
            self.store.load_settings()

    def show_save_email(self) -> None:
        actions = self._actions()
        if actions is None:
            return
        if self.save_email_window is None:
            self.save_email_window = SaveEmailWindow(actions)
            self.save_email_window.unresolved_requested.connect(self.show_unresolved)
        self.save_email_window.bring_forward()

    def show_unresolved(self) -> None:
        actions = self._actions()
        if actions is None:
            return
        if self.unresolved_window is None:
            self.unresolved_window = UnresolvedWindow(actions)
        self.unresolved_window.bring_forward()

    def show_new_records(self) -> None:
        actions = self._actions()
        if actions is None:
            return
        if self.new_records_window is None:
            self.new_records_window = NewRecordsWindow(actions)
        self.new_records_window.bring_forward()

    # --- ending ---------------------------------------------------------------------------------

    def quit(self) -> None:
        QApplication.quit()

    def shutdown(self) -> bool:
        """Stop timers and threads; False when the worker's session did not end in time."""
        self._tray_timer.stop()
        self.tray.hide()
        windows = (
            self.settings_window,
            self.history_window,
            self.issues_window,
            self.save_email_window,
            self.new_records_window,
            self.unresolved_window,
        )
        for window in windows:
            if window is not None:
                window.close()
        if self.accounts_flow is not None:
            self.accounts_flow.wait(5_000)  # cancels a sign-in that is still waiting
        worker_done = self.worker.shutdown()
        if not worker_done:
            log.error("the sync session did not stop in time; exiting anyway")
        store_done = self.store.shutdown()
        actions_done = True
        if isinstance(self.actions, ActionsClient):
            actions_done = self.actions.shutdown()
        return worker_done and store_done and actions_done


class _SignalBridge:
    """Ctrl-C and SIGTERM quit cleanly: a wakeup socket lets Python run its handler under Qt."""

    def __init__(self, app: QApplication) -> None:
        self._app = app
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)
        self._old_fd = signal.set_wakeup_fd(self._write.fileno())
        self._old = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: quitting", signum)
        self._app.quit()

    def _drain(self) -> None:
        try:
            while self._read.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


def _application() -> QApplication:
    existing = QApplication.instance()
    if existing is not None:
        return cast(QApplication, existing)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("scc-desktop")
    app.setApplicationDisplayName("scc-desktop")
    app.setDesktopFileName("scc-desktop")
    return app


def run_app(
    ctx: AppContext,
    runner_factory: Callable[[], SessionRunner],
    *,
    sandbox: bool = False,
    show_settings: bool = False,
    provider: ConnectionProvider | None = None,
) -> int:
    """Run the tray app for `ctx`'s profile until Quit; 0 also when another instance took over.

    `sandbox` labels the Accounts section as demo accounts. The settings window opens at start
    with `show_settings`, the SCC_DESKTOP_SHOW_SETTINGS=1 environment, or when there is no tray.
    `provider` connects the Save Email and New Records windows' thread (without one, those menu
    items are disabled).
    """
    app = _application()
    app.setQuitOnLastWindowClosed(False)
    app.setWindowIcon(QIcon(str(asset_path("icons/scc-desktop.svg"))))
    name = server_name(ctx.paths.key)
    if notify_running(name):
        log.info("scc-desktop already runs for this profile; asked it to show its window")
        return 0
    server = InstanceServer(name)
    server.listen()
    tray_app = TrayApp(ctx, runner_factory, sandbox=sandbox, provider=provider)
    server.show_requested.connect(tray_app.show_settings)
    bridge = _SignalBridge(app)
    try:
        tray_app.start()
        if show_settings or os.environ.get(SHOW_SETTINGS_ENV) == "1":
            tray_app.show_settings()
        code = app.exec()
    finally:
        bridge.close()
        server.close()
        clean = tray_app.shutdown()
    if not clean:
        # A session blocked in a network call cannot be interrupted; History marks it
        # interrupted at the next start. Leaving now beats hanging at Quit.
        logging.shutdown()
        os._exit(code)
    return code
