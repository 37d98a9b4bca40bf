"""Delta cursors in the state DB: saved with the page's changes, or not at all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scc_desktop.mailbox.cursors import CursorStore, apply_pages
from scc_desktop.mailbox.types import Change, DeltaPage
from scc_desktop.store.db import open_database


def page(n: int, done: bool = False) -> DeltaPage[str]:
    return DeltaPage("graph:messages:inbox", (Change(f"id{n}", f"item{n}"),), f"cursor-{n}", done)


def test_save_load_forget(tmp_path: Path) -> None:
    store = CursorStore(open_database(tmp_path / "state.sqlite3"))
    assert store.load("graph:contacts") is None
    store.save("graph:contacts", "a")
    store.save("graph:contacts", "b")
    assert store.load("graph:contacts") == "b"
    store.forget("graph:contacts")
    assert store.load("graph:contacts") is None


def test_cursor_advances_only_with_the_applied_page(tmp_path: Path) -> None:
    db = open_database(tmp_path / "state.sqlite3")
    store = CursorStore(db)
    db.connect().execute("CREATE TABLE view (id TEXT PRIMARY KEY, item TEXT)")

    def apply(p: DeltaPage[str], tx: sqlite3.Connection) -> None:
        for change in p.changes:
            tx.execute("INSERT OR REPLACE INTO view VALUES (?, ?)", (change.id, change.item))
        if p.cursor == "cursor-2":
            raise RuntimeError("crash while applying page 2")

    with pytest.raises(RuntimeError):
        apply_pages(store, [page(1), page(2), page(3, done=True)], apply)
    # page 1 and its cursor were saved together; page 2 left neither rows nor cursor behind
    assert store.load("graph:messages:inbox") == "cursor-1"
    assert [r[0] for r in db.connect().execute("SELECT id FROM view")] == ["id1"]
    assert apply_pages(store, [page(3, done=True)], lambda p, tx: None) == 1
    assert store.load("graph:messages:inbox") == "cursor-3"
