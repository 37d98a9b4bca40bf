"""The Save Email, New Records and Unresolved Emails windows' work, on a thread of its own.

Every request leaves the GUI thread as a queued signal; `ActionsService` runs it on its own
QThread with its own connections (from the `ConnectionProvider` run_app hands in), its own
Settings and its own SQLite connection, and answers with a signal. It is not the sync worker, so
saving an email works while syncing is paused or a long session runs.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from PySide6.QtCore import QObject, QThread, Signal, Slot

from scc_desktop import email_actions
from scc_desktop.context import AppContext
from scc_desktop.email_actions import Correspondent, RecordChoice
from scc_desktop.engine_runner import ConnectionProvider, Connections
from scc_desktop.errors import NeedsUser
from scc_desktop.mailbox.protocol import MailboxError
from scc_desktop.salesforce.errors import SalesforceError
from scc_desktop.settings import Settings, SettingsError
from scc_desktop.sync.state import SyncState

log = logging.getLogger(__name__)

NOT_CONNECTED = "Connect your Salesforce and Microsoft 365 accounts in Settings first."

# Action names carried by `failed`, so a window shows only its own failures.
LOAD_MESSAGES = "load_messages"
SEARCH = "search"
SAVE = "save"
LOAD_CORRESPONDENTS = "load_correspondents"
CREATE_CONTACT = "create_contact"
CREATE_LEAD = "create_lead"
DO_NOT_SYNC = "do_not_sync"
LOAD_UNRESOLVED = "load_unresolved"
LINK = "link"


class _NotConnected(Exception):
    pass


def user_text(exc: BaseException) -> str:
    """What the window says about a failure (never a traceback)."""
    if isinstance(exc, _NotConnected):
        return NOT_CONNECTED
    if isinstance(exc, NeedsUser | SalesforceError):
        return str(exc.user_message)
    if isinstance(exc, MailboxError | SettingsError | ValueError):
        return str(exc)
    message = getattr(exc, "user_message", "")
    return str(message) if message else f"Unexpected error: {exc}"


class EmailActions(QObject):
    """What the windows talk to: requests as methods, answers as signals (fakes subclass it)."""

    messages_loaded = Signal(list, bool)  # [MessageSummary], email_thread_autosave
    records_found = Signal(str, list)  # the searched text, [RecordChoice]
    saved = Signal(object)  # SaveOutcome
    correspondents_loaded = Signal(list)  # [Correspondent]
    handled = Signal(str, str)  # address, what was done (for the window's status line)
    setting_saved = Signal(str, object)  # key, canonical value (Do Not Sync's blacklist)
    unresolved_loaded = Signal(list)  # [UnresolvedEmail]
    unresolved_count = Signal(int)  # emails saved without a link, for the tray menu
    linked = Signal(str, str)  # the email's key, what was done (for the window's status line)
    failed = Signal(str, str)  # action, message for the user

    def load_messages(self) -> None:
        raise NotImplementedError

    def search(self, text: str) -> None:
        raise NotImplementedError

    def save(
        self, message_id: str, related_to_id: str, related_to_name: str, autosave_thread: bool
    ) -> None:
        raise NotImplementedError

    def load_correspondents(self) -> None:
        raise NotImplementedError

    def create_contact(self, address: str, name: str, account_name: str) -> None:
        raise NotImplementedError

    def create_lead(self, address: str, name: str, company: str) -> None:
        raise NotImplementedError

    def do_not_sync(self, address: str) -> None:
        raise NotImplementedError

    def load_unresolved(self) -> None:
        raise NotImplementedError

    def count_unresolved(self) -> None:
        raise NotImplementedError

    def link(self, key: str, record: RecordChoice) -> None:
        raise NotImplementedError


class ActionsService(QObject):
    """Lives on the actions thread; each slot runs there and answers with a signal."""

    messages_loaded = Signal(list, bool)
    records_found = Signal(str, list)
    saved = Signal(object)
    correspondents_loaded = Signal(list)
    handled = Signal(str, str)
    setting_saved = Signal(str, object)
    unresolved_loaded = Signal(list)
    unresolved_count = Signal(int)
    linked = Signal(str, str)
    failed = Signal(str, str)

    def __init__(self, ctx: AppContext, provider: ConnectionProvider) -> None:
        super().__init__()
        self._ctx = ctx
        self._provider = provider
        self._settings: Settings | None = None

    def _live_settings(self) -> Settings:
        """Created on first use, so its connection belongs to this thread; re-read each time."""
        if self._settings is None:
            self._settings = self._ctx.settings()
        else:
            self._settings.reload()
        return self._settings

    def _connect(self) -> Connections:
        connections = self._provider.connect(self._ctx)
        if connections is None:
            raise _NotConnected()
        return connections

    def _fail(self, action: str, exc: Exception) -> None:
        if not isinstance(exc, _NotConnected | NeedsUser | SalesforceError | SettingsError):
            log.exception("%s failed", action)
        self.failed.emit(action, user_text(exc))

    @Slot()
    def load_messages(self) -> None:
        try:
            connections = self._connect()
            messages = email_actions.recent_messages(connections.mailbox)
            autosave = bool(self._live_settings().get("email_thread_autosave"))
        except Exception as exc:
            self._fail(LOAD_MESSAGES, exc)
            return
        self.messages_loaded.emit(messages, autosave)

    @Slot(str)
    def search(self, text: str) -> None:
        try:
            found = email_actions.search_records(self._connect().gateway, text)
        except Exception as exc:
            self._fail(SEARCH, exc)
            return
        self.records_found.emit(text, found)

    @Slot(str, str, str, bool)
    def save(
        self, message_id: str, related_to_id: str, related_to_name: str, autosave_thread: bool
    ) -> None:
        try:
            connections = self._connect()
            outcome = email_actions.save_email(
                connections.gateway,
                connections.mailbox,
                SyncState(self._ctx.db),
                self._live_settings().snapshot(),
                message_id,
                related_to_id=related_to_id or None,
                related_to_name=related_to_name,
                autosave_thread=autosave_thread,
                user_id=connections.salesforce_user_id,
                own_addresses=[connections.mailbox.owner()],
                now=datetime.now(UTC),
            )
        except Exception as exc:
            self._fail(SAVE, exc)
            return
        self.saved.emit(outcome)
        if outcome.status == "unresolved":
            self.count_unresolved()

    @Slot()
    def load_correspondents(self) -> None:
        try:
            connections = self._connect()
            people = email_actions.frequent_correspondents(
                connections.mailbox,
                connections.gateway,
                self._live_settings().snapshot(),
                [connections.mailbox.owner()],
            )
        except Exception as exc:
            self._fail(LOAD_CORRESPONDENTS, exc)
            return
        self.correspondents_loaded.emit(people)

    @Slot(str, str, str)
    def create_contact(self, address: str, name: str, account_name: str) -> None:
        try:
            email_actions.create_contact(
                self._connect().gateway, Correspondent(address, name, 0), account_name or None
            )
        except Exception as exc:
            self._fail(CREATE_CONTACT, exc)
            return
        self.handled.emit(address, f"Contact created for {address}.")

    @Slot(str, str, str)
    def create_lead(self, address: str, name: str, company: str) -> None:
        try:
            email_actions.create_lead(
                self._connect().gateway, Correspondent(address, name, 0), company
            )
        except Exception as exc:
            self._fail(CREATE_LEAD, exc)
            return
        self.handled.emit(address, f"Lead created for {address}.")

    @Slot(str)
    def do_not_sync(self, address: str) -> None:
        try:
            value = email_actions.do_not_sync(self._live_settings(), address)
        except Exception as exc:
            self._fail(DO_NOT_SYNC, exc)
            return
        self.setting_saved.emit("blacklist", value)
        self.handled.emit(address, f"{address} added to your Blacklisted Domains.")

    @Slot()
    def load_unresolved(self) -> None:
        """Read from the state file only: works before any account is connected."""
        try:
            state = SyncState(self._ctx.db)
            emails = email_actions.list_unresolved(state)
        except Exception as exc:
            self._fail(LOAD_UNRESOLVED, exc)
            return
        self.unresolved_loaded.emit(emails)
        self.unresolved_count.emit(len(emails))

    @Slot()
    def count_unresolved(self) -> None:
        try:
            count = email_actions.count_unresolved(SyncState(self._ctx.db))
        except Exception:
            log.exception("counting unresolved emails failed")
            return
        self.unresolved_count.emit(count)

    @Slot(str, object)
    def link(self, key: str, record: object) -> None:
        try:
            if not isinstance(record, RecordChoice):
                raise ValueError("Pick a record to link the email to.")
            state = SyncState(self._ctx.db)
            text = email_actions.link_email(self._connect().gateway, state, key, record)
        except KeyError:
            self.failed.emit(LINK, "This email is no longer unresolved.")
            self.load_unresolved()
            return
        except Exception as exc:
            self._fail(LINK, exc)
            return
        self.linked.emit(key, text)
        self.count_unresolved()

    @Slot()
    def close(self) -> None:
        """Close this thread's connection and end the thread's loop."""
        self._ctx.db.close()
        QThread.currentThread().quit()


class ActionsClient(EmailActions):
    """The GUI thread's handle on the actions thread."""

    _load_messages = Signal()
    _search = Signal(str)
    _save = Signal(str, str, str, bool)
    _load_correspondents = Signal()
    _create_contact = Signal(str, str, str)
    _create_lead = Signal(str, str, str)
    _do_not_sync = Signal(str)
    _load_unresolved = Signal()
    _count_unresolved = Signal()
    _link = Signal(str, object)
    _close = Signal()

    def __init__(self, ctx: AppContext, provider: ConnectionProvider) -> None:
        super().__init__()
        self.service = ActionsService(ctx, provider)
        self.qthread = QThread()
        self.qthread.setObjectName("scc-actions")
        self.service.moveToThread(self.qthread)
        s = self.service
        self._load_messages.connect(s.load_messages)
        self._search.connect(s.search)
        self._save.connect(s.save)
        self._load_correspondents.connect(s.load_correspondents)
        self._create_contact.connect(s.create_contact)
        self._create_lead.connect(s.create_lead)
        self._do_not_sync.connect(s.do_not_sync)
        self._load_unresolved.connect(s.load_unresolved)
        self._count_unresolved.connect(s.count_unresolved)
        self._link.connect(s.link)
        self._close.connect(s.close)
        s.messages_loaded.connect(self.messages_loaded)
        s.records_found.connect(self.records_found)
        s.saved.connect(self.saved)
        s.correspondents_loaded.connect(self.correspondents_loaded)
        s.handled.connect(self.handled)
        s.setting_saved.connect(self.setting_saved)
        s.unresolved_loaded.connect(self.unresolved_loaded)
        s.unresolved_count.connect(self.unresolved_count)
        s.linked.connect(self.linked)
        s.failed.connect(self.failed)
        self.qthread.start()

    def load_messages(self) -> None:
        self._load_messages.emit()

    def search(self, text: str) -> None:
        self._search.emit(text)

    def save(
        self, message_id: str, related_to_id: str, related_to_name: str, autosave_thread: bool
    ) -> None:
        self._save.emit(message_id, related_to_id, related_to_name, autosave_thread)

    def load_correspondents(self) -> None:
        self._load_correspondents.emit()

    def create_contact(self, address: str, name: str, account_name: str) -> None:
        self._create_contact.emit(address, name, account_name)

    def create_lead(self, address: str, name: str, company: str) -> None:
        self._create_lead.emit(address, name, company)

    def do_not_sync(self, address: str) -> None:
        self._do_not_sync.emit(address)

    def load_unresolved(self) -> None:
        self._load_unresolved.emit()

    def count_unresolved(self) -> None:
        self._count_unresolved.emit()

    def link(self, key: str, record: RecordChoice) -> None:
        self._link.emit(key, record)

    def shutdown(self, timeout_ms: int = 5_000) -> bool:
        if not self.qthread.isRunning():
            return True
        self._close.emit()
        return bool(self.qthread.wait(timeout_ms))
