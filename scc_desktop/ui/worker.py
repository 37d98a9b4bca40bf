"""The sync worker: one session at a time on its own thread, driven by a timer and Sync Now.

The GUI only sends intents (sync now, pause, resume, a setting changed) and listens to signals.
A session runs inside a slot, so the worker's event loop is busy while it runs: every intent that
arrives during a session is handled right after it, which is what makes "Sync Now during a
session queues exactly one more" hold without locks.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from scc_desktop.context import AppContext
from scc_desktop.runner import SessionOutcome, SessionRunner
from scc_desktop.settings import Value
from scc_desktop.store.history import History

log = logging.getLogger(__name__)

MAX_STRETCH_MINUTES = 60
API_USAGE_SLOWDOWN = 0.8
MINUTE_MS = 60_000
HEARTBEAT_MS = 60_000
# A wall clock that moved this much further than the monotonic clock means the machine slept.
SLEEP_JUMP_SECONDS = 30.0


@dataclass(frozen=True)
class Schedule:
    """How often sessions run now, and why it differs from the setting (empty when it doesn't)."""

    minutes: int
    reason: str = ""


def next_interval(base: int, current: int, outcome: SessionOutcome) -> int:
    """Quiet sessions stretch the interval step by step; a session with changes snaps it back."""
    if outcome.status == "failed":
        return current
    if outcome.changes > 0:
        return base
    ceiling = max(base, MAX_STRETCH_MINUTES)
    return min(ceiling, max(base, current * 2))


def apply_api_usage(minutes: int, outcome: SessionOutcome | None) -> Schedule:
    """Double the interval while Salesforce reports the org's daily API use above 80 %."""
    usage = outcome.api_usage if outcome is not None else None
    if usage is None or usage[1] <= 0:
        return Schedule(minutes)
    used, limit = usage
    if used / limit <= API_USAGE_SLOWDOWN:
        return Schedule(minutes)
    percent = round(100 * used / limit)
    return Schedule(
        minutes * 2,
        f"Salesforce API use is at {percent} % of the org's daily limit, so sessions run "
        f"every {minutes * 2} minutes.",
    )


def freeze_startup_heap() -> bool:
    """Move the objects alive before the first session (modules, Qt wrappers, settings) out of
    the garbage collector's reach, once per process: a full collection during a large sync
    otherwise walks them all while holding the GIL, and the GUI thread waits (a 54 ms GUI
    stall measured at the quick size). They live as long as the app anyway; what a session
    leaves behind is still collected as before. True when this call froze them."""
    if gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def failed_outcome(exc: BaseException) -> SessionOutcome:
    detail = str(exc).strip() or type(exc).__name__
    return SessionOutcome("failed", f"The session stopped with an error: {detail}")


class SyncWorker(QObject):
    """Lives on a QThread; owns the session runner, the schedule and the History records."""

    started = Signal(str)  # trigger: 'startup' | 'timer' | 'manual' | 'resume'
    progress = Signal(str)
    finished = Signal(object)  # SessionOutcome
    failed = Signal(str)  # a readable message; also emitted for a failed outcome
    state_changed = Signal(str)  # 'idle' | 'syncing' | 'paused'
    schedule_changed = Signal(object)  # Schedule
    setting_applied = Signal(str, object)  # a change the next session will run with

    def __init__(
        self,
        ctx: AppContext,
        runner_factory: Callable[[], SessionRunner],
        *,
        minute_ms: int = MINUTE_MS,
        heartbeat_ms: int = HEARTBEAT_MS,
        wall_clock: Callable[[], float] = time.time,
        monotonic_clock: Callable[[], float] = time.monotonic,
        run_at_start: bool = True,
    ) -> None:
        super().__init__()
        self._ctx = ctx
        self._run_at_start = run_at_start
        self._runner_factory = runner_factory
        self._minute_ms = minute_ms
        self._heartbeat_ms = heartbeat_ms
        self._wall = wall_clock
        self._mono = monotonic_clock
        self._runner: SessionRunner | None = None
        self._history: History | None = None
        self._timer: QTimer | None = None
        self._heartbeat: QTimer | None = None
        self._base_minutes = 10
        self._minutes = 10
        self._last_outcome: SessionOutcome | None = None
        self._paused = False
        self._running = False
        self._pending: str | None = None
        self._due_wall = 0.0
        self._beat_wall = 0.0
        self._beat_mono = 0.0
        self.sessions_run = 0

    # --- lifecycle (called in the worker thread) ------------------------------------------------

    @Slot()
    def start(self) -> None:
        """Connect QThread.started here: everything thread-bound is created in the worker thread."""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timer)
        self._heartbeat = QTimer(self)
        self._heartbeat.setInterval(self._heartbeat_ms)
        self._heartbeat.timeout.connect(self._on_heartbeat)
        try:
            self._history = History(self._ctx.db)
            interrupted = self._history.mark_interrupted()
            if interrupted:
                log.info("closed %d session(s) interrupted by a previous stop", interrupted)
            interval = self._ctx.settings().get("sync_interval_minutes")
            self._base_minutes = self._minutes = int(interval)
        except Exception:
            log.exception("could not read the schedule; using %d minutes", self._base_minutes)
        try:
            self._runner = self._runner_factory()
        except Exception as exc:
            log.exception("could not create the session runner")
            self.failed.emit(failed_outcome(exc).message)
        self._emit_schedule()
        self._arm(self._minutes)
        self._mark_heartbeat()
        self._heartbeat.start()
        self.state_changed.emit("idle")
        if self._run_at_start:
            self._request("startup")

    @Slot()
    def stop(self) -> None:
        """Stop the timers and this thread's loop; runs after any session in progress."""
        if self._timer is not None:
            self._timer.stop()
        if self._heartbeat is not None:
            self._heartbeat.stop()
        self._pending = None
        self._ctx.db.close()
        QThread.currentThread().quit()

    # --- intents ----------------------------------------------------------------------------------

    @Slot()
    def sync_now(self) -> None:
        self._request("manual")

    @Slot()
    def pause(self) -> None:
        """The timer stops; a manual Sync Now still runs."""
        self._paused = True
        if self._timer is not None:
            self._timer.stop()
        if not self._running:
            self.state_changed.emit("paused")

    @Slot()
    def resume(self) -> None:
        self._paused = False
        if not self._running:
            self.state_changed.emit("idle")
            remaining = self._due_wall - self._wall()
            if remaining <= 0:
                self._request("timer")
            else:
                self._start_timer_ms(int(remaining * 1000))  # _due_wall is already scaled

    @Slot(str, object)
    def settings_changed(self, key: str, value: object) -> None:
        """Only the interval matters here; the runner reads a fresh snapshot at each session."""
        if key == "sync_interval_minutes" and isinstance(value, int):
            self._base_minutes = self._minutes = value
            self._emit_schedule()
            self._arm(self._minutes)
        if isinstance(value, bool | int | str):
            applied: Value = value
            self.setting_applied.emit(key, applied)

    # --- state for observers --------------------------------------------------------------------

    @property
    def interval_minutes(self) -> int:
        return self._minutes

    @property
    def pending(self) -> str | None:
        return self._pending

    @property
    def paused(self) -> bool:
        return self._paused

    # --- internals --------------------------------------------------------------------------------

    def _request(self, trigger: str) -> None:
        if self._pending is not None:
            return  # exactly one session waits; further requests add nothing
        self._pending = trigger
        if not self._running:
            QTimer.singleShot(0, self, self._drain)

    @Slot()
    def _drain(self) -> None:
        if self._running or self._pending is None:
            return
        trigger = self._pending
        self._pending = None
        self._run_session(trigger)

    @Slot()
    def _on_timer(self) -> None:
        if not self._paused:
            self._request("timer")

    @Slot()
    def _on_heartbeat(self) -> None:
        """After sleep the single-shot timer is late by the time slept; catch up at once."""
        wall, mono = self._wall(), self._mono()
        jump = (wall - self._beat_wall) - (mono - self._beat_mono)
        self._beat_wall, self._beat_mono = wall, mono
        if jump < SLEEP_JUMP_SECONDS or self._paused or self._running:
            return
        log.info("clock jumped %.0f s (sleep or resume)", jump)
        if wall >= self._due_wall:
            self._request("resume")

    def _mark_heartbeat(self) -> None:
        self._beat_wall, self._beat_mono = self._wall(), self._mono()

    def _run_session(self, trigger: str) -> None:
        self._running = True
        if self._timer is not None:
            self._timer.stop()
        self.state_changed.emit("syncing")
        self.started.emit(trigger)
        freeze_startup_heap()
        try:
            if self._runner is None:
                self._runner = self._runner_factory()
            outcome = self._runner.run(trigger, self._report_progress)
        except Exception as exc:
            log.exception("session failed")
            outcome = failed_outcome(exc)
        self.sessions_run += 1
        self._record(trigger, outcome)
        self._last_outcome = outcome
        self._minutes = next_interval(self._base_minutes, self._minutes, outcome)
        schedule = self._emit_schedule()
        self._running = False
        self._mark_heartbeat()
        if outcome.status == "failed":
            self.failed.emit(outcome.message)
        self.finished.emit(outcome)
        self._arm(schedule.minutes)
        self.state_changed.emit("paused" if self._paused else "idle")

    def _report_progress(self, text: str) -> None:
        self.progress.emit(text)

    def _record(self, trigger: str, outcome: SessionOutcome) -> None:
        """History for runners that keep none (the engine's runner records its own run row)."""
        if self._history is None or outcome.summary.get("run_id") is not None:
            return
        try:
            run_id = self._history.start(trigger)
            self._history.finish(run_id, outcome.status, outcome.message, dict(outcome.summary))
        except Exception:
            log.exception("could not record the session")

    def _emit_schedule(self) -> Schedule:
        schedule = apply_api_usage(self._minutes, self._last_outcome)
        self.schedule_changed.emit(schedule)
        return schedule

    def _arm(self, minutes: int) -> None:
        self._due_wall = self._wall() + minutes * 60 * self._minute_ms / MINUTE_MS
        if not self._paused:
            self._start_timer_ms(minutes * self._minute_ms)

    def _start_timer_ms(self, ms: int) -> None:
        if self._timer is not None:
            self._timer.start(max(0, ms))


class WorkerHandle(QObject):
    """The GUI thread's side of the worker: intents go out as queued signals, never direct calls."""

    sync_now_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    setting_changed = Signal(str, object)
    stop_requested = Signal()

    def __init__(
        self,
        ctx: AppContext,
        runner_factory: Callable[[], SessionRunner],
        *,
        minute_ms: int = MINUTE_MS,
        heartbeat_ms: int = HEARTBEAT_MS,
        run_at_start: bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.worker = SyncWorker(
            ctx,
            runner_factory,
            minute_ms=minute_ms,
            heartbeat_ms=heartbeat_ms,
            run_at_start=run_at_start,
            wall_clock=wall_clock,
        )
        self.qthread = QThread()
        self.qthread.setObjectName("scc-sync-worker")
        self.worker.moveToThread(self.qthread)
        self.qthread.started.connect(self.worker.start)
        self.sync_now_requested.connect(self.worker.sync_now)
        self.pause_requested.connect(self.worker.pause)
        self.resume_requested.connect(self.worker.resume)
        self.setting_changed.connect(self.worker.settings_changed)
        self.stop_requested.connect(self.worker.stop)

    def start(self) -> None:
        self.qthread.start()

    def sync_now(self) -> None:
        self.sync_now_requested.emit()

    def pause(self) -> None:
        self.pause_requested.emit()

    def resume(self) -> None:
        self.resume_requested.emit()

    def change_setting(self, key: str, value: object) -> None:
        self.setting_changed.emit(key, value)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Ask the worker to stop after its current session; False if it did not in time."""
        if not self.qthread.isRunning():
            return True
        self.stop_requested.emit()
        return bool(self.qthread.wait(timeout_ms))
