"""The app around the worker: single instance, the tray menu, run_app, and the two windows."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtNetwork import QLocalServer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.runner import NOT_CONNECTED_MESSAGE, NotConnectedRunner, SessionOutcome
from scc_desktop.ui import run_app
from scc_desktop.ui.app import TrayApp
from scc_desktop.ui.settings_window import SettingsWindow
from scc_desktop.ui.single_instance import InstanceServer, notify_running, server_name
from scc_desktop.ui.tray import Tray, describe_outcome, tray_icon
from scc_desktop.ui.worker import Schedule


@pytest.fixture
def tray_app(
    ctx: AppContext, runner_factory: Callable[[], Any], make_relay: Callable[[object], Any]
) -> Iterator[TrayApp]:
    app = TrayApp(ctx, runner_factory, run_at_start=False, minute_ms=60_000)
    app.store_events = make_relay(app.store)  # type: ignore[attr-defined]
    app.worker_events = make_relay(app.worker.worker)  # type: ignore[attr-defined]
    app.start()
    yield app
    assert app.shutdown()


# --- single instance -------------------------------------------------------------------------


def test_a_second_launch_asks_the_first_to_show(qtbot: QtBot, ctx: AppContext) -> None:
    name = server_name(ctx.paths.key) + "-t1"
    server = InstanceServer(name)
    assert server.listen()
    try:
        with qtbot.waitSignal(server.show_requested, timeout=3_000):
            assert notify_running(name)
    finally:
        server.close()
    assert not notify_running(name)  # nobody listens any more


@pytest.mark.skipif(sys.platform == "win32", reason="Unix socket files only")
def test_a_stale_socket_from_a_crash_is_replaced(qtbot: QtBot, ctx: AppContext) -> None:
    name = server_name(ctx.paths.key) + "-t2"
    probe = QLocalServer()
    assert probe.listen(name)
    path = probe.fullServerName()
    probe.close()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a socket file nobody listens on, as a crash leaves it
    stale.close()
    assert Path(path).exists()
    assert not notify_running(name)
    server = InstanceServer(name)
    assert server.listen()
    try:
        with qtbot.waitSignal(server.show_requested, timeout=3_000):
            assert notify_running(name)
    finally:
        server.close()


def test_run_app_shows_settings_without_a_tray_and_a_second_launch_raises_it(
    qtbot: QtBot, ctx: AppContext, tmp_path: Path
) -> None:
    qapp = QApplication.instance()
    assert qapp is not None
    seen: dict[str, Any] = {}
    earlier = {id(w) for w in qapp.topLevelWidgets()}  # windows other tests left behind

    def windows() -> list[SettingsWindow]:
        return [
            w
            for w in qapp.topLevelWidgets()
            if isinstance(w, SettingsWindow) and id(w) not in earlier
        ]

    def second_launch() -> None:
        shown = windows()
        seen["shown_at_start"] = bool(shown) and shown[0].isVisible()
        for window in shown:
            window.hide()
        again = AppContext.open(
            tmp_path / "p", secret_backend=MemoryBackend(), policy_path=tmp_path / "policy.toml"
        )
        seen["second"] = run_app(again, NotConnectedRunner)
        wait_for_window()

    def wait_for_window() -> None:
        if any(w.isVisible() for w in windows()):
            seen["raised"] = True
            qapp.quit()
        else:
            QTimer.singleShot(20, wait_for_window)

    QTimer.singleShot(0, second_launch)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(qapp.quit)  # never hang the suite
    guard.start(10_000)
    code = run_app(ctx, NotConnectedRunner)
    guard.stop()
    assert code == 0
    assert seen == {"shown_at_start": True, "second": 0, "raised": True}


def test_without_a_tray_the_window_opens_and_the_tray_is_retried(
    qtbot: QtBot, ctx: AppContext, runner_factory: Callable[[], Any]
) -> None:
    answers = iter([False, False, True])
    app = TrayApp(
        ctx,
        runner_factory,
        run_at_start=False,
        tray_retry_ms=10,
        tray_available=lambda: next(answers, True),
    )
    app.start()
    try:
        assert app.settings_window is not None and app.settings_window.isVisible()
        assert not app.tray.icon.isVisible()
        qtbot.waitUntil(app.tray.icon.isVisible, timeout=3_000)
        assert next(answers, "done") == "done"  # it stopped asking once the tray was there
    finally:
        assert app.shutdown()


def test_a_recovered_state_file_is_told_once(
    qtbot: QtBot, tmp_path: Path, runner_factory: Callable[[], Any]
) -> None:
    profile = tmp_path / "broken"
    first = AppContext.open(profile, secret_backend=MemoryBackend(), policy_path=tmp_path / "x")
    state = first.paths.state_db
    first.db.close()
    state.write_bytes(b"this is not an SQLite file" * 100)
    ctx = AppContext.open(profile, secret_backend=MemoryBackend(), policy_path=tmp_path / "x")
    assert ctx.db.recovery is not None
    app = TrayApp(ctx, runner_factory, run_at_start=False)
    app.start()
    try:

        def boxes() -> list[QMessageBox]:
            return [
                w
                for w in QApplication.topLevelWidgets()
                if isinstance(w, QMessageBox) and w.isVisible()
            ]

        qtbot.waitUntil(lambda: len(boxes()) == 1, timeout=3_000)
        assert "moved aside" in boxes()[0].text()
        boxes()[0].close()
    finally:
        assert app.shutdown()
        ctx.db.close()


# --- the tray --------------------------------------------------------------------------------


def test_tray_menu_has_the_actions() -> None:
    tray = Tray()
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()][1:]  # after status
    assert texts == [
        "Sync Now",
        "Pause Syncing",
        "Settings...",
        "Save Email...",
        "Unresolved Emails...",
        "New Records...",
        "Sync Issues...",
        "History...",
        "Quit",
    ]
    tray.set_issue_counts(3, 0)
    assert tray.issues_action.text() == "Sync Issues (3)..."
    assert tray.state == "idle"  # errors alone are retried by every session
    tray.set_issue_counts(3, 1)
    assert tray.state == "attention"  # a conflict or a held deletion waits for the user


def test_tray_pause_toggles_and_tooltip_tells_the_state(qtbot: QtBot) -> None:
    tray = Tray()
    with qtbot.waitSignal(tray.pause_requested, timeout=1_000):
        tray.pause_action.trigger()
    assert tray.pause_action.text() == "Resume Syncing"
    assert tray.state == "paused"
    assert "Paused" in tray.icon.toolTip()
    with qtbot.waitSignal(tray.resume_requested, timeout=1_000):
        tray.pause_action.trigger()
    assert tray.state == "idle"
    tray.set_worker_state("syncing")
    tray.set_progress("Contacts: 40 of 120")
    assert tray.state == "syncing"
    assert "Contacts: 40 of 120" in tray.icon.toolTip()
    tray.set_outcome(SessionOutcome("ok", "", changes=3), datetime(2026, 1, 2, 14, 5))
    tray.set_worker_state("idle")
    assert "Last sync 14:05 finished: 3 changes" in tray.icon.toolTip()
    tray.set_schedule(Schedule(20, "Salesforce API use is at 85 %"))
    assert "API use is at 85 %" in tray.icon.toolTip()
    tray.set_outcome(SessionOutcome("partial", "Reconnect Salesforce", needs_attention=True))
    assert tray.state == "attention"


def test_not_connected_is_said_plainly() -> None:
    line = describe_outcome(SessionOutcome("not_connected", NOT_CONNECTED_MESSAGE), datetime.now())
    assert line == "Connect your accounts to start syncing."


@pytest.mark.parametrize("state", ["idle", "syncing", "paused", "attention"])
@pytest.mark.parametrize("dark", [False, True])
def test_every_tray_state_has_an_icon(state: str, dark: bool) -> None:
    icon = tray_icon(state, dark)
    assert not icon.isNull()
    assert not icon.pixmap(22, 22).isNull()


def test_tray_sync_now_runs_a_session_and_the_tooltip_shows_it(
    qtbot: QtBot, tray_app: TrayApp, fake_runner: Any
) -> None:
    with qtbot.waitSignal(tray_app.worker_events.finished, timeout=3_000) as done:
        tray_app.tray.sync_action.trigger()
    assert done.args[0].status == "ok"
    assert fake_runner.triggers == ["manual"]
    qtbot.waitUntil(lambda: "finished: 1 change" in tray_app.tray.icon.toolTip(), timeout=3_000)


# --- windows ---------------------------------------------------------------------------------


def test_history_window_lists_sessions_with_counts(
    qtbot: QtBot, tray_app: TrayApp, fake_runner: Any
) -> None:
    fake_runner.outcomes = [
        SessionOutcome(
            "ok",
            "2 contacts linked",
            {
                "counts": {
                    "contact": {
                        "mailbox": {"created": 2, "updated": 0, "deleted": 0},
                        "salesforce": {"created": 0, "updated": 1, "deleted": 0},
                    }
                },
                "api_calls": {"salesforce": 3, "graph": 4},
            },
            changes=3,
        )
    ]
    with qtbot.waitSignal(tray_app.worker_events.finished, timeout=3_000):
        tray_app.worker.sync_now()
    with qtbot.waitSignal(tray_app.store_events.history_loaded, timeout=3_000):
        tray_app.show_history()
    window = tray_app.history_window
    assert window is not None
    qtbot.waitUntil(lambda: window.table.rowCount() == 1, timeout=3_000)
    cells = [window.table.item(0, c).text() for c in range(window.table.columnCount())]
    assert cells[1:] == [
        "manual",
        "OK",
        "2 created",
        "1 updated",
        "Microsoft 365 4, Salesforce 3",
        "2 contacts linked",
    ]
    assert window.table.item(0, 3).toolTip() == "contacts: 2 created"


def test_void_calls_and_emits_leave_none_and_true_alive() -> None:
    """PySide6 6.12.0 on Python 3.11 drops a reference to None per void call (True per emit),
    so a running tray aborts within minutes; pyproject.toml pins below it, and this test aborts
    the interpreter if a broken release is ever installed."""
    timer = QTimer()
    tray = Tray()
    for _ in range(20_000):
        timer.stop()
        tray.menu_opening.emit()
    assert sys.getrefcount(None) > 1_000
    assert sys.getrefcount(True) > 100
