"""The mailbox repositories against the Graph emulator, alone and under the real engine."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mailbox_sandbox import MailboxSandbox, make_settings

from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.settings import SettingsSnapshot
from scc_desktop.store.db import open_database
from scc_desktop.sync.fields import FieldValue, Kind, normalize
from scc_desktop.sync.mailbox_side import mailbox_repositories
from scc_desktop.sync.memory import Clock, MemoryRepository
from scc_desktop.sync.ports import (
    ChangePage,
    ItemDelete,
    ItemUpdate,
    NewItem,
    SideItem,
    SideRepository,
)
from scc_desktop.sync.session import KindJob, kind_options, run_session
from scc_desktop.sync.state import SyncState

ALL_ON = make_settings(
    meetings_autoshare=True, appointments_autoshare=True, sync_private_items=True
)


def _repos(
    mailbox: GraphMailbox, settings: SettingsSnapshot, now: datetime | None = None
) -> dict[Kind, SideRepository]:
    return mailbox_repositories(mailbox, settings, now=now or datetime.now(UTC))


def _drain(repo: SideRepository, cursor: str | None) -> tuple[list[ChangePage], str]:
    pages = list(repo.read_changes(cursor))
    assert pages
    return pages, pages[-1].cursor


def _upserted(pages: list[ChangePage]) -> dict[str, SideItem]:
    return {item.id: item for page in pages for item in page.upserted}


def _subjects(pages: list[ChangePage]) -> set[str]:
    return {str(i.fields["subject"]) for i in _upserted(pages).values()}


def _graph_calls(repo: SideRepository) -> int:
    calls = getattr(repo, "api_calls")()  # noqa: B009 - CountsApiCalls is optional
    return int(calls["graph"])


# --- listing and scope ----------------------------------------------------------------------


def test_full_listing_follows_the_switches(demo_sandbox: MailboxSandbox) -> None:
    mailbox = demo_sandbox.mailbox()
    scoped = {
        "none": make_settings(),
        "meetings": make_settings(meetings_autoshare=True),
        "appointments": make_settings(appointments_autoshare=True),
        "all": ALL_ON,
    }
    seen: dict[str, set[str]] = {}
    for name, settings in scoped.items():
        pages, _ = _drain(_repos(mailbox, settings)["event"], None)
        assert all(page.full for page in pages)
        seen[name] = _subjects(pages)
    # only the item categorized "Salesforce" (a meeting) with both switches off
    assert seen["none"] == {"Hooli intro call"}
    assert {"Pipeline review", "Acme fleet renewal - pricing walkthrough"} <= seen["meetings"]
    assert "Prep: Acme pricing" not in seen["meetings"]
    assert {"Prep: Acme pricing", "Sales kickoff", "Hooli intro call"} <= seen["appointments"]
    assert "Pipeline review" not in seen["appointments"]
    assert "Dentist" not in seen["appointments"]  # private
    assert seen["all"] == seen["meetings"] | seen["appointments"] | {"Dentist"}

    events = _upserted(_drain(_repos(mailbox, ALL_ON)["event"], None)[0])
    dentist = next(i for i in events.values() if i.fields["subject"] == "Dentist")
    assert dentist.fields["is_private"] is True
    kickoff = next(i for i in events.values() if i.fields["subject"] == "Sales kickoff")
    assert kickoff.fields["is_all_day"] is True and len(str(kickoff.fields["start"])) == 10
    series = [i for i in events.values() if i.fields["subject"] == "Pipeline review"]
    assert len(series) >= 8  # weekly occurrences inside the 74-day window, one item each
    assert len({i.id for i in series}) == len(series)
    assert all(str(i.fields["start"]).endswith("17:00:00Z") for i in series)

    # an out-of-scope item is reported departed (never removed) and `get` says so
    repo = _repos(mailbox, make_settings())["event"]
    pages, _ = _drain(repo, None)
    departed = {i for page in pages for i in page.departed}
    assert dentist.id in departed and all(not page.removed for page in pages)
    (got,) = repo.get([dentist.id])
    assert got.in_scope is False and got.fields["subject"] == "Dentist"

    contacts, _ = _drain(_repos(mailbox, ALL_ON)["contact"], None)
    people = _upserted(contacts).values()
    # the folder is new and empty: Jane Cooper is in scope through her category only
    assert [(c.fields["last_name"], c.fields["email"]) for c in people] == [
        ("Cooper", "jane.cooper@acme.example")
    ]
    tasks, _ = _drain(_repos(mailbox, ALL_ON)["task"], None)
    assert _upserted(tasks) == {}  # the demo's tasks are in the default list, not ours


# --- writes ---------------------------------------------------------------------------------

CONTACT = normalize(
    "contact",
    {"first_name": "Wei", "last_name": "Chen", "email": "wei@x.example", "company": "X"},
)
TASK = normalize(
    "task",
    {
        "subject": "Send quote",
        "due_date": "2026-12-01",
        "status": "in_progress",
        "priority": "high",
        "description": "by Friday",
    },
)


def _event_fields(now: datetime, subject: str = "From Salesforce") -> dict[str, FieldValue]:
    start = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    return normalize(
        "event",
        {
            "subject": subject,
            "start": start,
            "end": start + timedelta(minutes=45),
            "is_all_day": False,
            "location": "HQ",
            "description": "agenda",
            "show_as": "busy",
            "is_private": False,
        },
    )


def _exercise_writes(repo: SideRepository, fields: Mapping[str, FieldValue], key: str) -> None:
    first = repo.create([NewItem(key, fields)])
    second = repo.create([NewItem(key, fields)])
    assert first[0].ok and second[0].ok
    assert first[0].id and second[0].id == first[0].id  # same key: one item
    item_id, version = first[0].id, first[0].version or ""
    found = repo.find_by_correlation_key([key, "no-such-key"])
    assert list(found) == [key] and found[key].id == item_id

    changed = {**fields, "subject" if "subject" in fields else "last_name": "Renamed"}
    ok = repo.update([ItemUpdate(item_id, version, changed, frozenset(changed))])
    assert ok[0].ok and ok[0].id == item_id and ok[0].version and ok[0].version != version
    stale = repo.update([ItemUpdate(item_id, version, fields, frozenset(fields))])
    assert not stale[0].ok and stale[0].transient

    gone = repo.delete([ItemDelete(item_id, ok[0].version or "")])
    again = repo.delete([ItemDelete(item_id, ok[0].version or "")])
    assert gone[0].ok and again[0].ok
    assert repo.find_by_correlation_key([key]) == {}


def test_contact_writes(empty_sandbox: MailboxSandbox) -> None:
    repo = _repos(empty_sandbox.mailbox(), ALL_ON)["contact"]
    _exercise_writes(repo, CONTACT, "key-contact-1")


def test_task_writes(empty_sandbox: MailboxSandbox) -> None:
    repo = _repos(empty_sandbox.mailbox(), ALL_ON)["task"]
    _exercise_writes(repo, TASK, "key-task-1")


def test_event_writes_are_categorized_without_invitations(empty_sandbox: MailboxSandbox) -> None:
    now = datetime.now(UTC)
    repo = _repos(empty_sandbox.mailbox(), make_settings(), now)["event"]
    fields = _event_fields(now)
    created = repo.create([NewItem("key-event-1", {**fields, "attendees": ("x@y.example",)})])
    assert created[0].ok
    (row,) = empty_sandbox.dump("events")
    assert row["id"] == created[0].id
    assert row["categories"] == ["Salesforce"]
    assert not row.get("attendees")  # attendees are never written
    # in scope with both switches off, thanks to the category; the read-back is what we wrote
    (listed,) = _upserted(_drain(repo, None)[0]).values()
    assert {k: listed.fields[k] for k in fields} == fields
    _exercise_writes(repo, fields, "key-event-2")


def test_updates_keep_what_is_not_synced(empty_sandbox: MailboxSandbox) -> None:
    """A categorized contact keeps its category and third address when Salesforce edits it."""
    user = empty_sandbox.mailbox()
    raw = user.http.send_json(
        "POST",
        "/me/contacts",
        {
            "givenName": "Olivia",
            "surname": "Brown",
            "emailAddresses": [
                {"address": "olivia@b.example"},
                {"address": "o2@b.example"},
                {"address": "o3@b.example"},
            ],
            "categories": ["Salesforce", "Red"],
        },
    )
    repo = _repos(empty_sandbox.mailbox(), ALL_ON)["contact"]  # nothing read this session
    fields = {**CONTACT, "first_name": "Olivia", "last_name": "Brown", "email": "ob@b.example"}
    (result,) = repo.update([ItemUpdate(str(raw["id"]), str(raw["changeKey"]), fields)])
    assert result.ok
    (row,) = empty_sandbox.dump("contacts")
    assert row["categories"] == ["Salesforce", "Red"]
    emails = [e["address"] for e in row["emailAddresses"]]
    assert emails == ["ob@b.example", "o3@b.example"]


# --- incremental reads ----------------------------------------------------------------------


def test_quiet_read_is_one_call_per_stream(demo_sandbox: MailboxSandbox) -> None:
    now = datetime.now(UTC)
    mailbox = demo_sandbox.mailbox()
    cursors: dict[Kind, str] = {}
    for kind, repo in _repos(mailbox, ALL_ON, now).items():
        cursors[kind] = _drain(repo, None)[1]
    demo_sandbox.reset_counters()
    quiet = _repos(mailbox, ALL_ON, now)
    for kind, repo in quiet.items():
        pages, cursors[kind] = _drain(repo, cursors[kind])
        assert _upserted(pages) == {}
        assert not any(p.removed or p.departed or p.full for p in pages)
    # contacts: our folder's delta plus the default folder's (the categorized ones kept);
    # events and tasks: one delta each
    calls = {kind: _graph_calls(repo) for kind, repo in quiet.items()}
    assert calls == {"contact": 2, "event": 1, "task": 1}
    server = demo_sandbox.counters()["microsoft"]
    assert server.get("contact_delta") == 2 and not server.get("contacts")
    assert server.get("calendar_delta") == 1 and server.get("todo_delta") == 1
    assert sum(v for k, v in server.items() if k not in ("token", "total")) == 4

    # a change on each stream comes back as exactly that change
    user = demo_sandbox.mailbox()
    contacts = {str(c.get("surname")): c for c in demo_sandbox.dump("contacts")}
    jane = contacts["Cooper"]
    user.http.send_json("PATCH", f"/me/contacts/{jane['id']}", {"jobTitle": "COO"})
    user.http.send_json("PATCH", f"/me/contacts/{contacts['Chen']['id']}", {"categories": []})
    repos = _repos(mailbox, ALL_ON, now)
    pages, cursors["contact"] = _drain(repos["contact"], cursors["contact"])
    changed = _upserted(pages)
    assert [i.fields["title"] for i in changed.values()] == ["COO"]
    assert not any(p.departed for p in pages)  # Wei Chen was never in scope
    user.http.send_json("PATCH", f"/me/contacts/{jane['id']}", {"categories": []})
    pages, _ = _drain(_repos(mailbox, ALL_ON, now)["contact"], cursors["contact"])
    assert _upserted(pages) == {}
    assert [d for p in pages for d in p.departed] == [jane["id"]]


def test_shared_contacts_cost_one_call_when_quiet_whatever_their_number(
    demo_sandbox: MailboxSandbox,
) -> None:
    """Contacts categorized "Salesforce" are read by a delta of the default folder, filtered
    here: 25 of them over pages of 10 cost one call in a quiet session, and a deleted one comes
    back as removed, a contact that was never shared stays out."""
    now = datetime.now(UTC)
    mailbox = demo_sandbox.mailbox()
    mailbox.page_size = 10
    user = demo_sandbox.mailbox()
    for n in range(25):
        user.http.send_json(
            "POST",
            "/me/contacts",
            {"givenName": "Many", "surname": f"Shared{n:02}", "categories": ["Salesforce"]},
        )
    plain = user.http.send_json("POST", "/me/contacts", {"givenName": "Not", "surname": "Shared"})
    pages, cursor = _drain(_repos(mailbox, ALL_ON, now)["contact"], None)
    listed = _upserted(pages)
    shared = {i.id for i in listed.values() if str(i.fields["last_name"]).startswith("Shared")}
    assert len(shared) == 25
    assert plain["id"] not in listed

    demo_sandbox.reset_counters()
    quiet = _repos(mailbox, ALL_ON, now)["contact"]
    pages, cursor = _drain(quiet, cursor)
    assert _upserted(pages) == {}
    assert not any(p.removed or p.departed or p.full for p in pages)
    assert _graph_calls(quiet) == 2  # our folder's delta and the default folder's
    assert demo_sandbox.counters()["microsoft"].get("contact_delta") == 2

    gone = sorted(shared)[0]
    user.http.send_json("DELETE", f"/me/contacts/{gone}")
    user.http.send_json("PATCH", f"/me/contacts/{plain['id']}", {"jobTitle": "CFO"})
    pages, cursor = _drain(_repos(mailbox, ALL_ON, now)["contact"], cursor)
    assert _upserted(pages) == {}
    assert [r for p in pages for r in p.removed] == [gone]
    assert not any(p.departed for p in pages)
    pages, _ = _drain(_repos(mailbox, ALL_ON, now)["contact"], cursor)
    assert not any(p.upserted or p.removed or p.departed for p in pages)


# --- the engine over the mailbox ------------------------------------------------------------


def _jobs(
    mailbox: GraphMailbox,
    settings: SettingsSnapshot,
    memory: Mapping[Kind, MemoryRepository],
    now: datetime,
) -> list[KindJob]:
    repos = mailbox_repositories(mailbox, settings, now=now)
    return [
        KindJob(kind, repos[kind], memory[kind], kind_options(kind, settings.values))
        for kind in ("contact", "event", "task")
    ]


def _writes(summary: Mapping[str, object]) -> dict[str, int]:
    counts = summary["counts"]
    assert isinstance(counts, dict)
    return {
        f"{kind}:{side}": sum(n.values())
        for kind, sides in counts.items()
        for side, n in sides.items()
    }


def test_engine_links_everything_and_switches_never_delete(
    demo_sandbox: MailboxSandbox, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    settings = make_settings(meetings_autoshare=True, appointments_autoshare=True)
    memory: dict[Kind, MemoryRepository] = {
        kind: MemoryRepository("salesforce", kind, max_batch=200)
        for kind in ("contact", "event", "task")
    }
    memory["contact"].add(CONTACT)
    memory["task"].add(TASK)
    memory["event"].add(_event_fields(now, "Salesforce-born"))
    db = open_database(tmp_path / "state.sqlite3")
    try:
        state = SyncState(db)
        mailbox = demo_sandbox.mailbox()

        first = run_session(_jobs(mailbox, settings, memory, now), state)
        assert first["status"] == "ok", first
        listed = {
            kind: _upserted(_drain(repo, None)[0])
            for kind, repo in mailbox_repositories(mailbox, settings, now=now).items()
        }
        assert {k: len(v) for k, v in listed.items()} == {k: len(memory[k].items) for k in memory}
        for kind, repo in memory.items():
            assert len(state.links(kind)) == len(repo.items)
        assert "Salesforce-born" in {str(i.fields["subject"]) for i in listed["event"].values()}
        assert {"Wei", "Jane"} <= {str(i.fields["first_name"]) for i in listed["contact"].values()}

        second = run_session(_jobs(mailbox, settings, memory, now), state)
        assert second["status"] == "ok", second
        assert set(_writes(second).values()) == {0}, second["counts"]
        assert second["api_calls"] == {"graph": 4, "memory-salesforce": 3}

        # meetings auto-sharing off: edited meetings and a full re-listing set the links aside
        before = {kind: set(memory[kind].items) for kind in memory}
        user = demo_sandbox.mailbox()
        meeting = next(
            e
            for e in demo_sandbox.dump("events")
            if e.get("subject") == "Acme fleet renewal - pricing walkthrough"
        )
        user.http.send_json("PATCH", f"/me/events/{meeting['id']}", {"location": "Room 2"})
        off = make_settings(meetings_autoshare=False, appointments_autoshare=True)
        third = run_session(_jobs(mailbox, off, memory, now), state)
        assert third["status"] == "ok", third
        demo_sandbox.invalidate_delta_tokens()
        fourth = run_session(_jobs(mailbox, off, memory, now), state)
        assert fourth["status"] == "ok", fourth
        for summary in (third, fourth):
            assert set(_writes(summary).values()) == {0}, summary["counts"]
        assert {kind: set(memory[kind].items) for kind in memory} == before
        # meetings are set aside (ids kept, nothing deleted); the rest stays linked
        states: dict[str, set[str]] = {}
        for link in state.links("event"):
            states.setdefault(str(link.base.get("subject")), set()).add(link.state)
        assert states["Acme fleet renewal - pricing walkthrough"] == {"mailbox_detached"}
        assert states["Pipeline review"] == {"mailbox_detached"}
        assert states["Hooli intro call"] == {"active"}  # a meeting, but categorized
        assert states["Prep: Acme pricing"] == {"active"}
        assert states["Salesforce-born"] == {"active"}
    finally:
        db.close()


def _reschedule(sandbox: MailboxSandbox, event_id: str, start: datetime) -> None:
    """The user moves an event (or one occurrence of a series) to `start`."""
    span = {
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
    }
    sandbox.mailbox().http.send_json("PATCH", f"/me/events/{event_id}", span)


def _beyond_window(now: datetime) -> datetime:
    return (now + timedelta(days=200)).replace(minute=0, second=0, microsecond=0)


def test_deletion_is_a_removal_and_get_fetches_by_id(demo_sandbox: MailboxSandbox) -> None:
    now = datetime.now(UTC)
    mailbox = demo_sandbox.mailbox()
    pages, cursor = _drain(_repos(mailbox, ALL_ON, now)["event"], None)
    by_subject = {str(i.fields["subject"]): i for i in _upserted(pages).values()}
    prep, call = by_subject["Prep: Acme pricing"], by_subject["Hooli intro call"]
    demo_sandbox.mailbox().http.send_json("DELETE", f"/me/events/{prep.id}", None)

    repo = _repos(mailbox, ALL_ON, now)["event"]
    pages, _ = _drain(repo, cursor)
    assert [i for p in pages for i in p.removed] == [prep.id]
    assert not any(p.upserted or p.departed for p in pages)
    assert _graph_calls(repo) == 2  # the delta, and one $batch confirming the removal

    kickoff = by_subject["Globex PO kickoff"]
    _reschedule(demo_sandbox, kickoff.id, _beyond_window(now))
    fresh = _repos(mailbox, ALL_ON, now)["event"]  # nothing seen yet: fetched by id
    demo_sandbox.reset_counters()
    got = {i.id: i for i in fresh.get([prep.id, call.id, kickoff.id])}
    assert set(got) == {call.id, kickoff.id}  # the deleted one is left out: gone
    assert (got[call.id].in_scope, got[call.id].fields) == (True, call.fields)
    assert got[kickoff.id].in_scope is False  # exists, beyond the window
    assert got[call.id].modified_at == call.modified_at
    assert _graph_calls(fresh) == 1
    server = demo_sandbox.counters()["microsoft"]
    assert server.get("batch") == 1 and server.get("calendar_delta") is None


def test_event_moved_beyond_the_window_is_departed_not_removed(
    demo_sandbox: MailboxSandbox,
) -> None:
    now = datetime.now(UTC)
    mailbox = demo_sandbox.mailbox()
    pages, cursor = _drain(_repos(mailbox, ALL_ON, now)["event"], None)
    items = _upserted(pages)
    assert items and all(
        i.modified_at is not None and i.modified_at.tzinfo is not None for i in items.values()
    )
    by_subject = {str(i.fields["subject"]): i for i in items.values()}
    call, prep = by_subject["Hooli intro call"], by_subject["Prep: Acme pricing"]
    occurrence = min(
        (i for i in items.values() if i.fields["subject"] == "Pipeline review"),
        key=lambda i: str(i.fields["start"]),
    )
    _reschedule(demo_sandbox, call.id, _beyond_window(now))
    _reschedule(demo_sandbox, occurrence.id, _beyond_window(now) + timedelta(days=1))
    demo_sandbox.mailbox().http.send_json("DELETE", f"/me/events/{prep.id}", None)

    repo = _repos(mailbox, ALL_ON, now)["event"]
    pages, _ = _drain(repo, cursor)
    assert {i for p in pages for i in p.departed} == {call.id, occurrence.id}
    assert [i for p in pages for i in p.removed] == [prep.id]
    assert call.id not in _upserted(pages) and occurrence.id not in _upserted(pages)
    assert _graph_calls(repo) == 2  # the delta page and one $batch for its removals


def test_modified_at_follows_the_mailbox(demo_sandbox: MailboxSandbox) -> None:
    now = datetime.now(UTC)
    mailbox = demo_sandbox.mailbox()
    repos = _repos(mailbox, ALL_ON, now)
    created = repos["task"].create([NewItem("key-task-m", TASK)])
    contact = repos["contact"].create([NewItem("key-contact-m", CONTACT)])
    assert created[0].ok and contact[0].ok
    cursors: dict[Kind, str] = {}
    first: dict[Kind, dict[str, SideItem]] = {}
    for kind, repo in _repos(mailbox, ALL_ON, now).items():
        pages, cursors[kind] = _drain(repo, None)
        first[kind] = _upserted(pages)
        assert first[kind]
        for item in first[kind].values():
            assert item.modified_at is not None and item.modified_at.utcoffset() == timedelta(0)
            assert item.modified_at >= now - timedelta(days=1)
    user = demo_sandbox.mailbox()
    task_path = f"/me/todo/lists/{user.ensure_setup().tasks_list_id}/tasks/{created[0].id}"
    user.http.send_json("PATCH", task_path, {"title": "Renamed"})
    user.http.send_json("PATCH", f"/me/contacts/{contact[0].id}", {"jobTitle": "CTO"})
    for kind, item_id in (("task", created[0].id), ("contact", contact[0].id)):
        pages, _ = _drain(_repos(mailbox, ALL_ON, now)[kind], cursors[kind])
        after = _upserted(pages)[item_id].modified_at
        before = first[kind][item_id].modified_at
        assert after is not None and before is not None and after > before


def test_engine_keeps_salesforce_events_of_meetings_moved_beyond_the_window(
    demo_sandbox: MailboxSandbox, tmp_path: Path
) -> None:
    """Rescheduling past the window sets the link aside; only a real deletion deletes."""
    now = datetime.now(UTC)
    memory: dict[Kind, MemoryRepository] = {
        kind: MemoryRepository("salesforce", kind, max_batch=200)
        for kind in ("contact", "event", "task")
    }
    db = open_database(tmp_path / "state.sqlite3")
    try:
        state = SyncState(db)
        mailbox = demo_sandbox.mailbox()
        first = run_session(_jobs(mailbox, ALL_ON, memory, now), state)
        assert first["status"] == "ok", first
        linked = state.links("event")
        links = {str(link.base.get("subject")): link for link in linked}
        call, prep = links["Hooli intro call"], links["Prep: Acme pricing"]
        series = sorted(
            (
                link
                for link in state.links("event")
                if link.base.get("subject") == "Pipeline review"
            ),
            key=lambda link: str(link.base.get("start")),
        )
        occurrence = series[-1]
        assert call.mailbox_id and prep.mailbox_id and occurrence.mailbox_id
        events_before = set(memory["event"].items)
        assert {call.salesforce_id, prep.salesforce_id, occurrence.salesforce_id} <= events_before

        _reschedule(demo_sandbox, call.mailbox_id, _beyond_window(now))
        _reschedule(demo_sandbox, occurrence.mailbox_id, _beyond_window(now) + timedelta(days=1))
        demo_sandbox.mailbox().http.send_json("DELETE", f"/me/events/{prep.mailbox_id}", None)
        second = run_session(_jobs(mailbox, ALL_ON, memory, now), state)
        assert second["status"] == "ok", second
        # the deleted meeting's Salesforce event is deleted; the rescheduled ones are kept
        assert set(memory["event"].items) == events_before - {prep.salesforce_id}
        writes = {k: v for k, v in _writes(second).items() if v}
        assert writes == {"event:salesforce": 1}, second["counts"]
        after = {link.mailbox_id: link for link in state.links("event")}
        assert after[call.mailbox_id].state == "mailbox_detached"
        assert after[occurrence.mailbox_id].state == "mailbox_detached"
        assert prep.mailbox_id not in after
        assert sum(1 for link in after.values() if link.state == "active") == len(linked) - 3

        third = run_session(_jobs(mailbox, ALL_ON, memory, now), state)  # quiet again
        assert third["status"] == "ok" and set(_writes(third).values()) == {0}, third["counts"]
        assert set(memory["event"].items) == events_before - {prep.salesforce_id}
    finally:
        db.close()


def test_newest_edit_wins_with_the_mailbox_time(
    empty_sandbox: MailboxSandbox, tmp_path: Path
) -> None:
    """A same-field conflict: the mailbox's lastModifiedDateTime decides against Salesforce's
    (before, the mailbox side had no time and Salesforce always won)."""
    now = datetime.now(UTC)
    mailbox = empty_sandbox.mailbox()
    outcome: dict[str, str] = {}
    for name, sf_clock in (
        ("mailbox newer", Clock(now - timedelta(days=2))),
        ("salesforce newer", Clock(now + timedelta(days=2))),
    ):
        memory: dict[Kind, MemoryRepository] = {
            kind: MemoryRepository("salesforce", kind, max_batch=200, clock=sf_clock)
            for kind in ("contact", "event", "task")
        }
        sf_id = memory["contact"].add({**CONTACT, "email": f"{name[0]}@x.example"})
        db = open_database(tmp_path / f"state-{name[0]}.sqlite3")
        try:
            state = SyncState(db)
            assert run_session(_jobs(mailbox, ALL_ON, memory, now), state)["status"] == "ok"
            (link,) = [lk for lk in state.links("contact") if lk.salesforce_id == sf_id]
            assert link.mailbox_id
            memory["contact"].edit(sf_id, {"title": "From Salesforce"})
            mailbox.http.send_json(
                "PATCH", f"/me/contacts/{link.mailbox_id}", {"jobTitle": "From Outlook"}
            )
            assert run_session(_jobs(mailbox, ALL_ON, memory, now), state)["status"] == "ok"
            outcome[name] = str(memory["contact"].values(sf_id)["title"])
        finally:
            db.close()
    assert outcome == {"mailbox newer": "From Outlook", "salesforce newer": "From Salesforce"}
