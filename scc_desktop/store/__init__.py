"""Local SQLite state: one file per profile, opened per thread, migrated forward only."""

from scc_desktop.store.db import Database, StateRecovery, open_database

__all__ = ["Database", "StateRecovery", "open_database"]
