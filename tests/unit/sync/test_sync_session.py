"""The session over several kinds and its summary, history row and issues."""

from __future__ import annotations

import json

import pytest
from sync_harness import Harness

from scc_desktop.store.migrations import latest_version
from scc_desktop.sync.engine import KindOptions
from scc_desktop.sync.memory import Clock, MemoryRepository, SimulatedCrash
from scc_desktop.sync.planner import Direction, Policy
from scc_desktop.sync.session import KindJob, kind_options, run_session
from scc_desktop.sync.state import SyncState


def jobs(clock: Clock | None = None) -> list[KindJob]:
    clock = clock or Clock()
    out = []
    for kind in ("contact", "event", "task"):
        mb = MemoryRepository("mailbox", kind, clock=clock, service="graph")
        sf = MemoryRepository("salesforce", kind, clock=clock, service="salesforce")
        out.append(KindJob(kind, mb, sf, KindOptions()))
    return out


def seed(js: list[KindJob]) -> None:
    contact, event, task = js
    contact.mailbox.add({"first_name": "Ada", "last_name": "L", "email": "ada@x.io"})  # type: ignore[attr-defined]
    contact.salesforce.add({"first_name": "Alan", "last_name": "T", "email": "alan@x.io"})  # type: ignore[attr-defined]
    event.salesforce.add(
        {
            "subject": "Kickoff",
            "start": "2026-03-29T07:00:00Z",  # type: ignore[attr-defined]
            "end": "2026-03-29T08:00:00Z",
            "attendees": ["ada@x.io"],
        }
    )
    task.mailbox.add({"subject": "Send deck", "due_date": "2026-04-01", "status": "Not Started"})  # type: ignore[attr-defined]


def test_summary_shape_counts_and_history(state: SyncState) -> None:
    js = jobs()
    seed(js)
    summary = run_session(js, state, trigger="manual")
    json.dumps(summary)  # JSON-able
    assert summary["status"] == "ok"
    assert summary["counts"] == {
        "contact": {
            "mailbox": {"created": 1, "updated": 0, "deleted": 0},
            "salesforce": {"created": 1, "updated": 0, "deleted": 0},
        },
        "event": {
            "mailbox": {"created": 1, "updated": 0, "deleted": 0},
            "salesforce": {"created": 0, "updated": 0, "deleted": 0},
        },
        "task": {
            "mailbox": {"created": 0, "updated": 0, "deleted": 0},
            "salesforce": {"created": 1, "updated": 0, "deleted": 0},
        },
    }
    calls = summary["api_calls"]
    assert isinstance(calls, dict) and calls["graph"] > 0 and calls["salesforce"] > 0
    assert summary["issues"] == []
    assert summary["needs_attention"] is False
    assert isinstance(summary["duration_s"], float)
    row = (
        state.db.connect()
        .execute(
            "SELECT status, trigger, finished_at, summary FROM sync_runs WHERE id = ?",
            (summary["run_id"],),
        )
        .fetchone()
    )
    assert (row["status"], row["trigger"]) == ("ok", "manual")
    assert row["finished_at"] is not None
    assert json.loads(row["summary"])["counts"] == summary["counts"]


def test_a_quiet_session_costs_one_read_per_stream(state: SyncState) -> None:
    js = jobs()
    seed(js)
    run_session(js, state)
    summary = run_session(js, state)
    assert summary["changes"] == 0
    assert summary["api_calls"] == {"graph": 3, "salesforce": 3}


def test_one_kind_failing_makes_the_session_partial(state: SyncState) -> None:
    js = jobs()
    seed(js)
    js[1].salesforce.faults.fail_reads = True  # type: ignore[attr-defined]
    summary = run_session(js, state)
    assert summary["status"] == "partial"
    issues = summary["issues"]
    assert isinstance(issues, list) and len(issues) == 1
    assert issues[0]["kind"] == "event" and "unreachable" in state.open_issues("event")[0].message
    counts = summary["counts"]
    assert isinstance(counts, dict) and set(counts) == {"contact", "task"}
    js[1].salesforce.faults.fail_reads = False  # type: ignore[attr-defined]
    assert run_session(js, state)["status"] == "ok"
    assert state.open_issues("event") == []  # the kind's failure closes when it syncs again


def test_every_kind_failing_fails_the_session(state: SyncState) -> None:
    js = jobs()
    for job in js:
        job.mailbox.faults.fail_reads = True  # type: ignore[attr-defined]
    assert run_session(js, state)["status"] == "failed"


def test_off_kinds_are_skipped(state: SyncState) -> None:
    js = jobs()
    seed(js)
    js = [
        KindJob(j.kind, j.mailbox, j.salesforce, KindOptions(direction=Direction.OFF))
        if j.kind != "task"
        else j
        for j in js
    ]
    summary = run_session(js, state)
    counts = summary["counts"]
    assert isinstance(counts, dict) and set(counts) == {"task"}
    # only the task streams are read (in full: no lookup needed before the create)
    assert summary["api_calls"] == {"graph": 1, "salesforce": 2}


def test_conflicts_need_attention(harness: Harness) -> None:
    h = harness
    m = h.mb.add({"first_name": "A", "last_name": "B", "email": "ab@x.io"})
    h.session()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "x"})
    h.sf.edit(s, {"title": "y"})
    summary = h.session()
    assert summary["status"] == "ok" and summary["needs_attention"] is True
    issues = summary["issues"]
    assert isinstance(issues, list) and issues[0]["category"] == "conflict"


def test_migration_two_is_applied(state: SyncState) -> None:
    assert state.db.schema_version() == latest_version() >= 2
    tables = {
        r[0]
        for r in state.db.connect().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert {
        "sync_links",
        "sync_intents",
        "sync_retries",
        "cursors",
        "sync_runs",
        "sync_issues",
    } <= tables


def test_a_killed_session_shows_as_interrupted_in_history(harness: Harness) -> None:
    h = harness
    h.mb.add({"first_name": "A", "last_name": "B"})
    h.sf.faults.crash_after_creates = 1
    with pytest.raises(SimulatedCrash):
        h.session()
    h.sf.faults.crash_after_creates = None
    assert h.session()["status"] == "ok"
    rows = h.state.db.connect().execute("SELECT status, message FROM sync_runs ORDER BY id")
    assert [tuple(r) for r in rows] == [("failed", "interrupted"), ("ok", "")]


def test_kind_options_from_settings() -> None:
    from scc_desktop.settings import SETTINGS

    defaults = {s.key: s.default for s in SETTINGS}
    contact = kind_options("contact", defaults)
    assert contact == KindOptions(Direction.TWO_WAY, Policy.NEWEST_WINS, False)
    assert kind_options("event", defaults).propagate_mailbox_deletes is True
    chosen = {
        **defaults,
        "tasks_direction": "sf_to_mailbox",
        "tasks_conflict": "mailbox_wins",
        "tasks_propagate_deletes": True,
    }
    assert kind_options("task", chosen) == KindOptions(
        Direction.SF_TO_MAILBOX, Policy.MAILBOX_WINS, True
    )
