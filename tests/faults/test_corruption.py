"""Issue 7's corruption cases: after a complete sandbox sync (the `demo` seed, email Auto-Sharing
on, so saved emails with a PDF are in Salesforce), the profile's `state.sqlite3` is truncated to
100 bytes or overwritten with random bytes. The next `sync --once --sandbox --json` must say so
clearly (stderr, the JSON summary and the log, naming the file kept aside), keep the old file,
and rebuild the links by first-run matching: both sides afterwards equal what they were before
(normalized multisets), no email or file saved twice.

The settings live in the state file too; their copy in the config folder
(`config/settings-backup.json`) puts them back, and the message says so: Auto-Sharing stays on
with no action from the user, and the sessions after that must still save no email twice (the
email stage finds saved ones in Salesforce by Message-ID before writing).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from faults_support import (
    EMAIL_KINDS,
    cli,
    differences,
    duplicated,
    short,
    snapshot,
    summarize,
    sync_once,
    sync_until_quiet,
)

from scc_desktop.net import https_session
from scc_desktop.sandbox.server import SandboxServer


def read_state(profile: Path) -> dict[str, Counter[str]]:
    with SandboxServer(profile / "data" / "sandbox") as server:
        http = https_session(server.ca.ca_file)
        try:
            return snapshot(http, server.admin_url)
        finally:
            http.close()


def damage(path: Path, how: str) -> None:
    if how == "truncated":
        with path.open("r+b") as f:
            f.truncate(100)
    else:
        size = max(path.stat().st_size, 8192)
        path.write_bytes(random.Random(11).randbytes(size))


@pytest.mark.parametrize("how", ["truncated", "random-bytes"])
def test_a_damaged_state_file_is_kept_aside_and_the_resync_duplicates_nothing(
    tmp_path: Path, how: str
) -> None:
    profile = tmp_path / "p"
    assert cli(profile, "settings", "set", "email_autoshare", "on").returncode == 0
    runs = sync_until_quiet(profile)
    assert runs[-1]["changes"] == 0, short(runs)
    before = read_state(profile)
    counts = summarize(before)
    assert all(counts[k] > 0 for k in EMAIL_KINDS), counts

    state_file = profile / "data" / "state.sqlite3"
    damage(state_file, how)

    first = sync_once(profile)
    # a clear message, naming where the old file went
    aside = [
        p
        for p in (profile / "data").glob("state.sqlite3.corrupt-*")
        if p.suffix[-4:] not in ("-wal", "-shm")
    ]
    assert len(aside) == 1, sorted(p.name for p in (profile / "data").iterdir())
    assert aside[0].stat().st_size > 0  # kept, not emptied
    assert "could not be read" in first["_stderr"], first["_stderr"]
    assert str(aside[0]) in first["_stderr"], first["_stderr"]
    recovery = first.get("state_recovery")
    assert isinstance(recovery, dict), first
    assert recovery["moved_to"] == str(aside[0])
    log = (profile / "logs" / "scc-desktop.log").read_text(encoding="utf-8")
    assert str(aside[0]) in log
    assert first["_returncode"] == 0, first["_stderr"][-2000:]
    assert first["status"] == "ok", json.dumps(first)[:2000]

    # the settings came back from their copy in the config folder, and the message says so
    assert "settings were restored" in first["_stderr"], first["_stderr"]
    shown = cli(profile, "settings", "get", "email_autoshare")
    assert shown.returncode == 0 and shown.stdout.strip() == "true", shown.stdout
    runs = sync_until_quiet(profile)
    assert runs[-1]["changes"] == 0, short(runs)
    after = read_state(profile)
    problems = duplicated(after)
    diff = differences(after, before)
    assert not problems and not diff, "\n".join(problems + diff)
    # and the links were rebuilt: the last session was quiet and wrote nothing
    assert runs[-1]["status"] == "ok"
    assert (
        sum(
            n
            for sides in runs[-1]["counts"].values()
            for side in sides.values()
            for n in side.values()
        )
        == 0
    )
