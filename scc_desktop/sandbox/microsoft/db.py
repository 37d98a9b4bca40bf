"""SQLite state of the Microsoft emulator: one mailbox, its items, tombstones, tokens, settings.

Every write takes a global change sequence number from one counter, so a delta token can be a
plain sequence number: a quiet delta round is one indexed query, whatever the mailbox size.
Items keep two ids: an immutable one (the primary key) and a REST id that changes when a message
moves, which is how Graph behaves without `Prefer: IdType="ImmutableId"`.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scc_desktop.paths import make_private_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
    id TEXT PRIMARY KEY,
    rest_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    parent TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sort TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_seq ON items(kind, parent, seq);
CREATE INDEX IF NOT EXISTS items_sort ON items(kind, parent, sort);
CREATE TABLE IF NOT EXISTS removals(
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    parent TEXT NOT NULL,
    id TEXT NOT NULL,
    rest_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS removals_parent ON removals(kind, parent, seq);
CREATE TABLE IF NOT EXISTS attachments(
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    meta TEXT NOT NULL,
    content BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS attachments_message ON attachments(message_id);
CREATE TABLE IF NOT EXISTS tokens(
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    expires REAL NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS uploads(
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    meta TEXT NOT NULL,
    size INTEGER NOT NULL,
    received BLOB NOT NULL,
    expires REAL NOT NULL
);
"""


def new_id(prefix: str = "AAMkAG") -> str:
    """An opaque Graph-looking id (base64url, like real Exchange ids)."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode().rstrip("=")


@dataclass
class Item:
    id: str
    rest_id: str
    kind: str
    parent: str
    seq: int
    data: dict[str, Any]


def _item(row: sqlite3.Row) -> Item:
    return Item(
        row["id"], row["rest_id"], row["kind"], row["parent"], row["seq"], json.loads(row["data"])
    )


class Store:
    """A locked SQLite connection; every method is atomic under one re-entrant lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        make_private_file(Path(path))  # private whatever the umask
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            if self.conn.in_transaction:
                yield self.conn
                return
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def wipe(self, keep_meta: tuple[str, ...] = ()) -> None:
        """Drop the mailbox content; tokens stay so a signed-in client stays signed in."""
        with self.tx() as c:
            for table in ("items", "removals", "attachments", "uploads"):
                c.execute(f"DELETE FROM {table}")
            marks = ",".join("?" * len(keep_meta))
            c.execute(f"DELETE FROM meta WHERE key NOT IN ({marks})", keep_meta)

    # -- meta ------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.lock:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    def next_seq(self, n: int = 1) -> int:
        """Reserve n sequence numbers; returns the first."""
        with self.tx():
            current = int(self.get_meta("seq", "0") or 0)
            self.set_meta("seq", str(current + n))
            return current + 1

    def current_seq(self) -> int:
        return int(self.get_meta("seq", "0") or 0)

    # -- items -------------------------------------------------------------------------------
    def get(self, item_id: str, kind: str | None = None) -> Item | None:
        """Find by immutable or current REST id (Graph accepts both)."""
        with self.lock:
            row = self.conn.execute(
                "SELECT * FROM items WHERE id=? OR rest_id=?", (item_id, item_id)
            ).fetchone()
        if row is None or (kind is not None and row["kind"] != kind):
            return None
        return _item(row)

    def insert(
        self,
        kind: str,
        parent: str,
        data: dict[str, Any],
        sort: str = "",
        item_id: str | None = None,
    ) -> Item:
        with self.tx() as c:
            seq = self.next_seq()
            iid = item_id or new_id()
            c.execute(
                "INSERT INTO items(id, rest_id, kind, parent, seq, sort, data) "
                "VALUES(?,?,?,?,?,?,?)",
                (iid, iid, kind, parent, seq, sort, json.dumps(data)),
            )
            return Item(iid, iid, kind, parent, seq, data)

    def bulk_insert(self, rows: Iterable[tuple[str, str, str, str, dict[str, Any]]]) -> None:
        """(id, kind, parent, sort, data) rows in one transaction, for seeds."""
        materialized = list(rows)
        with self.tx() as c:
            first = self.next_seq(len(materialized))
            c.executemany(
                "INSERT INTO items(id, rest_id, kind, parent, seq, sort, data) "
                "VALUES(?,?,?,?,?,?,?)",
                (
                    (iid, iid, kind, parent, first + i, sort, json.dumps(data))
                    for i, (iid, kind, parent, sort, data) in enumerate(materialized)
                ),
            )

    def update(self, item: Item, data: dict[str, Any], sort: str | None = None) -> Item:
        with self.tx() as c:
            seq = self.next_seq()
            if sort is None:
                c.execute(
                    "UPDATE items SET seq=?, data=? WHERE id=?", (seq, json.dumps(data), item.id)
                )
            else:
                c.execute(
                    "UPDATE items SET seq=?, data=?, sort=? WHERE id=?",
                    (seq, json.dumps(data), sort, item.id),
                )
            return Item(item.id, item.rest_id, item.kind, item.parent, seq, data)

    def move(self, item: Item, parent: str, change_rest_id: bool) -> Item:
        """Move to another container; the source container's delta reports a removal."""
        with self.tx() as c:
            rseq = self.next_seq()
            c.execute(
                "INSERT INTO removals(seq, kind, parent, id, rest_id, reason) VALUES(?,?,?,?,?,?)",
                (rseq, item.kind, item.parent, item.id, item.rest_id, "deleted"),
            )
            seq = self.next_seq()
            rest_id = new_id() if change_rest_id else item.rest_id
            c.execute(
                "UPDATE items SET seq=?, parent=?, rest_id=? WHERE id=?",
                (seq, parent, rest_id, item.id),
            )
            return Item(item.id, rest_id, item.kind, parent, seq, item.data)

    def delete(self, item: Item, reason: str = "deleted") -> None:
        with self.tx() as c:
            seq = self.next_seq()
            c.execute(
                "INSERT INTO removals(seq, kind, parent, id, rest_id, reason, data) "
                "VALUES(?,?,?,?,?,?,?)",
                (seq, item.kind, item.parent, item.id, item.rest_id, reason, json.dumps(item.data)),
            )
            c.execute("DELETE FROM items WHERE id=?", (item.id,))
            c.execute("DELETE FROM attachments WHERE message_id=?", (item.id,))

    def list_items(
        self, kind: str, parent: str | None = None, order: str = "sort", desc: bool = False
    ) -> list[Item]:
        direction = "DESC" if desc else "ASC"
        column = "seq" if order == "seq" else "sort"
        with self.lock:
            if parent is None:
                rows = self.conn.execute(
                    f"SELECT * FROM items WHERE kind=? ORDER BY {column} {direction}, id", (kind,)
                ).fetchall()
            else:
                rows = self.conn.execute(
                    f"SELECT * FROM items WHERE kind=? AND parent=? "
                    f"ORDER BY {column} {direction}, id",
                    (kind, parent),
                ).fetchall()
        return [_item(r) for r in rows]

    def page(self, kind: str, parent: str | None, skip: int, top: int, desc: bool) -> list[Item]:
        direction = "DESC" if desc else "ASC"
        with self.lock:
            if parent is None:
                rows = self.conn.execute(
                    f"SELECT * FROM items WHERE kind=? "
                    f"ORDER BY sort {direction}, id LIMIT ? OFFSET ?",
                    (kind, top, skip),
                ).fetchall()
            else:
                rows = self.conn.execute(
                    f"SELECT * FROM items WHERE kind=? AND parent=? ORDER BY sort {direction}, id "
                    "LIMIT ? OFFSET ?",
                    (kind, parent, top, skip),
                ).fetchall()
        return [_item(r) for r in rows]

    def changes(
        self, kind: str, parent: str, after: int, upto: int, *, limit: int, initial: bool
    ) -> list[tuple[int, Item | None, dict[str, Any] | None]]:
        """Items and removals with after < seq <= upto in seq order, at most `limit`.

        Each entry is (seq, item, None) or (seq, None, removal). An initial round has no removals.
        """
        with self.lock:
            items = self.conn.execute(
                "SELECT * FROM items WHERE kind=? AND parent=? AND seq>? AND seq<=? "
                "ORDER BY seq LIMIT ?",
                (kind, parent, after, upto, limit),
            ).fetchall()
            removals = (
                []
                if initial
                else self.conn.execute(
                    "SELECT * FROM removals WHERE kind=? AND parent=? AND seq>? AND seq<=? "
                    "ORDER BY seq LIMIT ?",
                    (kind, parent, after, upto, limit),
                ).fetchall()
            )
        merged: list[tuple[int, Item | None, dict[str, Any] | None]] = [
            (int(r["seq"]), _item(r), None) for r in items
        ]
        merged += [(int(r["seq"]), None, dict(r)) for r in removals]
        merged.sort(key=lambda e: e[0])
        return merged[:limit]

    def removals_since(self, kind: str, after: int, upto: int) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM removals WHERE kind=? AND seq>? AND seq<=? ORDER BY seq",
                (kind, after, upto),
            ).fetchall()
        return [dict(r) for r in rows]

    def changed_since(self, kind: str, after: int, upto: int) -> list[Item]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT * FROM items WHERE kind=? AND seq>? AND seq<=? ORDER BY seq",
                (kind, after, upto),
            ).fetchall()
        return [_item(r) for r in rows]

    def count(self, kind: str) -> int:
        with self.lock:
            return int(
                self.conn.execute("SELECT COUNT(*) FROM items WHERE kind=?", (kind,)).fetchone()[0]
            )

    # -- attachments ---------------------------------------------------------------------------
    def add_attachment(self, message_id: str, meta: dict[str, Any], content: bytes) -> str:
        aid = new_id("AAMkAGAtt")
        with self.tx() as c:
            c.execute(
                "INSERT INTO attachments(id, message_id, meta, content) VALUES(?,?,?,?)",
                (aid, message_id, json.dumps(meta), content),
            )
        return aid

    def attachments(self, message_id: str) -> list[tuple[str, dict[str, Any], bytes]]:
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, meta, content FROM attachments WHERE message_id=? ORDER BY rowid",
                (message_id,),
            ).fetchall()
        return [(r["id"], json.loads(r["meta"]), bytes(r["content"])) for r in rows]

    def delete_attachment(self, message_id: str, attachment_id: str) -> bool:
        with self.tx() as c:
            cur = c.execute(
                "DELETE FROM attachments WHERE message_id=? AND id=?", (message_id, attachment_id)
            )
            return cur.rowcount > 0

    # -- tokens ----------------------------------------------------------------------------------
    def put_token(self, token: str, kind: str, expires: float, data: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO tokens(token, kind, expires, data) VALUES(?,?,?,?)",
                (token, kind, expires, json.dumps(data)),
            )

    def get_token(self, token: str, kind: str) -> tuple[float, dict[str, Any]] | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT expires, data FROM tokens WHERE token=? AND kind=?", (token, kind)
            ).fetchone()
        return (float(row[0]), json.loads(row[1])) if row else None

    def drop_token(self, token: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM tokens WHERE token=?", (token,))

    def expire_tokens(self, kinds: Iterable[str]) -> int:
        with self.tx() as c:
            n = 0
            for kind in kinds:
                n += c.execute("UPDATE tokens SET expires=0 WHERE kind=?", (kind,)).rowcount
            return n

    # -- upload sessions -------------------------------------------------------------------------
    def put_upload(
        self, uid: str, message_id: str, meta: dict[str, Any], size: int, expires: float
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO uploads(id, message_id, meta, size, received, expires) "
                "VALUES(?,?,?,?,?,?)",
                (uid, message_id, json.dumps(meta), size, b"", expires),
            )

    def get_upload(self, uid: str) -> tuple[str, dict[str, Any], int, bytes, float] | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT message_id, meta, size, received, expires FROM uploads WHERE id=?", (uid,)
            ).fetchone()
        if row is None:
            return None
        return (row[0], json.loads(row[1]), int(row[2]), bytes(row[3]), float(row[4]))

    def set_upload_received(self, uid: str, received: bytes) -> None:
        with self.tx() as c:
            c.execute("UPDATE uploads SET received=? WHERE id=?", (received, uid))

    def drop_upload(self, uid: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM uploads WHERE id=?", (uid,))
