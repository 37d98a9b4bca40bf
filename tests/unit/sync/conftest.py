"""Fixtures of the sync tests: a state file per test and harnesses over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_harness import Harness

from scc_desktop.store.db import open_database
from scc_desktop.sync.state import SyncState


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SyncState]:
    db = open_database(tmp_path / "state.sqlite3")
    yield SyncState(db)
    db.close()


@pytest.fixture
def harness(state: SyncState) -> Harness:
    return Harness(state)


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Fresh harnesses with their own state files (for loops inside one test)."""
    dbs = []

    def make(**kwargs: Any) -> Harness:
        db = open_database(tmp_path / f"state-{len(dbs)}.sqlite3")
        dbs.append(db)
        return Harness(SyncState(db), **kwargs)

    yield make
    for db in dbs:
        db.close()
