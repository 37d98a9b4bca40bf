"""Connected accounts as the Settings window shows them: non-secret metadata only."""

from __future__ import annotations

import json
from collections.abc import Mapping

from scc_desktop.store.db import Database


class Accounts:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(
        self,
        kind: str,
        username: str,
        *,
        display_name: str = "",
        endpoint: str = "",
        state: str = "connected",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO accounts(kind, username, display_name, endpoint, state, detail) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(kind) DO UPDATE SET "
                "username = excluded.username, display_name = excluded.display_name, "
                "endpoint = excluded.endpoint, state = excluded.state, detail = excluded.detail, "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (kind, username, display_name, endpoint, state, json.dumps(dict(detail or {}))),
            )

    def set_state(self, kind: str, state: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE accounts SET state = ? WHERE kind = ?", (state, kind))

    def remove(self, kind: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM accounts WHERE kind = ?", (kind,))
