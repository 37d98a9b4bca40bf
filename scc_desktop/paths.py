"""Where a profile keeps its config, state and logs.

Everything lives under one root when `--profile DIR` (or SCC_DESKTOP_HOME) is given, so a test or a
second identity never touches the user's real profile. Otherwise platformdirs picks the platform's
folders. Folders are created 0700 and files 0600 on POSIX: they hold mail metadata.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from scc_desktop import APP_AUTHOR, APP_NAME

PROFILE_ENV = "SCC_DESKTOP_HOME"
POLICY_ENV = "SCC_DESKTOP_POLICY"
POLICY_FILE_NAME = "policy.toml"


@dataclass(frozen=True)
class ProfilePaths:
    """The folders of one profile; `key` names the profile in the keyring and the instance lock."""

    config_dir: Path
    data_dir: Path
    log_dir: Path
    explicit_root: Path | None = None

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.sqlite3"

    @property
    def settings_backup(self) -> Path:
        """A copy of the user's settings outside the state file, so a damaged state keeps them."""
        return self.config_dir / "settings-backup.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "scc-desktop.log"

    @property
    def sandbox_dir(self) -> Path:
        return self.data_dir / "sandbox"

    @property
    def key(self) -> str:
        """A short stable name for this profile, derived from its data folder."""
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode("utf-8")).hexdigest()
        return digest[:16]

    def ensure(self) -> ProfilePaths:
        if self.explicit_root is not None:
            make_private_dir(self.explicit_root)
        for folder in (self.config_dir, self.data_dir, self.log_dir):
            make_private_dir(folder)
        return self


def resolve_profile(profile: str | os.PathLike[str] | None = None) -> ProfilePaths:
    """Profile from the argument, else SCC_DESKTOP_HOME, else the platform folders."""
    chosen = profile if profile is not None else os.environ.get(PROFILE_ENV) or None
    if chosen is not None:
        root = Path(chosen).expanduser().absolute()
        return ProfilePaths(root / "config", root / "data", root / "logs", explicit_root=root)
    return ProfilePaths(
        Path(platformdirs.user_config_dir(APP_NAME, APP_AUTHOR)),
        Path(platformdirs.user_data_dir(APP_NAME, APP_AUTHOR)),
        Path(platformdirs.user_log_dir(APP_NAME, APP_AUTHOR)),
    )


def policy_file() -> Path:
    """The administrator's policy file: SCC_DESKTOP_POLICY, else the site config folder."""
    override = os.environ.get(POLICY_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.site_config_dir(APP_NAME, APP_AUTHOR)) / POLICY_FILE_NAME


def make_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if sys.platform != "win32":
        path.chmod(0o700)
    return path


def make_private_file(path: Path) -> Path:
    """Create the file if needed and restrict it to the user before anything is written to it."""
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    if sys.platform != "win32":
        path.chmod(0o600)
    return path
