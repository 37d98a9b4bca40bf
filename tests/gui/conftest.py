"""GUI tests run offscreen, each with a fresh profile, an in-memory keyring and its own policy."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt

import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal

import scc_desktop.ui  # noqa: F401  (first Qt user: installs the PySide6 6.12.0 guard)
from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext
from scc_desktop.runner import Progress, SessionOutcome
from scc_desktop.settings import SettingsSnapshot


@pytest.fixture(autouse=True)
def _collect_qt_garbage_on_this_thread() -> Iterator[None]:
    """Qt objects in reference cycles are freed here, not by a later test's worker thread."""
    yield
    gc.collect()


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    return tmp_path / "policy.toml"


@pytest.fixture
def ctx(tmp_path: Path, policy_path: Path) -> Iterator[AppContext]:
    context = AppContext.open(
        tmp_path / "p", secret_backend=MemoryBackend(), policy_path=policy_path
    )
    yield context
    context.db.close()


@dataclass
class FakeRunner:
    """Reads the settings snapshot a real session would, and returns scripted outcomes."""

    ctx: AppContext
    outcomes: list[SessionOutcome | Exception] = field(default_factory=list)
    gate: threading.Event | None = None
    snapshots: list[SettingsSnapshot] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    entered: threading.Event = field(default_factory=threading.Event)

    def run(self, trigger: str, progress: Progress) -> SessionOutcome:
        self.triggers.append(trigger)
        self.snapshots.append(self.ctx.settings().snapshot())
        self.entered.set()
        progress("Reading changes")
        if self.gate is not None:
            assert self.gate.wait(10), "test never released the session"
        result = self.outcomes.pop(0) if self.outcomes else SessionOutcome("ok", "", changes=1)
        if isinstance(result, Exception):
            raise result
        return result


@pytest.fixture
def fake_runner(ctx: AppContext) -> FakeRunner:
    return FakeRunner(ctx)


@pytest.fixture
def runner_factory(fake_runner: FakeRunner) -> Callable[[], Any]:
    return lambda: fake_runner


class Relay(QObject):
    """Re-emits another thread's signals on the GUI thread, so qtbot waits on GUI-thread signals.

    (A plain callable connected to a signal from another thread runs in that thread; pytest-qt
    would then stop its timers from the wrong thread.)
    """

    started = Signal(str)
    progress = Signal(str)
    finished = Signal(object)
    failed = Signal(str)
    state_changed = Signal(str)
    schedule_changed = Signal(object)
    setting_applied = Signal(str, object)
    settings_loaded = Signal(dict, dict)
    setting_saved = Signal(str, object)
    setting_refused = Signal(str, str)
    history_loaded = Signal(list)
    issues_loaded = Signal(list)
    issue_count = Signal(int)
    issue_resolved = Signal(int)


def relay(source: object) -> Relay:
    """A GUI-thread Relay carrying every signal of `source` that Relay knows by name."""
    out = Relay()
    for name, value in vars(Relay).items():
        if isinstance(value, Signal) and hasattr(source, name):
            getattr(source, name).connect(getattr(out, name))
    return out


@pytest.fixture
def make_relay() -> Callable[[object], Relay]:
    return relay
