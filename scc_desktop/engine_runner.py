"""The real SessionRunner: settings snapshot -> connectors -> per-kind repositories -> engine.

It is the only place that knows all four layers; the tray worker and `sync --once` both run it.
Connections come from a provider, so the built-in sandbox and real accounts share every line of
the session. A reconnect-needed or keyring error ends the session with the user's message, never
"unknown error".
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scc_desktop.context import AppContext
from scc_desktop.demo import DemoAccounts
from scc_desktop.errors import NeedsUser
from scc_desktop.kind_names import kind_name
from scc_desktop.mailbox.graph.mailbox import GraphMailbox
from scc_desktop.mailbox.protocol import MailboxError
from scc_desktop.runner import NOT_CONNECTED_MESSAGE, Progress, SessionOutcome
from scc_desktop.salesforce.errors import SalesforceError
from scc_desktop.salesforce.gateway import SalesforceGateway, connect
from scc_desktop.settings import SettingsSnapshot
from scc_desktop.store.accounts import Accounts
from scc_desktop.store.history import History
from scc_desktop.sync.email_session import run_email_stage
from scc_desktop.sync.engine import KindOptions
from scc_desktop.sync.engine import Progress as EngineProgress
from scc_desktop.sync.fields import Kind
from scc_desktop.sync.mailbox_side import mailbox_repositories
from scc_desktop.sync.mailbox_side import task_calendar_repository as mailbox_task_calendar
from scc_desktop.sync.planner import Direction, Policy
from scc_desktop.sync.salesforce_side import TASK_PREFIX, event_window, salesforce_repositories
from scc_desktop.sync.salesforce_side import task_calendar_repository as salesforce_task_calendar
from scc_desktop.sync.session import KindJob, kind_options, run_session
from scc_desktop.sync.state import SyncState

log = logging.getLogger(__name__)


@dataclass
class Connections:
    """Both sides, connected for one session."""

    gateway: SalesforceGateway
    mailbox: GraphMailbox
    salesforce_user_id: str


class ConnectionProvider(Protocol):
    def connect(self, ctx: AppContext) -> Connections | None:
        """Both sides, or None when an account is not connected yet."""
        ...


class EngineRunner:
    """Runs one session over both connectors; created and used in one (worker) thread."""

    def __init__(
        self,
        ctx: AppContext,
        provider: ConnectionProvider,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ctx = ctx
        self._provider = provider
        self._clock = clock

    def run(self, trigger: str, progress: Progress) -> SessionOutcome:
        settings = self._ctx.settings().snapshot()
        try:
            connections = self._provider.connect(self._ctx)
            if connections is None:
                return SessionOutcome("not_connected", NOT_CONNECTED_MESSAGE)
            now = self._clock()
            state = SyncState(self._ctx.db)
            sf_repos = salesforce_repositories(
                connections.gateway,
                settings,
                user_id=connections.salesforce_user_id,
                now=now,
                task_links=state.has_links("event", TASK_PREFIX),
                zone=local_zone(),
            )
            mb_repos = mailbox_repositories(connections.mailbox, settings, now=now)
            if shows_tasks(settings, state):
                shown = mailbox_task_calendar(connections.mailbox, settings, now=now)
                if settings.flag("show_sf_tasks_in_calendar"):
                    shown.ensure_category()
                mb_repos["task_calendar"] = shown
                sf_repos["task_calendar"] = salesforce_task_calendar(
                    connections.gateway, settings, user_id=connections.salesforce_user_id, now=now
                )
            jobs = [
                KindJob(kind, mb_repos[kind], sf_repos[kind], job_options(kind, settings, now))
                for kind in mb_repos
            ]
            gateway, mailbox = connections.gateway, connections.mailbox

            def api_calls() -> dict[str, int]:
                return {
                    "salesforce": gateway.stats.total,
                    "graph": mailbox.http.call_counts()["total"],
                }

            def tick(event: EngineProgress) -> None:
                word = kind_name(event.kind).many
                if event.phase == "done":
                    progress(f"{word}: done")
                elif event.total:
                    progress(f"{word}: {event.phase} {event.done}/{event.total}")
                else:
                    progress(f"{word}: {event.phase}")

            summary = run_session(jobs, state, trigger=trigger, progress=tick, api_calls=api_calls)
            calls_before = api_calls()
            run_id = summary.get("run_id")
            try:
                email = run_email_stage(
                    gateway,
                    mailbox,
                    state,
                    settings,
                    user_id=connections.salesforce_user_id,
                    own_addresses=[mailbox.owner()],
                    now=now,
                    run_id=run_id if isinstance(run_id, int) else None,
                    progress=progress,
                )
            except (SalesforceError, MailboxError) as exc:
                if isinstance(exc, NeedsUser):
                    raise
                # contacts, calendar and tasks are done; the emails wait for the next session
                log.warning("email stage stopped: %s", exc)
                summary = dict(summary)
                summary["status"] = "partial"
                summary["email"] = {"error": unreachable(exc)}
            else:
                summary = merge_email(summary, email.as_dict(), calls_before, api_calls())
        except NeedsUser as exc:  # reconnect an account, unlock the keyring
            return self._needs_user(exc.user_message)
        except (SalesforceError, MailboxError) as exc:
            log.warning("session stopped: %s", exc)
            return SessionOutcome("failed", unreachable(exc), needs_attention=False)
        except Exception as exc:
            message = getattr(exc, "user_message", "")
            if message:  # sign-in errors carry one
                return self._needs_user(str(message))
            raise
        usage = gateway.usage
        status = str(summary["status"])
        message = describe(summary)
        run_id = summary.get("run_id")
        if isinstance(run_id, int):  # the engine closed the run; give History the readable line
            History(self._ctx.db).finish(run_id, status, message, summary)
        return SessionOutcome(
            status,
            message,
            summary,
            needs_attention=bool(summary.get("needs_attention")),
            changes=int(str(summary.get("changes", 0))),
            api_usage=(usage.used, usage.limit) if usage is not None else None,
        )

    @staticmethod
    def _needs_user(message: str) -> SessionOutcome:
        return SessionOutcome("failed", message, needs_attention=True)


def shows_tasks(settings: SettingsSnapshot, state: SyncState) -> bool:
    """Whether the session runs the Salesforce Tasks shown in the calendar: while that setting
    is on, and once more after it was turned off (to take them away)."""
    return settings.flag("show_sf_tasks_in_calendar") or state.has_links("task_calendar")


def job_options(kind: Kind, settings: SettingsSnapshot, now: datetime) -> KindOptions:
    """A kind's options; calendar links set aside are pruned once their item ended before the
    window (both sides' reads start at or after the first whole UTC day of it). The Tasks
    shown in the calendar mirror Salesforce: one-way, Salesforce wins, and no mass-deletion
    guard (their calendar items are copies, taken away with the setting)."""
    if kind == "task_calendar":
        return KindOptions(
            direction=Direction.SF_TO_MAILBOX,
            policy=Policy.SALESFORCE_WINS,
            mass_delete_min=sys.maxsize,
            mirror=True,
            expire_before=event_window(settings, now)[0],
        )
    options = kind_options(kind, settings.values)
    if kind == "event":
        options = replace(options, expire_before=event_window(settings, now)[0])
    return options


def local_zone() -> tzinfo:
    """The computer's time zone, by its IANA name where the system tells it (TZ, or the
    /etc/localtime link), else its current UTC offset."""
    names = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            names.append(target.split("zoneinfo/", 1)[1])
    for name in names:
        if name:
            with contextlib.suppress(ValueError, ZoneInfoNotFoundError):
                return ZoneInfo(name)
    return datetime.now().astimezone().tzinfo or UTC


def unreachable(exc: Exception) -> str:
    """A failure the next session may not meet (an outage, a dropped connection), for the user."""
    if isinstance(exc, SalesforceError):
        return exc.user_message
    return (
        "Microsoft 365 did not answer as expected; the next session tries again. "
        f"({str(exc)[:200]})"
    )


def merge_email(
    summary: dict[str, object],
    email: dict[str, object],
    calls_before: dict[str, int],
    calls_after: dict[str, int],
) -> dict[str, object]:
    """Fold the email stage into the session summary: its counts, its calls, its issues."""
    merged = dict(summary)
    merged["email"] = email
    calls = summary.get("api_calls")
    totals = dict(calls) if isinstance(calls, dict) else {}
    for service, after in calls_after.items():
        totals[service] = int(totals.get(service, 0)) + after - calls_before.get(service, 0)
    merged["api_calls"] = totals
    shared = email.get("shared", 0)
    failed = email.get("failed", 0)
    if isinstance(shared, int) and shared:
        merged["changes"] = int(str(summary.get("changes", 0))) + shared
    if isinstance(failed, int) and failed and merged.get("status") == "ok":
        merged["status"] = "partial"
    issues = summary.get("issues")
    email_issues = email.get("issues")
    if isinstance(issues, list) and isinstance(email_issues, list):
        merged["issues"] = [*issues, *({"kind": "email", "title": t} for t in email_issues)]
    return merged


def describe(summary: dict[str, object]) -> str:
    """A one-line account of a session for the tooltip and History."""
    counts = summary.get("counts")
    parts: list[str] = []
    if isinstance(counts, dict):
        for kind, sides in counts.items():
            if not isinstance(sides, dict):
                continue
            total = sum(
                int(n) for side in sides.values() if isinstance(side, dict) for n in side.values()
            )
            if total:
                parts.append(kind_name(kind).count(total))
    issues = summary.get("issues")
    issue_count = len(issues) if isinstance(issues, list) else 0
    if len(parts) > 1:
        parts[-2:] = [f"{parts[-2]} and {parts[-1]}"]
    email = summary.get("email")
    shared = email.get("shared", 0) if isinstance(email, dict) else 0
    saved = f"saved {shared} email{'s' if shared != 1 else ''} to Salesforce" if shared else ""
    if parts:
        text = "Synced " + ", ".join(parts) + (f"; {saved}" if saved else "")
    else:
        text = saved[:1].upper() + saved[1:] if saved else "Everything is up to date"
    if issue_count:
        text += f"; {issue_count} issue{'s' if issue_count != 1 else ''} to look at"
    return text


class SandboxConnections:
    """The built-in sandbox's demo accounts, signed in once per process.

    The clients are kept between sessions (in the worker thread that uses them), so a quiet
    session pays no set-up calls: one call per delta stream and per Salesforce object kind.
    """

    def __init__(self, accounts: DemoAccounts) -> None:
        self._accounts = accounts
        self._connections: Connections | None = None

    def connect(self, ctx: AppContext) -> Connections:
        if self._connections is None:
            accounts = self._accounts
            gateway = connect(
                accounts.salesforce,
                db=ctx.db,
                org_id=accounts.salesforce_account.org_id,
                user_id=accounts.salesforce_account.user_id,
            )
            mailbox = GraphMailbox.connect(
                accounts.graph_url,
                accounts.microsoft,
                ca_file=str(accounts.ca_file),
                owner=accounts.microsoft_account.username,
            )
            self._connections = Connections(gateway, mailbox, accounts.salesforce_account.user_id)
            store = Accounts(ctx.db)
            sf = accounts.salesforce_account
            store.save(
                "salesforce",
                sf.username,
                display_name=f"{sf.display_name} (sandbox)",
                endpoint=sf.instance_url,
                detail=sf.detail(),
            )
            store.save(
                "microsoft",
                accounts.microsoft_account.username,
                display_name="Demo mailbox (sandbox)",
                endpoint=accounts.graph_url,
            )
        return self._connections


class SandboxRunnerFactory:
    """For the tray with `--sandbox`: called in the worker thread, it starts the sandbox and signs
    in there, so the GUI thread never waits on it; `close()` stops the sandbox at exit.

    `provider()` hands another thread (the Save Email / New Records windows') its own
    connections to the same sandbox, started on first use by whichever thread comes first."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._demo: DemoAccounts | None = None
        self._lock = threading.Lock()

    def demo(self) -> DemoAccounts:
        """The running sandbox, started in the calling thread if needed (thread-safe)."""
        from scc_desktop.demo import start_demo

        with self._lock:
            if self._demo is None:
                self._demo = start_demo(self._ctx.paths)
            return self._demo

    def __call__(self) -> EngineRunner:
        return EngineRunner(self._ctx, SandboxConnections(self.demo()))

    def provider(self) -> ConnectionProvider:
        return _LazySandboxProvider(self)

    def close(self) -> None:
        with self._lock:
            if self._demo is not None:
                self._demo.stop()
                self._demo = None


class _LazySandboxProvider:
    """Connections to the factory's sandbox, made on first use in the thread that uses them."""

    def __init__(self, factory: SandboxRunnerFactory) -> None:
        self._factory = factory
        self._connections: SandboxConnections | None = None

    def connect(self, ctx: AppContext) -> Connections:
        if self._connections is None:
            self._connections = SandboxConnections(self._factory.demo())
        return self._connections.connect(ctx)
