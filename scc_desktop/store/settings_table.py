"""The settings table as the storage behind `scc_desktop.settings.Settings`."""

from __future__ import annotations

from scc_desktop.store.db import Database


class SettingsTable:
    def __init__(self, db: Database) -> None:
        self._db = db

    def load_all(self) -> dict[str, str]:
        rows = self._db.connect().execute("SELECT key, value FROM settings").fetchall()
        return {str(row["key"]): str(row["value"]) for row in rows}

    def save(self, key: str, text: str) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (key, text),
            )
