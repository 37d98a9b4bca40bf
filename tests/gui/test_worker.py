"""The sync worker on its own thread: timer, Sync Now queue, pause, settings, adaptive interval."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from scc_desktop.context import AppContext
from scc_desktop.runner import SessionOutcome
from scc_desktop.store.history import History
from scc_desktop.ui.worker import Schedule, WorkerHandle, freeze_startup_heap, next_interval

LONG = 60_000  # real minutes: the timer never fires during a test


@pytest.fixture
def make_worker(
    ctx: AppContext, runner_factory: Callable[[], Any], make_relay: Callable[[object], Any]
) -> Iterator[Callable[..., WorkerHandle]]:
    handles: list[WorkerHandle] = []

    def make(**options: Any) -> WorkerHandle:
        options.setdefault("minute_ms", LONG)
        options.setdefault("run_at_start", False)
        handle = WorkerHandle(ctx, runner_factory, **options)
        handle.events = make_relay(handle.worker)  # type: ignore[attr-defined]
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        assert handle.shutdown(5_000)


def start(qtbot: QtBot, handle: WorkerHandle) -> None:
    with qtbot.waitSignal(handle.events.state_changed, timeout=3_000):
        handle.start()


def probe(qtbot: QtBot, handle: WorkerHandle) -> None:
    """A round trip through the worker's queue: everything posted before it has been handled."""
    with qtbot.waitSignal(handle.events.setting_applied, timeout=3_000):
        handle.change_setting("email_autoshare", False)


def test_timer_fires_a_session(qtbot: QtBot, make_worker, fake_runner) -> None:
    handle = make_worker(minute_ms=5)  # 10 "minutes" = 50 ms
    with qtbot.waitSignal(handle.events.started, timeout=3_000) as started:
        handle.start()
    assert started.args == ["timer"]
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        pass
    assert fake_runner.triggers[0] == "timer"


def test_run_at_start(qtbot: QtBot, make_worker, fake_runner) -> None:
    handle = make_worker(run_at_start=True)
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        handle.start()
    assert fake_runner.triggers == ["startup"]


def test_sync_now_during_a_session_queues_exactly_one_more(
    qtbot: QtBot, make_worker, fake_runner
) -> None:
    fake_runner.gate = threading.Event()
    handle = make_worker()
    start(qtbot, handle)
    starts: list[str] = []
    handle.events.started.connect(starts.append)
    with qtbot.waitSignal(handle.events.started, timeout=3_000):
        handle.sync_now()
    assert fake_runner.entered.wait(3)
    for _ in range(3):
        handle.sync_now()
    finishes: list[object] = []
    handle.events.finished.connect(finishes.append)
    fake_runner.gate.set()
    qtbot.waitUntil(lambda: len(finishes) == 2, timeout=3_000)
    probe(qtbot, handle)
    assert starts == ["manual", "manual"]
    assert len(fake_runner.triggers) == 2
    assert handle.worker.pending is None


def test_pause_stops_the_timer_but_sync_now_still_runs(
    qtbot: QtBot, make_worker, fake_runner
) -> None:
    handle = make_worker(minute_ms=10)  # 10 "minutes" = 100 ms
    with qtbot.waitSignal(handle.events.state_changed, timeout=3_000):
        handle.start()
    with qtbot.waitSignal(handle.events.state_changed, timeout=3_000) as paused:
        handle.pause()
    assert paused.args == ["paused"]
    with qtbot.assertNotEmitted(handle.events.started, wait=400):
        pass  # four intervals pass without a timer session
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        handle.sync_now()
    assert fake_runner.triggers == ["manual"]
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        handle.resume()  # the due time passed while paused: it runs now
    assert fake_runner.triggers == ["manual", "timer"]


def test_a_setting_change_reaches_the_next_session(
    qtbot: QtBot, make_worker, fake_runner, ctx: AppContext
) -> None:
    handle = make_worker()
    start(qtbot, handle)
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        handle.sync_now()
    assert fake_runner.snapshots[-1].flag("email_autoshare") is False
    ctx.settings().set("email_autoshare", True)  # as the store thread would
    with qtbot.waitSignal(handle.events.setting_applied, timeout=3_000) as applied:
        handle.change_setting("email_autoshare", True)
    assert applied.args == ["email_autoshare", True]
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        handle.sync_now()
    assert fake_runner.snapshots[-1].flag("email_autoshare") is True


def test_interval_setting_rearms_the_timer(qtbot: QtBot, make_worker) -> None:
    handle = make_worker()
    start(qtbot, handle)
    with qtbot.waitSignal(handle.events.schedule_changed, timeout=3_000) as changed:
        handle.change_setting("sync_interval_minutes", 25)
    assert changed.args == [Schedule(25)]
    assert handle.worker.interval_minutes == 25


def test_quiet_sessions_stretch_and_changes_snap_back(
    qtbot: QtBot, make_worker, fake_runner
) -> None:
    fake_runner.outcomes = [SessionOutcome("ok", "", changes=0)] * 4 + [
        SessionOutcome("ok", "", changes=3)
    ]
    handle = make_worker()
    start(qtbot, handle)
    seen: list[int] = []
    for _ in range(5):
        with qtbot.waitSignal(handle.events.schedule_changed, timeout=3_000) as changed:
            handle.sync_now()
        seen.append(changed.args[0].minutes)
    assert seen == [20, 40, 60, 60, 10]


def test_high_api_usage_doubles_the_interval_and_says_why(
    qtbot: QtBot, make_worker, fake_runner
) -> None:
    fake_runner.outcomes = [SessionOutcome("ok", "", changes=2, api_usage=(9_000, 10_000))]
    handle = make_worker()
    start(qtbot, handle)
    with qtbot.waitSignal(handle.events.schedule_changed, timeout=3_000) as changed:
        handle.sync_now()
    schedule = changed.args[0]
    assert schedule.minutes == 20
    assert "90 %" in schedule.reason


def test_runner_exception_becomes_a_failed_outcome(
    qtbot: QtBot, make_worker, fake_runner, ctx: AppContext
) -> None:
    fake_runner.outcomes = [RuntimeError("Salesforce said no")]
    handle = make_worker()
    start(qtbot, handle)
    with (
        qtbot.waitSignal(handle.events.failed, timeout=3_000) as failed,
        qtbot.waitSignal(handle.events.finished, timeout=3_000) as finished,
    ):
        handle.sync_now()
    assert "Salesforce said no" in failed.args[0]
    assert finished.args[0].status == "failed"
    with qtbot.waitSignal(handle.events.finished, timeout=3_000) as again:
        handle.sync_now()
    assert again.args[0].status == "ok"  # the worker lives on
    runs = History(ctx.db).recent()
    assert [r.status for r in runs] == ["ok", "failed"]
    assert "Salesforce said no" in runs[1].message


def test_sessions_are_recorded_and_interrupted_ones_closed(
    qtbot: QtBot, make_worker, ctx: AppContext
) -> None:
    stale = History(ctx.db).start("timer")  # a session a crash left open
    handle = make_worker()
    start(qtbot, handle)
    with qtbot.waitSignal(handle.events.finished, timeout=3_000):
        handle.sync_now()
    runs = {r.id: r for r in History(ctx.db).recent()}
    assert runs[stale].status == "failed"
    assert "Interrupted" in runs[stale].message
    newest = max(runs)
    assert runs[newest].trigger == "manual"
    assert runs[newest].status == "ok"


def test_a_wall_clock_jump_after_sleep_runs_the_overdue_session(
    qtbot: QtBot, make_worker, fake_runner
) -> None:
    offset = [0.0]
    handle = make_worker(heartbeat_ms=20, wall_clock=lambda: time.time() + offset[0])
    start(qtbot, handle)
    with qtbot.waitSignal(handle.events.started, timeout=3_000) as started:
        offset[0] = 3 * 3600.0  # the machine slept three hours
    assert started.args == ["resume"]


def test_next_interval_rules() -> None:
    quiet = SessionOutcome("ok", "", changes=0)
    assert next_interval(10, 10, quiet) == 20
    assert next_interval(90, 90, quiet) == 90  # never shorter than the setting
    assert next_interval(10, 40, SessionOutcome("failed", "x")) == 40
    assert next_interval(10, 60, SessionOutcome("ok", "", changes=1)) == 10


def test_the_first_session_freezes_the_startup_heap(qtbot: QtBot, make_worker, fake_runner) -> None:
    """A full garbage collection during a large sync must not walk what the app holds since
    start-up (it stalled the GUI thread 54 ms): the first session freezes it, once."""
    gc.unfreeze()
    handle = make_worker()
    start(qtbot, handle)
    assert gc.get_freeze_count() == 0  # nothing before a session
    with qtbot.waitSignal(handle.events.finished, timeout=5_000):
        handle.sync_now()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert not freeze_startup_heap()  # once per process: nothing more frozen
    assert gc.get_freeze_count() <= frozen  # (a frozen object may die meanwhile)
