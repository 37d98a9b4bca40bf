"""The settings window: built from the declarations, saved through the store thread, signalled
to the worker, with inline blacklist validation and administrator locks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPlainTextEdit, QSpinBox
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.settings import SETTINGS, Kind
from scc_desktop.ui.app import TrayApp
from scc_desktop.ui.settings_window import SettingsWindow
from scc_desktop.ui.widgets import ToggleSwitch

SWITCHES = [d.key for d in SETTINGS if d.switch]


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


@pytest.fixture
def window(qtbot: QtBot, tray_app: TrayApp) -> SettingsWindow:
    tray_app.show_settings()
    window = tray_app.settings_window
    assert window is not None
    qtbot.waitUntil(lambda: window.loaded, timeout=3_000)
    qtbot.waitExposed(window)
    return window


def test_the_five_dashboard_switches_exist() -> None:
    assert SWITCHES == [
        "email_autoshare",
        "email_thread_autosave",
        "email_link_opportunities",
        "meetings_autoshare",
        "appointments_autoshare",
    ]


def test_every_declaration_has_an_editor_of_its_kind(window: SettingsWindow) -> None:
    expected = {
        Kind.BOOL: ToggleSwitch,
        Kind.INT: QSpinBox,
        Kind.CHOICE: QComboBox,
        Kind.BLACKLIST: QPlainTextEdit,
    }
    assert sorted(window.editors) == sorted(d.key for d in SETTINGS)
    for decl in SETTINGS:
        widget = window.editors[decl.key].widget
        if decl.kind in expected:
            assert isinstance(widget, expected[decl.kind]), decl.key
        if decl.pending:  # declared but not working yet: disabled, and says so
            assert not widget.isEnabled()
            assert widget.toolTip() == decl.pending
            assert window.editors[decl.key].help.text() == f"{decl.help}\n{decl.pending}"
            continue
        assert widget.toolTip() == decl.help
        assert window.editors[decl.key].help.text() == decl.help
    spin = window.editors["sync_interval_minutes"].widget
    assert isinstance(spin, QSpinBox)
    assert spin.suffix() == " minutes"


@pytest.mark.parametrize("key", SWITCHES)
def test_a_switch_toggled_is_persisted_and_reaches_the_worker(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext, key: str
) -> None:
    toggle = window.editors[key].widget
    assert isinstance(toggle, ToggleSwitch)
    assert not toggle.isChecked()
    with (
        qtbot.waitSignal(tray_app.store_events.setting_saved, timeout=3_000) as saved,
        qtbot.waitSignal(tray_app.worker_events.setting_applied, timeout=3_000) as applied,
    ):
        qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert saved.args == [key, True]
    assert applied.args == [key, True]
    assert ctx.settings().get(key) is True  # a fresh Settings on this thread's connection
    for other in SWITCHES:
        if other != key:
            assert ctx.settings().get(other) is False


def test_a_choice_and_a_number_are_saved(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext
) -> None:
    combo = window.editors["contacts_direction"].widget
    assert isinstance(combo, QComboBox)
    index = combo.findData("sf_to_mailbox")
    with qtbot.waitSignal(tray_app.store_events.setting_saved, timeout=3_000):
        combo.setCurrentIndex(index)
        combo.activated.emit(index)  # what a user's pick sends
    assert ctx.settings().get("contacts_direction") == "sf_to_mailbox"
    spin = window.editors["sync_interval_minutes"].widget
    assert isinstance(spin, QSpinBox)
    with qtbot.waitSignal(tray_app.worker_events.schedule_changed, timeout=3_000) as changed:
        spin.setValue(30)
    assert changed.args[0].minutes == 30
    assert ctx.settings().get("sync_interval_minutes") == 30


def test_bad_blacklist_entries_are_named_inline_and_nothing_is_saved(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext
) -> None:
    editor = window.editors["blacklist"]
    box = editor.widget
    assert isinstance(box, QPlainTextEdit)
    typed = "gmail.com, Bob@Example.COM, *.spam.com, not an address"
    box.setPlainText(typed)  # validated after a short pause in typing
    qtbot.waitUntil(editor.message.isVisible, timeout=3_000)
    assert "*.spam.com" in editor.message.text()
    assert "not an address" in editor.message.text()
    assert "wildcard" in editor.message.text().lower()
    assert box.toPlainText() == typed  # the user's text stays
    with qtbot.waitSignal(tray_app.store_events.settings_loaded, timeout=3_000):
        tray_app.store.load_settings()  # a round trip: no save was in flight
    assert ctx.settings().get("blacklist") == ""


def test_good_blacklist_entries_are_saved_canonical(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext
) -> None:
    editor = window.editors["blacklist"]
    box = editor.widget
    assert isinstance(box, QPlainTextEdit)
    with (
        qtbot.waitSignal(tray_app.store_events.setting_saved, timeout=3_000) as saved,
        qtbot.waitSignal(tray_app.worker_events.setting_applied, timeout=3_000),
    ):
        box.setPlainText("gmail.com;\nBob@Example.COM, gmail.com")
    assert saved.args == ["blacklist", "gmail.com, bob@example.com"]
    assert ctx.settings().get("blacklist") == "gmail.com, bob@example.com"
    assert not editor.message.isVisible()
    qtbot.waitUntil(lambda: box.toPlainText() == "gmail.com, bob@example.com", timeout=3_000)


def test_fixing_a_bad_blacklist_clears_the_message(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext
) -> None:
    editor = window.editors["blacklist"]
    box = editor.widget
    assert isinstance(box, QPlainTextEdit)
    box.setPlainText("outlook.com, *.bad.com")
    assert not window.check_blacklist()
    assert "*.bad.com" in editor.message.text()
    box.setPlainText("outlook.com")
    with qtbot.waitSignal(tray_app.store_events.setting_saved, timeout=3_000):
        assert window.check_blacklist()
    assert not editor.message.isVisible()
    assert ctx.settings().get("blacklist") == "outlook.com"


def test_a_locked_setting_is_disabled_and_shows_the_reason(
    qtbot: QtBot, tmp_path: Path, runner_factory: Callable[[], Any], make_relay: Any
) -> None:
    from scc_desktop.auth.credentials import MemoryBackend

    policy = tmp_path / "locked-policy.toml"
    policy.write_text(
        'reason = "Acme IT keeps auto-sharing on."\n'
        "[locked]\nemail_autoshare = true\n"
        '[blacklist]\ncorporate = ["competitor.com"]\n',
        encoding="utf-8",
    )
    ctx = AppContext.open(tmp_path / "locked", secret_backend=MemoryBackend(), policy_path=policy)
    app = TrayApp(ctx, runner_factory, run_at_start=False, minute_ms=60_000)
    store_events = make_relay(app.store)
    app.start()
    try:
        app.show_settings()
        window = app.settings_window
        assert window is not None
        qtbot.waitUntil(lambda: window.loaded, timeout=3_000)
        editor = window.editors["email_autoshare"]
        assert isinstance(editor.widget, ToggleSwitch)
        assert editor.widget.isChecked()
        assert not editor.widget.isEnabled()
        assert editor.lock.isVisibleTo(window)
        assert "Acme IT keeps auto-sharing on." in editor.lock.toolTip()
        assert "Acme IT keeps auto-sharing on." in editor.widget.toolTip()
        assert "Acme IT keeps auto-sharing on." in editor.help.text()
        assert window.editors["email_thread_autosave"].widget.isEnabled()
        assert not window.editors["email_thread_autosave"].lock.isVisibleTo(window)
        with qtbot.waitSignal(store_events.setting_refused, timeout=3_000) as refused:
            app.store.set_setting("email_autoshare", False)
        assert "locked" in refused.args[1]
        assert ctx.settings().get("email_autoshare") is True
        texts = [label.text() for label in window.findChildren(type(editor.help))]
        assert any("competitor.com" in text for text in texts)
    finally:
        assert app.shutdown()
        ctx.db.close()


def test_accounts_section_offers_sign_in_outside_the_sandbox(window: SettingsWindow) -> None:
    from PySide6.QtWidgets import QPushButton

    buttons = {b.text(): b for b in window.findChildren(QPushButton)}
    for text in ("Connect Salesforce", "Connect Microsoft 365"):
        assert text in buttons
        assert buttons[text].isEnabled()


def test_start_at_login_creates_and_removes_the_autostart_entry(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext
) -> None:
    from scc_desktop.autostart import Autostart

    entry = Autostart(ctx.paths, platform="linux").linux_entry()
    toggle = window.editors["start_at_login"].widget
    assert isinstance(toggle, ToggleSwitch)
    assert not entry.exists()
    with qtbot.waitSignal(tray_app.store_events.setting_saved, timeout=3_000):
        qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(entry.exists, timeout=3_000)
    assert "--profile" in entry.read_text(encoding="utf-8")
    with qtbot.waitSignal(tray_app.store_events.setting_saved, timeout=3_000):
        qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not entry.exists(), timeout=3_000)


def test_a_settings_load_does_not_erase_what_the_user_is_typing(
    qtbot: QtBot, window: SettingsWindow, tray_app: TrayApp, ctx: AppContext
) -> None:
    editor = window.editors["blacklist"]
    box = editor.widget
    assert isinstance(box, QPlainTextEdit)
    seen: list[dict[str, Any]] = []
    # connected after the window's own slot, so it runs after the window has applied a load
    tray_app.store.settings_loaded.connect(lambda values, _locked: seen.append(values))

    def reload_with(minutes: int) -> None:
        """A load the window must apply, told apart from any other by a changed interval."""
        ctx.settings().set("sync_interval_minutes", minutes)
        tray_app.store.load_settings()
        qtbot.waitUntil(
            lambda: any(v.get("sync_interval_minutes") == minutes for v in seen), timeout=3_000
        )

    box.setPlainText("acme.example, half-typ")  # the debounce has not fired yet
    reload_with(21)  # e.g. the CLI changed another setting
    assert box.toPlainText() == "acme.example, half-typ"
    box.setPlainText("not an address")  # fails validation: kept in the box, not saved
    qtbot.waitUntil(editor.message.isVisible, timeout=3_000)
    reload_with(22)
    assert box.toPlainText() == "not an address"
    assert ctx.settings().get("blacklist") == ""
    box.setPlainText("")  # emptied again: a later load shows the stored value
    qtbot.waitUntil(lambda: not editor.message.isVisible(), timeout=3_000)
    qtbot.waitUntil(lambda: not window._blacklist_timer.isActive(), timeout=3_000)
    ctx.settings().set("blacklist", "gmail.com")  # changed elsewhere (the CLI)
    reload_with(23)
    assert box.toPlainText() == "gmail.com"
