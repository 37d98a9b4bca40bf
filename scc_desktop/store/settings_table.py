"""The settings table as the storage behind `scc_desktop.settings.Settings`.

Every save is mirrored to a small JSON file beside the config (settings are not secrets), so a
state file that SQLite can no longer read does not take the user's blacklist and switches with it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from scc_desktop.paths import make_private_file
from scc_desktop.store.db import Database

log = logging.getLogger(__name__)


class SettingsTable:
    def __init__(self, db: Database, mirror: Path | None = None) -> None:
        self._db = db
        self._mirror = mirror

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
        self.write_mirror()

    def write_mirror(self) -> None:
        """Replace the mirror atomically; a failure is logged, the saved setting stands."""
        if self._mirror is None:
            return
        temp = self._mirror.with_name(f".{self._mirror.name}.{os.getpid()}.tmp")
        try:
            make_private_file(temp)
            temp.write_text(json.dumps(self.load_all(), indent=1, sort_keys=True), "utf-8")
            temp.replace(self._mirror)
        except OSError as exc:
            log.warning("settings backup not written: %s", exc)
            temp.unlink(missing_ok=True)

    def restore_from_mirror(self) -> int:
        """Put the mirrored settings back into a fresh state file; how many were restored."""
        if self._mirror is None or not self._mirror.is_file():
            return 0
        try:
            saved = json.loads(self._mirror.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("settings backup unreadable: %s", exc)
            return 0
        if not isinstance(saved, dict):
            return 0
        rows = [(str(k), str(v)) for k, v in saved.items() if isinstance(k, str)]
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rows,
            )
        return len(rows)
