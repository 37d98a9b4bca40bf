"""Issue 6's GUI test: change the blacklist in the settings window, press Sync Now, and the next
session honours it - a real worker running real sessions over the sandbox, auto-sharing on, no
restart and no sign-in again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QPlainTextEdit
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.engine_runner import SandboxRunnerFactory
from scc_desktop.net import https_session
from scc_desktop.runner import SessionOutcome
from scc_desktop.ui.app import TrayApp

SESSION_MS = 180_000


def test_blacklist_changed_in_settings_applies_at_the_next_sync_now(
    qtbot: QtBot, ctx: AppContext, make_relay: Callable[[object], Any]
) -> None:
    ctx.settings().set("email_autoshare", True)
    factory = SandboxRunnerFactory(ctx)
    app = TrayApp(ctx, factory, sandbox=True, run_at_start=False, minute_ms=600_000)
    worker_events = make_relay(app.worker.worker)
    store_events = make_relay(app.store)
    app.start()
    admin = None
    try:
        # A first session with no blacklist: Maria's (Globex) demo message is shared.
        with qtbot.waitSignal(worker_events.finished, timeout=SESSION_MS) as first:
            app.tray.sync_action.trigger()
        assert isinstance(first.args[0], SessionOutcome)
        assert first.args[0].status == "ok", first.args[0].message
        demo = factory.demo()
        admin = https_session(str(demo.ca_file))

        def deliver(sender: str, subject: str) -> None:
            reply = admin.post(
                f"{demo.server.admin_url}/microsoft/deliver",
                json={
                    "folder": "inbox",
                    "direction": "received",
                    "from": sender,
                    "subject": subject,
                },
                timeout=30,
            )
            assert reply.status_code < 300, reply.text

        def email_subjects() -> list[str]:
            got = admin.get(
                f"{demo.server.admin_url}/salesforce/records",
                params={"type": "EmailMessage"},
                timeout=30,
            )
            return [str(r["Subject"]) for r in got.json()["records"] if not r.get("IsDeleted")]

        assert "Globex purchase order" in email_subjects()
        deliver("Maria Garcia <maria.garcia@globex.example>", "Globex follow-up")
        deliver("Jane Cooper <jane.cooper@acme.example>", "Acme follow-up")

        # The user blacklists Globex in the settings window...
        app.show_settings()
        window = app.settings_window
        assert window is not None
        qtbot.addWidget(window)  # deleted after the test: later tests look for settings windows
        qtbot.waitUntil(lambda: window.loaded, timeout=5_000)
        with qtbot.waitSignal(store_events.settings_loaded, timeout=5_000):
            app.store.load_settings()  # a round trip: no load still on its way to the window
        qtbot.wait(200)  # the window's own copy of that answer lands after the relay's
        box = window.editors["blacklist"].widget
        assert isinstance(box, QPlainTextEdit)
        with qtbot.waitSignal(store_events.setting_saved, timeout=5_000) as saved:
            box.setPlainText("GLOBEX.example")
        assert saved.args == ["blacklist", "globex.example"]
        qtbot.waitUntil(lambda: ctx.settings().get("blacklist") == "globex.example")

        # ... and presses Sync Now: that session honours it.
        with qtbot.waitSignal(worker_events.finished, timeout=SESSION_MS) as second:
            app.tray.sync_action.trigger()
        outcome = second.args[0]
        assert isinstance(outcome, SessionOutcome)
        assert outcome.status == "ok", outcome.message
        email = outcome.summary["email"]
        assert isinstance(email, dict) and email["shared"] == 1, email
        subjects = email_subjects()
        assert subjects.count("Acme follow-up") == 1  # another contact: shared
        assert "Globex follow-up" not in subjects  # the newly blacklisted domain: not shared
    finally:
        if admin is not None:
            admin.close()
        assert app.shutdown()
        factory.close()
