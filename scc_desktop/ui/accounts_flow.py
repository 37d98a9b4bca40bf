"""Connecting and disconnecting accounts from Settings, off the GUI thread.

A sign-in opens the system browser and waits on a loopback listener (or polls Microsoft's device
code endpoint) for minutes: it runs on a worker QThread, one job at a time, and answers with
signals. The GUI thread only shows what comes back: the device code (as plain text, with Cancel),
the account connected, or the user's message when it failed (a locked keyring says how to unlock
it).
"""

from __future__ import annotations

import logging
import threading
import webbrowser
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from scc_desktop import accounts
from scc_desktop.auth.loopback import LOOPBACK_HOST, BrowserOpener
from scc_desktop.auth.microsoft import DeviceCode
from scc_desktop.auth.salesforce import PRODUCTION_LOGIN, SANDBOX_LOGIN, normalize_login_url
from scc_desktop.context import AppContext
from scc_desktop.ui.widgets import error_label, help_label, plain_label

log = logging.getLogger(__name__)

SERVICE_NAMES = {accounts.SALESFORCE: "Salesforce", accounts.MICROSOFT: "Microsoft 365"}


def user_message(kind: str, exc: BaseException) -> str:
    """What the user reads when a connect or disconnect failed: the error's own message when it
    has one (keyring, sign-in, Salesforce errors all do), never a traceback."""
    message = getattr(exc, "user_message", "")
    if isinstance(message, str) and message:
        return message
    if isinstance(exc, ValueError):
        return str(exc)
    service = SERVICE_NAMES.get(kind, kind)
    return f"{service} sign-in did not complete ({type(exc).__name__}). Please try again."


def _end_loopback_wait(authorize_url: str) -> None:
    """Answer a waiting loopback listener with an error, so a browser sign-in stops at once."""
    query = parse_qs(urlsplit(authorize_url).query)
    redirect = query.get("redirect_uri", [""])[0]
    state = query.get("state", [""])[0]
    if not redirect.startswith(f"http://{LOOPBACK_HOST}:"):
        return
    target = f"{redirect}?{urlencode({'state': state, 'error': 'access_denied'})}"

    def poke() -> None:
        with requests.Session() as http:
            http.trust_env = False  # loopback: no proxy
            try:
                http.get(target, timeout=5)
            except requests.RequestException:
                log.debug("the sign-in listener had already stopped")

    threading.Thread(target=poke, name="scc-signin-cancel", daemon=True).start()


class _Job(QThread):
    """One connect or disconnect, run on its own thread; the flow gets the result by signal."""

    done = Signal(str, str, str)  # kind, username ('' for a disconnect), error message ('' = ok)

    def __init__(self, ctx: AppContext, kind: str, work: Callable[[], str]) -> None:
        super().__init__()
        self.setObjectName(f"scc-accounts-{kind}")
        self._ctx = ctx
        self._kind = kind
        self._work = work

    def run(self) -> None:
        try:
            username = self._work()
        except BaseException as exc:  # every failure becomes a message
            log.warning("%s account job failed: %s", self._kind, type(exc).__name__, exc_info=True)
            self.done.emit(self._kind, "", user_message(self._kind, exc) or "failed")
        else:
            self.done.emit(self._kind, username, "")
        finally:
            self._ctx.db.close()  # this thread's SQLite connection


class AccountsFlow(QObject):
    """Settings' handle on account sign-in. Lives on the GUI thread; the work runs on a job
    thread. `succeeded(kind, username)`, `failed(kind, message)`, `disconnected(kind)`, and
    `device_code(message, user_code, verification_uri)` while Microsoft's device flow waits."""

    succeeded = Signal(str, str)
    failed = Signal(str, str)
    disconnected = Signal(str)
    device_code = Signal(str, str, str)
    busy_changed = Signal(bool)

    def __init__(
        self,
        ctx: AppContext,
        parent: QObject | None = None,
        *,
        salesforce_options: dict[str, Any] | None = None,
        microsoft_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._job: _Job | None = None
        self._cancel = threading.Event()
        self._sf_pending: list[str] = []  # the authorize URL of a Salesforce sign-in under way
        self._disconnecting = False
        # Extra keyword arguments for connect_salesforce / connect_microsoft (client ids, a CA
        # file, interactive=False ...): how tests and administrators point the flow elsewhere.
        self._sf_options = dict(salesforce_options or {})
        self._ms_options = dict(microsoft_options or {})

    @property
    def busy(self) -> bool:
        return self._job is not None

    def connect_salesforce(self, login_url: str) -> bool:
        options = dict(self._sf_options)
        opener: BrowserOpener = options.pop("open_browser", None) or webbrowser.open
        self._cancel = cancel = threading.Event()
        pending: list[str] = []

        def open_browser(url: str) -> object:
            pending.append(url)
            if cancel.is_set():
                _end_loopback_wait(url)
            return opener(url)

        def work() -> str:
            account = accounts.connect_salesforce(
                self._ctx, login_url, open_browser=open_browser, **options
            )
            return account.username

        self._sf_pending = pending
        return self._start(accounts.SALESFORCE, work)

    def connect_microsoft(self) -> bool:
        options = self._ms_options
        self._cancel = cancel = threading.Event()

        def show(code: DeviceCode) -> None:  # on the job thread: the signal is queued
            self.device_code.emit(code.message, code.user_code, code.verification_uri)

        def work() -> str:
            account = accounts.connect_microsoft(
                self._ctx,
                show_code=show,
                cancel=cancel,
                **options,
            )
            return account.username

        return self._start(accounts.MICROSOFT, work)

    def disconnect_account(self, kind: str) -> bool:
        def work() -> str:
            accounts.disconnect(self._ctx, kind)
            return ""

        started = self._start(kind, work)
        if started:
            self._disconnecting = True
        return started

    def cancel(self) -> None:
        """Stop waiting for the sign-in: the device-code poll, or Salesforce's loopback listener
        (answered with an error, as a declining browser would). The job then fails."""
        self._cancel.set()
        if self._job is not None and self._sf_pending:
            _end_loopback_wait(self._sf_pending[-1])

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Cancel and wait for a running job (at exit)."""
        job = self._job
        if job is None:
            return True
        self.cancel()
        return bool(job.wait(timeout_ms))

    def _start(self, kind: str, work: Callable[[], str]) -> bool:
        if self._job is not None:
            return False
        self._disconnecting = False
        job = _Job(self._ctx, kind, work)
        job.done.connect(self._on_done)
        self._job = job
        self.busy_changed.emit(True)
        job.start()
        return True

    @Slot(str, str, str)
    def _on_done(self, kind: str, username: str, error: str) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.wait(5_000)
            job.deleteLater()
        disconnecting, self._disconnecting = self._disconnecting, False
        cancelled = self._cancel.is_set()
        self._sf_pending = []
        self.busy_changed.emit(False)
        if error and cancelled:
            self.failed.emit(kind, "Sign-in was cancelled.")
        elif error:
            self.failed.emit(kind, error)
        elif disconnecting:
            self.disconnected.emit(kind)
        else:
            self.succeeded.emit(kind, username)


# --- dialogs -------------------------------------------------------------------------------------

LOGIN_CHOICES = (
    ("production", "Production (login.salesforce.com)"),
    ("sandbox", "Sandbox (test.salesforce.com)"),
    ("mydomain", "My Domain URL"),
)


class LoginHostDialog(QDialog):
    """Asks where to sign in to Salesforce: production, a sandbox org, or a My Domain URL."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect Salesforce")
        self.choice = QComboBox()
        for value, text in LOGIN_CHOICES:
            self.choice.addItem(text, value)
        self.domain = QLineEdit()
        self.domain.setPlaceholderText("https://yourcompany.my.salesforce.com")
        self.domain.setEnabled(False)
        self.message = error_label()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Sign in…")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.choice.currentIndexChanged.connect(self._changed)
        layout = QVBoxLayout(self)
        layout.addWidget(plain_label("Where do you sign in to Salesforce?"))
        layout.addWidget(self.choice)
        layout.addWidget(self.domain)
        layout.addWidget(
            help_label("Your browser opens Salesforce's sign-in page; come back here afterwards.")
        )
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.login_url = PRODUCTION_LOGIN

    def _changed(self) -> None:
        self.domain.setEnabled(self.choice.currentData() == "mydomain")
        self.message.setVisible(False)

    def selected_url(self) -> str:
        """The chosen login host; raises ValueError for an unusable My Domain URL."""
        value = self.choice.currentData()
        if value == "production":
            return PRODUCTION_LOGIN
        if value == "sandbox":
            return SANDBOX_LOGIN
        text = self.domain.text().strip()
        if not text:
            raise ValueError("Enter your My Domain URL, for example yourcompany.my.salesforce.com")
        return normalize_login_url(text)

    def _accept(self) -> None:
        try:
            self.login_url = self.selected_url()
        except ValueError as exc:
            self.message.setText(str(exc))
            self.message.setVisible(True)
            return
        self.accept()


def ask_login_url(parent: QWidget | None) -> str | None:
    dialog = LoginHostDialog(parent)
    return dialog.login_url if dialog.exec() == QDialog.DialogCode.Accepted else None


class DeviceCodeDialog(QDialog):
    """Shows Microsoft's device code as plain, selectable text, with Cancel."""

    def __init__(
        self, message: str, user_code: str, verification_uri: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect Microsoft 365")
        self.setModal(False)
        instructions = plain_label(
            f"On any device, open {verification_uri} and enter this code:"
            if verification_uri
            else "Enter this code on Microsoft's sign-in page:"
        )
        instructions.setWordWrap(True)
        self.code_label = QLabel(user_code)
        self.code_label.setObjectName("deviceCode")
        self.code_label.setTextFormat(Qt.TextFormat.PlainText)
        self.code_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.code_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        font.setFamily("monospace")
        self.code_label.setFont(font)
        details = help_label(message)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(instructions)
        layout.addWidget(self.code_label)
        layout.addWidget(details)
        layout.addWidget(self.cancel_button)
