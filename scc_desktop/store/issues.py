"""Sync Issues: per-record errors, conflicts with both versions, mass-deletion prompts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scc_desktop.store.db import Database
from scc_desktop.store.history import utc_now_iso


@dataclass(frozen=True)
class IssueRecord:
    id: int
    run_id: int | None
    kind: str
    category: str
    title: str
    message: str
    item_key: str
    payload: dict[str, Any]
    created_at: str
    resolved_at: str | None
    resolution: str


class Issues:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(
        self,
        kind: str,
        category: str,
        title: str,
        message: str,
        *,
        item_key: str = "",
        payload: dict[str, Any] | None = None,
        run_id: int | None = None,
    ) -> int:
        """Record an issue; an open issue with the same kind, category and item is replaced."""
        with self._db.transaction() as conn:
            if item_key:
                conn.execute(
                    "DELETE FROM sync_issues WHERE kind = ? AND category = ? AND item_key = ? "
                    "AND resolved_at IS NULL",
                    (kind, category, item_key),
                )
            cursor = conn.execute(
                "INSERT INTO sync_issues(run_id, kind, category, title, message, item_key, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, category, title, message, item_key, json.dumps(payload or {})),
            )
            return int(cursor.lastrowid or 0)

    def resolve(self, issue_id: int, resolution: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE sync_issues SET resolved_at = ?, resolution = ? WHERE id = ?",
                (utc_now_iso(), resolution, issue_id),
            )

    def open(self, kind: str | None = None) -> list[IssueRecord]:
        sql = "SELECT * FROM sync_issues WHERE resolved_at IS NULL"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            params = (kind,)
        rows = self._db.connect().execute(sql + " ORDER BY id DESC", params).fetchall()
        return [
            IssueRecord(
                int(r["id"]),
                r["run_id"],
                str(r["kind"]),
                str(r["category"]),
                str(r["title"]),
                str(r["message"]),
                str(r["item_key"]),
                json.loads(r["payload"] or "{}"),
                str(r["created_at"]),
                r["resolved_at"],
                str(r["resolution"]),
            )
            for r in rows
        ]

    def count_open(self) -> int:
        row = (
            self._db.connect()
            .execute("SELECT COUNT(*) FROM sync_issues WHERE resolved_at IS NULL")
            .fetchone()
        )
        return int(row[0])
