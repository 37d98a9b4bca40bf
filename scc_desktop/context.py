"""One profile opened: paths, state DB, policy, settings and the credential store together.

Each thread that touches SQLite builds its own `Settings` from `db` (connections are per thread);
the context itself only holds what is safe to share.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from scc_desktop.auth.credentials import CredentialStore, SecretBackend
from scc_desktop.paths import ProfilePaths, policy_file, resolve_profile
from scc_desktop.settings import Policy, Settings
from scc_desktop.store.db import Database, open_database
from scc_desktop.store.settings_table import SettingsTable


@dataclass
class AppContext:
    paths: ProfilePaths
    db: Database
    policy: Policy
    credentials: CredentialStore

    @classmethod
    def open(
        cls,
        profile: str | Path | None = None,
        *,
        secret_backend: SecretBackend | None = None,
        policy_path: Path | None = None,
    ) -> AppContext:
        paths = resolve_profile(profile).ensure()
        db = open_database(paths.state_db)
        if db.recovery is not None:
            restored = SettingsTable(db, paths.settings_backup).restore_from_mirror()
            note = (
                f"Your settings were restored from {paths.settings_backup}."
                if restored
                else "Your settings are back to their defaults: check them in Settings."
            )
            db.recovery = replace(db.recovery, settings_note=note)
        elif not paths.settings_backup.exists():  # a profile from before the backup existed
            SettingsTable(db, paths.settings_backup).write_mirror()
        policy = Policy.load(policy_path if policy_path is not None else policy_file())
        return cls(paths, db, policy, CredentialStore(paths.key, secret_backend))

    def settings(self) -> Settings:
        """Settings bound to this thread's connection."""
        return Settings(SettingsTable(self.db, self.paths.settings_backup), self.policy)
