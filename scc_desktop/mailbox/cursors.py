"""Delta cursors in the state DB's `cursors` table (migration 1), and a helper to drain a stream.

A cursor holds a Graph nextLink/deltaLink (an opaque token of the service, never an access
token). Save it in the same transaction as the page's links: `save(stream, page.cursor, conn)`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TypeVar

from scc_desktop.mailbox.types import DeltaPage
from scc_desktop.store.db import Database

T = TypeVar("T")


class CursorStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, stream: str) -> str | None:
        row = (
            self.db.connect()
            .execute("SELECT token FROM cursors WHERE stream = ?", (stream,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def save(self, stream: str, token: str, conn: sqlite3.Connection | None = None) -> None:
        sql = (
            "INSERT INTO cursors(stream, token) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET "
            "token = excluded.token, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        )
        if conn is not None:
            conn.execute(sql, (stream, token))
            return
        with self.db.transaction() as tx:
            tx.execute(sql, (stream, token))

    def forget(self, stream: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("DELETE FROM cursors WHERE stream = ?", (stream,))


def apply_pages(
    store: CursorStore,
    pages: Iterable[DeltaPage[T]],
    apply: Callable[[DeltaPage[T], sqlite3.Connection], None],
) -> int:
    """Apply each page and save its cursor in one transaction per page; returns the page count."""
    count = 0
    for page in pages:
        with store.db.transaction() as tx:
            apply(page, tx)
            store.save(page.stream, page.cursor, tx)
        count += 1
    return count
