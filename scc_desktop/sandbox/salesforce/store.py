"""Records of the emulated org: in memory for speed, written through to SQLite for persistence.

All access happens under `lock` (the server is threaded). Writes go through `put()`, which keeps
an undo journal, so a request can roll back to a savepoint (allOrNone, a failed record of a
Collections call) and `commit()` writes only what changed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from scc_desktop.paths import make_private_file
from scc_desktop.sandbox.salesforce import ids, schema

Record = dict[str, Any]

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL);
"""


class Store:
    """The org's records plus a small key-value table and the OAuth token table."""

    def __init__(self, path: Path) -> None:
        self.lock = threading.RLock()
        make_private_file(Path(path))  # private whatever the umask
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA_SQL)
        self._by_type: dict[str, dict[str, Record]] = {name: {} for name in schema.OBJECTS}
        self._unique: dict[tuple[str, str], dict[str, str]] = {}
        self._undo: list[tuple[str, Record | None]] = []
        self._dirty: set[str] = set()
        self._seq = 0
        self._load()

    # -- loading and persistence -----------------------------------------------------------
    def _load(self) -> None:
        with self.lock:
            for name in self._by_type:
                self._by_type[name].clear()
            self._unique.clear()
            for rid, _type, data in self._db.execute("SELECT id, type, data FROM records"):
                self._set_raw(rid, json.loads(data))
            self._seq = int(self.kv_get("seq", 0))

    def commit(self) -> None:
        with self.lock:
            if not self._dirty:
                self._undo.clear()
                return
            rows = []
            gone = []
            for rid in self._dirty:
                rec = self.get(rid)
                if rec is None:
                    gone.append((rid,))
                else:
                    rows.append((rid, rec["attributes"]["type"], json.dumps(rec)))
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", rows)
            self._db.executemany("DELETE FROM records WHERE id = ?", gone)
            self._db.execute(
                "INSERT OR REPLACE INTO kv VALUES ('seq', ?)", (json.dumps(self._seq),)
            )
            self._db.execute("COMMIT")
            self._dirty.clear()
            self._undo.clear()

    def wipe(self) -> None:
        """Forget every record, token and setting (a reset)."""
        with self.lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM kv")
            self._db.execute("DELETE FROM tokens")
            self._db.execute("COMMIT")
            self._undo.clear()
            self._dirty.clear()
            self._load()

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # -- journal -------------------------------------------------------------------------
    def savepoint(self) -> int:
        return len(self._undo)

    def rollback_to(self, mark: int) -> None:
        with self.lock:
            while len(self._undo) > mark:
                rid, previous = self._undo.pop()
                self._set_raw(rid, previous)

    # -- records -------------------------------------------------------------------------
    def next_id(self, sobject: str) -> str:
        with self.lock:
            self._seq += 1
            return ids.make_id(schema.OBJECTS[sobject].prefix, self._seq)

    def get(self, record_id: str) -> Record | None:
        sobject = schema.type_of_id(record_id)
        if sobject is None:
            return None
        return self._by_type[sobject].get(record_id)

    def records(self, sobject: str) -> Iterator[Record]:
        return iter(list(self._by_type[sobject].values()))

    def count(self, sobject: str) -> int:
        return len(self._by_type[sobject])

    def put(self, record: Record) -> None:
        """Insert or replace a record (a new dict: stored dicts are never mutated)."""
        with self.lock:
            rid = record["Id"]
            self._undo.append((rid, self.get(rid)))
            self._dirty.add(rid)
            self._set_raw(rid, record)

    def put_many_fast(self, records: Iterable[Record]) -> None:
        """Seed loading: no journal, one executemany."""
        with self.lock:
            rows = []
            for rec in records:
                self._set_raw(rec["Id"], rec)
                rows.append((rec["Id"], rec["attributes"]["type"], json.dumps(rec)))
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", rows)
            self._db.execute(
                "INSERT OR REPLACE INTO kv VALUES ('seq', ?)", (json.dumps(self._seq),)
            )
            self._db.execute("COMMIT")

    def find_unique(self, sobject: str, field: str, value: str) -> str | None:
        return self._unique.get((sobject, field), {}).get(value.lower())

    def _set_raw(self, rid: str, record: Record | None) -> None:
        sobject = schema.type_of_id(rid)
        assert sobject is not None
        table = self._by_type[sobject]
        old = table.get(rid)
        uniques = [f.name for f in schema.OBJECTS[sobject].fields if f.unique]
        for name in uniques:
            index = self._unique.setdefault((sobject, name), {})
            if old is not None and old.get(name) and not old.get("IsDeleted"):
                key = str(old[name]).lower()
                if index.get(key) == rid:
                    del index[key]
            if record is not None and record.get(name) and not record.get("IsDeleted"):
                index[str(record[name]).lower()] = rid
        if record is None:
            table.pop(rid, None)
        else:
            table[rid] = record

    # -- key-value settings --------------------------------------------------------------
    def kv_get(self, key: str, default: Any = None) -> Any:
        with self.lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            return default if row is None else json.loads(row[0])

    def kv_set(self, key: str, value: Any) -> None:
        with self.lock:
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value)))

    # -- tokens ------------------------------------------------------------------------------
    def token_get(self, token: str) -> tuple[str, dict[str, Any]] | None:
        with self.lock:
            row = self._db.execute(
                "SELECT kind, data FROM tokens WHERE token = ?", (token,)
            ).fetchone()
            return None if row is None else (str(row[0]), json.loads(row[1]))

    def token_put(self, token: str, kind: str, data: dict[str, Any]) -> None:
        with self.lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?)", (token, kind, json.dumps(data))
            )

    def token_delete(self, token: str) -> None:
        with self.lock:
            self._db.execute("DELETE FROM tokens WHERE token = ?", (token,))

    def revoke_access_for(self, refresh: str) -> None:
        """Revoking a refresh token ends the sessions it minted."""
        with self.lock:
            rows = self._db.execute("SELECT token, data FROM tokens WHERE kind = 'access'")
            gone = [(t,) for t, data in rows if json.loads(data).get("refresh") == refresh]
            self._db.executemany("DELETE FROM tokens WHERE token = ?", gone)

    def token_delete_kind(self, kind: str) -> None:
        with self.lock:
            self._db.execute("DELETE FROM tokens WHERE kind = ?", (kind,))
