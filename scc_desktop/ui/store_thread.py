"""The UI's own SQLite access, on a thread of its own.

The GUI thread never waits on the disk, and this thread is not the sync worker's: a setting the
user changes is saved at once even while a long session holds the worker.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from scc_desktop.context import AppContext
from scc_desktop.setting_effects import apply_effect, reconcile
from scc_desktop.settings import Settings, SettingsError, Value
from scc_desktop.store.history import History
from scc_desktop.store.issues import IssueRecord, Issues
from scc_desktop.sync.state import SyncState

log = logging.getLogger(__name__)

ATTENTION_CATEGORIES = ("conflict", "mass_delete")
ANSWERS = {
    "error": ("retry",),
    "conflict": ("keep_mailbox", "keep_salesforce"),
    "mass_delete": ("allow", "restore"),
    "notice": ("dismissed",),
}


def waiting(issue: IssueRecord) -> bool:
    """Still waits for the user: not a conflict whose "keep this one" awaits the next session."""
    return not (issue.category == "conflict" and issue.resolution.startswith("keep_"))


def issue_counts(issues: list[IssueRecord]) -> tuple[int, int]:
    """(open issues waiting for the user, of which conflicts and held deletions)."""
    open_ = [i for i in issues if waiting(i)]
    return len(open_), sum(1 for i in open_ if i.category in ATTENTION_CATEGORIES)


@dataclass(frozen=True)
class AccountState:
    """One connected account as the Accounts section shows it (no secrets)."""

    kind: str
    username: str
    display_name: str
    state: str
    detail: dict[str, Any]


class StoreService(QObject):
    """Lives on the store thread; every slot runs there and answers with a signal."""

    settings_loaded = Signal(dict, dict)  # {key: value}, {key: lock reason}
    setting_saved = Signal(str, object)  # key, canonical value
    setting_refused = Signal(str, str)  # key, message for the user
    history_loaded = Signal(list)  # [RunRecord]
    issues_loaded = Signal(list)  # [IssueRecord]
    issue_count = Signal(int)  # open issues waiting for the user
    issue_counts = Signal(int, int)  # the same, and how many of them need attention
    issue_resolved = Signal(int)
    issue_answered = Signal(int, str)  # id, answer: the next session applies it
    accounts_loaded = Signal(list)  # [AccountState]
    error = Signal(str)

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self._ctx = ctx
        self._settings: Settings | None = None
        self._reconciled = False  # the login item is checked once per run

    def _live_settings(self) -> Settings:
        """Created on first use, so its connection belongs to this thread."""
        if self._settings is None:
            self._settings = self._ctx.settings()
        return self._settings

    @Slot()
    def load_settings(self) -> None:
        try:
            settings = self._live_settings()
            settings.reload()
            values = {decl.key: value for decl, value in settings.items()}
            reason = settings.policy.reason
            locked = dict.fromkeys(settings.policy.locked, reason)
        except Exception as exc:
            self._report("Settings could not be read", exc)
            return
        self.settings_loaded.emit(values, locked)
        if self._reconciled:
            return
        try:
            reconcile(self._ctx.paths, bool(values["start_at_login"]))  # once per run
            self._reconciled = True
        except OSError as exc:
            self._report("The start-at-login entry could not be updated", exc)

    @Slot(str, object)
    def set_setting(self, key: str, value: object) -> None:
        if not isinstance(value, bool | int | str):
            self.setting_refused.emit(key, f"{key}: unsupported value {value!r}")
            return
        raw: Value = value
        try:
            saved = self._live_settings().set(key, raw)
        except SettingsError as exc:
            self.setting_refused.emit(key, str(exc))
            return
        except Exception as exc:
            log.exception("saving %s failed", key)
            self.setting_refused.emit(key, f"Could not save the setting: {exc}")
            return
        self.setting_saved.emit(key, saved)
        try:
            apply_effect(self._ctx.paths, key, saved)
        except OSError as exc:
            self._report("The setting was saved but could not be applied", exc)

    @Slot(int)
    def load_history(self, limit: int) -> None:
        try:
            runs = History(self._ctx.db).recent(limit)
        except Exception as exc:
            self._report("History could not be read", exc)
            return
        self.history_loaded.emit(runs)

    @Slot()
    def load_issues(self) -> None:
        try:
            issues = Issues(self._ctx.db).open()
        except Exception as exc:
            self._report("Sync Issues could not be read", exc)
            return
        self.issues_loaded.emit(issues)
        self._emit_counts(issues)

    @Slot()
    def count_issues(self) -> None:
        try:
            issues = Issues(self._ctx.db).open()
        except Exception as exc:
            self._report("Sync Issues could not be counted", exc)
            return
        self._emit_counts(issues)

    def _emit_counts(self, issues: list[IssueRecord]) -> None:
        count, attention = issue_counts(issues)
        self.issue_count.emit(count)
        self.issue_counts.emit(count, attention)

    @Slot(int, str)
    def resolve_issue(self, issue_id: int, resolution: str) -> None:
        try:
            Issues(self._ctx.db).resolve(issue_id, resolution)
        except Exception as exc:
            self._report("The issue could not be resolved", exc)
            return
        self.issue_resolved.emit(issue_id)
        self.load_issues()

    @Slot(int, str)
    def answer_issue(self, issue_id: int, answer: str) -> None:
        """The user's answer, in the engine's terms; `issue_answered` once it is saved.

        Retry closes the error (the engine keeps failed items on its retry list and records the
        error again if it fails again); keep_mailbox / keep_salesforce leave the conflict open for
        the next session to apply; allow / restore answer a held mass deletion.
        """
        try:
            refusal = self._answer(issue_id, answer)
        except Exception as exc:
            self._report("Your answer could not be saved", exc)
            refusal = "failed"
        else:
            if refusal:
                self.error.emit(refusal)
        self.load_issues()
        if not refusal:
            self.issue_answered.emit(issue_id, answer)

    def _answer(self, issue_id: int, answer: str) -> str:
        """Save the answer; a message for the user when it does not apply, else ''."""
        state = SyncState(self._ctx.db)
        issue = next((i for i in state.open_issues() if i.id == issue_id), None)
        if issue is None:
            return "That issue was settled in the meantime."
        if answer not in ANSWERS.get(issue.category, ()):
            return f"{answer!r} does not answer a {issue.category} issue."
        if answer == "keep_mailbox":
            state.keep_version(issue_id, "mailbox")
        elif answer == "keep_salesforce":
            state.keep_version(issue_id, "salesforce")
        else:
            state.resolve_issue(issue_id, answer)
        return ""

    @Slot()
    def load_accounts(self) -> None:
        try:
            rows = (
                self._ctx.db.connect()
                .execute("SELECT kind, username, display_name, state, detail FROM accounts")
                .fetchall()
            )
            accounts = [
                AccountState(
                    str(r["kind"]),
                    str(r["username"]),
                    str(r["display_name"]),
                    str(r["state"]),
                    json.loads(r["detail"] or "{}"),
                )
                for r in rows
            ]
        except Exception as exc:
            self._report("Accounts could not be read", exc)
            return
        self.accounts_loaded.emit(accounts)

    @Slot()
    def close(self) -> None:
        """Close this thread's connection and end the thread's loop."""
        self._ctx.db.close()
        QThread.currentThread().quit()

    def _report(self, what: str, exc: Exception) -> None:
        log.exception("%s", what)
        self.error.emit(f"{what}: {exc}")


class StoreClient(QObject):
    """The GUI thread's handle: requests leave as queued signals, answers come back as signals."""

    _set_setting = Signal(str, object)
    _load_settings = Signal()
    _load_history = Signal(int)
    _load_issues = Signal()
    _count_issues = Signal()
    _resolve_issue = Signal(int, str)
    _answer_issue = Signal(int, str)
    _load_accounts = Signal()
    _close = Signal()

    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.service = StoreService(ctx)
        self.qthread = QThread()
        self.qthread.setObjectName("scc-store")
        self.service.moveToThread(self.qthread)
        self._set_setting.connect(self.service.set_setting)
        self._load_settings.connect(self.service.load_settings)
        self._load_history.connect(self.service.load_history)
        self._load_issues.connect(self.service.load_issues)
        self._count_issues.connect(self.service.count_issues)
        self._resolve_issue.connect(self.service.resolve_issue)
        self._answer_issue.connect(self.service.answer_issue)
        self._load_accounts.connect(self.service.load_accounts)
        self._close.connect(self.service.close)
        # Answers, re-exported so windows connect to one object.
        self.settings_loaded = self.service.settings_loaded
        self.setting_saved = self.service.setting_saved
        self.setting_refused = self.service.setting_refused
        self.history_loaded = self.service.history_loaded
        self.issues_loaded = self.service.issues_loaded
        self.issue_count = self.service.issue_count
        self.issue_counts = self.service.issue_counts
        self.issue_resolved = self.service.issue_resolved
        self.issue_answered = self.service.issue_answered
        self.accounts_loaded = self.service.accounts_loaded
        self.error = self.service.error
        self.qthread.start()

    def set_setting(self, key: str, value: Value) -> None:
        self._set_setting.emit(key, value)

    def load_settings(self) -> None:
        self._load_settings.emit()

    def load_history(self, limit: int = 100) -> None:
        self._load_history.emit(limit)

    def load_issues(self) -> None:
        self._load_issues.emit()

    def count_issues(self) -> None:
        self._count_issues.emit()

    def resolve_issue(self, issue_id: int, resolution: str) -> None:
        self._resolve_issue.emit(issue_id, resolution)

    def answer_issue(self, issue_id: int, answer: str) -> None:
        """retry | keep_mailbox | keep_salesforce | allow | restore | dismissed."""
        self._answer_issue.emit(issue_id, answer)

    def load_accounts(self) -> None:
        self._load_accounts.emit()

    def shutdown(self, timeout_ms: int = 5_000) -> bool:
        if not self.qthread.isRunning():
            return True
        self._close.emit()
        return bool(self.qthread.wait(timeout_ms))
