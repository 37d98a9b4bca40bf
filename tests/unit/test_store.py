import sqlite3
import stat
from pathlib import Path

import pytest

from scc_desktop.store import db as dbmod
from scc_desktop.store import migrations
from scc_desktop.store.db import NewerSchemaError, open_database
from scc_desktop.store.history import History
from scc_desktop.store.issues import Issues
from scc_desktop.store.settings_table import SettingsTable


def test_fresh_database_is_private_wal_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "data" / "state.sqlite3"
    db = open_database(path)
    assert db.schema_version() == migrations.latest_version()
    assert db.recovery is None
    conn = db.connect()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == dbmod.BUSY_TIMEOUT_MS
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"settings", "accounts", "sync_runs", "sync_issues", "cursors"} <= tables


def test_reopening_does_not_migrate_or_back_up_again(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    open_database(path).close()
    open_database(path).close()
    assert not list(tmp_path.glob("*backup*"))


def test_forward_migration_backs_up_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.sqlite3"
    db = open_database(path)
    SettingsTable(db).save("email_autoshare", "true")
    db.close()
    before = migrations.latest_version()
    extra = migrations.Migration(before + 100, "test step", "CREATE TABLE test_added (x INTEGER);")
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, extra])
    db = open_database(path)
    assert db.schema_version() == before + 100
    backups = list(tmp_path.glob(f"state.sqlite3.v{before}-backup-*"))
    assert len(backups) == 1
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    old = sqlite3.connect(backups[0])
    assert old.execute("PRAGMA user_version").fetchone()[0] == before
    assert old.execute("SELECT value FROM settings").fetchone()[0] == "true"
    old.close()
    assert SettingsTable(db).load_all() == {"email_autoshare": "true"}


def test_a_failing_migration_rolls_back_and_keeps_the_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.sqlite3"
    open_database(path).close()
    version = migrations.latest_version()
    broken = migrations.Migration(
        version + 1, "broken", "CREATE TABLE half (x INTEGER);\nTHIS IS NOT SQL;"
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    with pytest.raises(sqlite3.OperationalError):
        open_database(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == version
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchone() is None
    conn.close()


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    open_database(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 9999")
    conn.close()
    with pytest.raises(NewerSchemaError, match="newer scc-desktop"):
        open_database(path)


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"this is not a database at all" * 100),
        lambda p: p.write_bytes(p.read_bytes()[:1000]),
        lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000),
    ],
    ids=["garbage", "truncated", "bad-header"],
)
def test_corrupt_file_is_moved_aside_with_a_message(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "state.sqlite3"
    db = open_database(path)
    SettingsTable(db).save("blacklist", "gmail.com")
    db.connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    original = path.read_bytes()
    damage(path)
    damaged = path.read_bytes()
    assert damaged != original
    db = open_database(path)
    assert db.recovery is not None
    assert db.recovery.moved_to.exists()
    assert db.recovery.moved_to.read_bytes() == damaged  # kept aside, not deleted
    assert "moved aside" in db.recovery.user_message()
    assert SettingsTable(db).load_all() == {}  # a fresh state
    assert db.schema_version() == migrations.latest_version()


def test_history_and_issues_round_trip(tmp_path: Path) -> None:
    db = open_database(tmp_path / "state.sqlite3")
    history = History(db)
    run = history.start("manual")
    history.finish(run, "ok", "Synced", {"counts": {"contact": {"salesforce": {"created": 2}}}})
    stale = history.start("timer")
    assert history.mark_interrupted() == 1
    runs = history.recent()
    assert [r.id for r in runs] == [stale, run]
    assert runs[0].status == "failed" and "Interrupted" in runs[0].message
    assert runs[1].summary["counts"]["contact"]["salesforce"]["created"] == 2

    issues = Issues(db)
    first = issues.add("contact", "error", "Could not save", "STRING_TOO_LONG", item_key="c1")
    issues.add("contact", "error", "Could not save", "again", item_key="c1")  # replaces the first
    issues.add(
        "task", "conflict", "Both changed", "pick one", payload={"mailbox": {}, "salesforce": {}}
    )
    assert issues.count_open() == 2
    assert first not in [i.id for i in issues.open()]
    issues.resolve(issues.open("task")[0].id, "kept salesforce")
    assert issues.count_open() == 1
