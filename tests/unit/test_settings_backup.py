"""A damaged state file must not take the user's settings (blacklist, switches) with it."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from scc_desktop.auth.credentials import MemoryBackend
from scc_desktop.context import AppContext


def _open(root: Path) -> AppContext:
    return AppContext.open(
        root / "p", secret_backend=MemoryBackend(), policy_path=root / "no-policy.toml"
    )


def _damage(ctx: AppContext) -> None:
    ctx.db.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ctx.db.close()
    ctx.paths.state_db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)


def test_settings_survive_a_damaged_state_file(tmp_path: Path) -> None:
    ctx = _open(tmp_path)
    ctx.settings().set("blacklist", "globex.example, bob@acme.example")
    ctx.settings().set("email_autoshare", True)
    _damage(ctx)

    again = _open(tmp_path)
    assert again.db.recovery is not None
    message = again.db.recovery.user_message()
    assert "moved aside" in message
    assert "settings were restored" in message
    assert again.settings().get("blacklist") == "globex.example, bob@acme.example"
    assert again.settings().get("email_autoshare") is True


def test_without_a_backup_the_message_says_settings_are_back_to_defaults(tmp_path: Path) -> None:
    ctx = _open(tmp_path)
    ctx.settings().set("blacklist", "globex.example")
    ctx.paths.settings_backup.unlink()
    _damage(ctx)

    again = _open(tmp_path)
    assert again.db.recovery is not None
    assert "back to their defaults" in again.db.recovery.user_message()
    assert again.settings().get("blacklist") == ""


def test_an_older_profile_gets_its_backup_at_the_next_start(tmp_path: Path) -> None:
    ctx = _open(tmp_path)
    ctx.settings().set("blacklist", "globex.example")
    ctx.paths.settings_backup.unlink()  # as a profile written before the backup existed
    ctx.db.close()
    _open(tmp_path)
    assert '"globex.example"' in ctx.paths.settings_backup.read_text("utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_backup_is_private_and_holds_no_partial_write(tmp_path: Path) -> None:
    ctx = _open(tmp_path)
    ctx.settings().set("blacklist", "globex.example")
    mode = stat.S_IMODE(ctx.paths.settings_backup.stat().st_mode)
    assert mode & 0o077 == 0
    assert not list(ctx.paths.config_dir.glob(".*.tmp"))
