"""Opening the state file: WAL, busy timeout, private files, backups, corrupt-file recovery.

A connection belongs to the thread that opened it; the tray's worker threads each open their own.
A file that SQLite cannot read is moved aside (never deleted) and a fresh one is created, and the
caller learns about it through `Database.recovery` so the user is told.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scc_desktop.paths import make_private_dir, make_private_file
from scc_desktop.store import migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


class StateError(Exception):
    """The state file cannot be used and could not be recovered."""


class NewerSchemaError(StateError):
    """The file was written by a newer scc-desktop; we refuse to touch it."""


@dataclass(frozen=True)
class StateRecovery:
    """What happened when the file could not be read: where the old copy went, and why."""

    moved_to: Path
    reason: str
    settings_note: str = ""  # what became of the user's settings, said by whoever restored them

    def user_message(self) -> str:
        text = (
            f"The local sync state could not be read ({self.reason}). It was moved aside to "
            f"{self.moved_to} and a fresh state was created; the next session re-links your items "
            "by matching, without duplicating them."
        )
        return f"{text} {self.settings_note}" if self.settings_note else text


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _check_readable(path: Path) -> str | None:
    """None if SQLite can read the file, else a short reason."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if row is None or row[0] != "ok":
        return f"integrity check failed: {row[0] if row else 'no answer'}"
    return None


class Database:
    """The profile's state file. `connect()` gives this thread's connection."""

    def __init__(self, path: Path, recovery: StateRecovery | None = None) -> None:
        self.path = path
        self.recovery = recovery
        self._local = threading.local()

    def connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; one writer at a time, rolled back on any exception."""
        conn = self.connect()
        if conn.in_transaction:  # nested use joins the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self.connect().execute("PRAGMA user_version").fetchone()[0])


def open_database(path: Path) -> Database:
    """Open (creating, recovering or migrating as needed) the state file at `path`."""
    make_private_dir(path.parent)
    recovery: StateRecovery | None = None
    if path.exists() and path.stat().st_size > 0:
        reason = _check_readable(path)
        if reason is not None:
            recovery = _move_aside(path, reason)
    make_private_file(path)
    db = Database(path, recovery)
    _migrate(db)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            make_private_file(side)
    return db


def _move_aside(path: Path, reason: str) -> StateRecovery:
    target = path.with_name(f"{path.name}.corrupt-{_timestamp()}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    log.error("state file unreadable (%s); moved aside to %s", reason, target)
    return StateRecovery(target, reason)


def _migrate(db: Database) -> None:
    conn = db.connect()
    current = db.schema_version()
    target = migrations.latest_version()
    if current > target:
        raise NewerSchemaError(
            f"{db.path} was written by a newer scc-desktop (schema {current}, this one knows "
            f"{target}). Update scc-desktop, or start with another --profile."
        )
    if current == target:
        return
    if current > 0:
        backup = db.path.with_name(f"{db.path.name}.v{current}-backup-{_timestamp()}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy2(db.path, backup)
        make_private_file(backup)
        log.info("backed up state schema %d to %s before migrating", current, backup)
    for step in sorted(migrations.MIGRATIONS, key=lambda m: m.version):
        if step.version <= current:
            continue
        with db.transaction() as tx:
            if isinstance(step.script, str):
                for statement in _split_sql(step.script):
                    tx.execute(statement)
            else:
                step.script(tx)
            tx.execute(f"PRAGMA user_version = {int(step.version)}")
        log.info("state migrated to schema %d (%s)", step.version, step.name)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
