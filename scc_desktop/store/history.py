"""Sync sessions as the History window and `scc-desktop status` show them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scc_desktop.store.db import Database


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RunRecord:
    id: int
    started_at: str
    finished_at: str | None
    trigger: str
    status: str
    message: str
    summary: dict[str, Any]


class History:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, trigger: str) -> int:
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO sync_runs(started_at, trigger) VALUES (?, ?)", (utc_now_iso(), trigger)
            )
            return int(cursor.lastrowid or 0)

    def finish(self, run_id: int, status: str, message: str, summary: dict[str, Any]) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sync_runs SET finished_at = ?, status = ?, message = ?, summary = ? "
                "WHERE id = ?",
                (utc_now_iso(), status, message, json.dumps(summary, sort_keys=True), run_id),
            )

    def recent(self, limit: int = 50) -> list[RunRecord]:
        rows = (
            self._db.connect()
            .execute("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [
            RunRecord(
                int(row["id"]),
                str(row["started_at"]),
                row["finished_at"],
                str(row["trigger"]),
                str(row["status"]),
                str(row["message"]),
                json.loads(row["summary"] or "{}"),
            )
            for row in rows
        ]

    def mark_interrupted(self) -> int:
        """Sessions left 'running' by a crash are closed as failed, so History tells the truth."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "UPDATE sync_runs SET status = 'failed', finished_at = ?, "
                "message = 'Interrupted: scc-desktop stopped during this session.' "
                "WHERE status = 'running'",
                (utc_now_iso(),),
            )
            return int(cursor.rowcount)
