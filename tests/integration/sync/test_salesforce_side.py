"""The Salesforce side repositories against the sandbox org, and the engine running over them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sf_side_fixtures import SfSide, settings_snapshot, sf_demo, sf_side

from scc_desktop.sandbox import demo_people as cast
from scc_desktop.store.db import open_database
from scc_desktop.sync.engine import KindOptions
from scc_desktop.sync.fields import FIELDS, FieldValue, Kind, fields_hash, normalize, project
from scc_desktop.sync.memory import MemoryRepository
from scc_desktop.sync.ports import ChangePage, ItemDelete, ItemUpdate, NewItem, SideRepository
from scc_desktop.sync.salesforce_side import SalesforceEvents, salesforce_repositories
from scc_desktop.sync.session import KindJob, run_session
from scc_desktop.sync.state import SyncState

__all__ = ["sf_demo", "sf_side"]  # fixtures used by pytest

MY_CONTACTS = {p.email.lower() for p in cast.CONTACTS[: cast.DEMO_USER_CONTACT_COUNT]}
SAMS_CONTACTS = {p.email.lower() for p in cast.CONTACTS[cast.DEMO_USER_CONTACT_COUNT :]}


def _read_all(repo: SideRepository, cursor: str | None = None) -> tuple[list[ChangePage], str]:
    pages = list(repo.read_changes(cursor))
    assert pages
    return pages, pages[-1].cursor


def _key() -> str:
    return uuid.uuid4().hex


def test_full_listing_of_the_demo_users_records(sf_side: SfSide) -> None:
    contacts, _ = _read_all(sf_side.repos["contact"])
    assert all(p.full for p in contacts)
    emails = {i.fields["email"] for p in contacts for i in p.upserted}
    assert emails >= MY_CONTACTS
    assert not emails & SAMS_CONTACTS
    acme = next(
        i for p in contacts for i in p.upserted if i.fields["email"] == cast.CONTACTS[0].email
    )
    assert acme.fields["company"] == cast.CONTACTS[0].company
    assert acme.version and acme.modified_at is not None

    events, _ = _read_all(sf_side.repos["event"])
    assert all(p.full for p in events)
    by_subject = {i.fields["subject"]: i for p in events for i in p.upserted}
    assert {"Quarterly review with Acme", "Pipeline review", "Northwind Summit"} <= set(by_subject)
    assert "Globex expansion kickoff" not in by_subject  # Sam's
    summit = by_subject["Northwind Summit"]
    assert summit.fields["is_all_day"] is True
    day = (datetime.now(UTC).date() + timedelta(days=20)).isoformat()
    assert summit.fields["start"] == day
    assert summit.fields["end"] == (datetime.now(UTC).date() + timedelta(days=21)).isoformat()
    review = by_subject["Pipeline review"].fields
    assert isinstance(review["start"], str) and review["start"].endswith("Z")
    assert review["location"] == "Room 4"

    tasks, _ = _read_all(sf_side.repos["task"])
    subjects = {i.fields["subject"] for p in tasks for i in p.upserted}
    assert {
        "Send proposal to Acme",
        "Follow up with Maria Garcia",
        "Prepare security questionnaire",
        "Call Wei Chen about the pilot",
    } <= subjects
    assert "Email: Pricing for 2026" not in subjects  # an email activity
    assert "Review Globex contract" not in subjects  # Sam's
    proposal = next(
        i for p in tasks for i in p.upserted if i.fields["subject"] == "Send proposal to Acme"
    )
    assert proposal.fields["status"] == "not_started"
    assert proposal.fields["priority"] == "high"


def test_create_twice_with_one_key_makes_one_record(sf_side: SfSide) -> None:
    repo = sf_side.repos["contact"]
    key = _key()
    fields = normalize(
        "contact",
        {
            "first_name": "Ola",
            "last_name": f"Nordmann-{key[:6]}",
            "email": f"ola.{key[:8]}@example.org",
            "company": "Acme Corporation",
            "city": "Oslo",
            "state": "Oslo",
        },
    )
    first = repo.create([NewItem(key, fields)])
    again = repo.create([NewItem(key, fields)])
    assert first[0].ok and again[0].ok, (first, again)
    assert first[0].id == again[0].id
    found = repo.find_by_correlation_key([key, "no-such-key"])
    assert set(found) == {key}
    item = found[key]
    assert item.id == first[0].id
    # the write returns what Salesforce stored (no read-back query); the version comes with
    # the next change-feed read
    assert again[0].fields is not None and again[0].version == ""
    assert project("contact", again[0].fields, repo.fields) == project(
        "contact", item.fields, repo.fields
    )
    assert item.version
    assert item.fields["company"] == "Acme Corporation"  # AccountId looked up by name
    assert item.fields["state"] == "Oslo"
    rows = [
        r
        for page in sf_side.gateway.query("Contact", ["AccountId"], f"Id = '{item.id}'")
        for r in page
    ]
    assert rows[0].get("AccountId")


def test_company_without_an_account_is_left_empty(sf_side: SfSide) -> None:
    repo = sf_side.repos["contact"]
    key = _key()
    fields = {"last_name": "Nobody", "company": "No Such Company Ltd"}
    result = repo.create([NewItem(key, fields)])[0]
    assert result.ok, result
    assert repo.find_by_correlation_key([key])[key].fields["company"] is None
    assert not [
        r
        for page in sf_side.gateway.query("Account", ["Name"], "Name = 'No Such Company Ltd'")
        for r in page
    ]


def test_update_with_the_right_and_a_stale_version(sf_side: SfSide) -> None:
    repo = sf_side.repos["task"]
    due = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    fields = normalize(
        "task", {"subject": "Ship the sync", "due_date": due, "status": "not_started"}
    )
    created = repo.create([NewItem(_key(), fields)])[0]
    assert created.ok and created.id
    version = repo.get([created.id])[0].version
    assert version
    changed = {**fields, "status": "completed", "priority": "low", "description": "done\nok"}
    ok = repo.update(
        [
            ItemUpdate(
                created.id,
                version,
                changed,
                frozenset({"status", "priority", "description"}),
            )
        ]
    )[0]
    assert ok.ok and ok.id == created.id
    now = repo.get([created.id])[0]
    assert now.version != version
    assert ok.fields is not None  # what Salesforce holds now, without a read-back
    assert project("task", ok.fields, repo.fields) == project("task", now.fields, repo.fields)
    assert now.fields["status"] == "completed"
    assert now.fields["priority"] == "low"
    assert now.fields["description"] == "done\nok"
    assert now.in_scope  # closed, but due lately

    stale = repo.update([ItemUpdate(created.id, version, fields, frozenset({"status"}))])[0]
    assert not stale.ok and stale.transient
    assert repo.get([created.id])[0].fields["status"] == "completed"

    gone = repo.update([ItemUpdate("00T000000000000AAA", "x", fields, frozenset({"status"}))])
    assert not gone[0].ok and not gone[0].transient


def test_delete_twice_is_ok_and_a_stale_delete_waits(sf_side: SfSide) -> None:
    repo = sf_side.repos["event"]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    fields = normalize(
        "event",
        {"subject": "Delete me", "start": start, "end": start + timedelta(minutes=30)},
    )
    created = repo.create([NewItem(_key(), fields)])[0]
    assert created.ok and created.id and created.version
    stale = repo.delete([ItemDelete(created.id, "2000-01-01T00:00:00.000+0000")])[0]
    assert not stale.ok and stale.transient
    first = repo.delete([ItemDelete(created.id, created.version)])
    again = repo.delete([ItemDelete(created.id, created.version)])
    assert first[0].ok and again[0].ok
    assert repo.get([created.id]) == []


def test_events_timed_and_all_day_round_trip(sf_side: SfSide) -> None:
    repo = sf_side.repos["event"]
    now = datetime.now(UTC).replace(microsecond=0)
    start = now.replace(hour=0, minute=30, second=0) + timedelta(days=5)  # UTC day != local day
    day = (now.date() + timedelta(days=6)).isoformat()
    after = (now.date() + timedelta(days=8)).isoformat()
    timed = normalize(
        "event",
        {
            "subject": "Timed",
            "start": start,
            "end": start + timedelta(hours=1, minutes=15),
            "location": "Room 1",
            "show_as": "oof",
            "description": "agenda",
        },
    )
    all_day = normalize(
        "event",
        {"subject": "Offsite", "start": day, "end": after, "is_all_day": True, "show_as": "free"},
    )
    results = repo.create([NewItem(_key(), timed), NewItem(_key(), all_day)])
    assert all(r.ok for r in results), results
    got = {i.id: i for i in repo.get([r.id or "" for r in results])}
    names = sorted(repo.fields)
    for result, sent in zip(results, (timed, all_day), strict=True):
        item = got[result.id or ""]
        assert item.version == result.version
        assert {n: item.fields.get(n) for n in names} == {
            n: normalize("event", {n: sent.get(n)})[n] for n in names
        }
    private = repo.create([NewItem(_key(), {**timed, "subject": "Secret", "is_private": True})])
    assert private[0].ok
    assert repo.get([private[0].id or ""])[0].in_scope is False  # private items are skipped


def test_event_attendees_become_whos_and_invitees(sf_side: SfSide) -> None:
    repo = salesforce_repositories(
        sf_side.gateway,
        settings_snapshot(),
        user_id=sf_side.user_id,
        now=datetime.now(UTC),
        attendees=True,
    )["event"]
    assert isinstance(repo, SalesforceEvents) and "attendees" in repo.fields
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=4)
    contact, other, colleague = cast.CONTACTS[0], cast.CONTACTS[1], cast.COLLEAGUES[0]
    attendees = (contact.email, other.email, colleague.email, "stranger@nowhere.example")
    fields = normalize(
        "event",
        {
            "subject": "With people",
            "start": start,
            "end": start + timedelta(hours=1),
            "attendees": attendees,
        },
    )
    created = repo.create([NewItem(_key(), fields)])[0]
    assert created.ok, created
    item = repo.get([created.id or ""])[0]
    assert item.version == created.version
    known = normalize("event", {"attendees": attendees[:3]})["attendees"]
    assert item.fields["attendees"] == known
    relations = [
        r
        for page in sf_side.gateway.query(
            "EventRelation",
            ["RelationId", "Relation.Email", "IsParent", "IsInvitee"],
            f"EventId = '{created.id}' AND IsWhat = false",
        )
        for r in page
    ]
    roles = {
        str(r.get("Relation.Email")).lower(): (r.get("IsParent"), r.get("IsInvitee"))
        for r in relations
    }
    assert roles[contact.email.lower()] == (True, False)
    assert roles[other.email.lower()] == (True, False)
    assert roles[colleague.email.lower()] == (False, True)

    fewer = {**fields, "attendees": normalize("event", {"attendees": [other.email]})["attendees"]}
    updated = repo.update(
        [ItemUpdate(created.id or "", item.version, fewer, frozenset({"attendees"}))]
    )[0]
    assert updated.ok, updated
    after = repo.get([created.id or ""])[0]
    assert after.fields["attendees"] == (other.email.lower(),)
    assert after.version == updated.version


def test_find_candidates_for_first_run_matching(sf_side: SfSide) -> None:
    contacts = sf_side.repos["contact"]
    by_email = contacts.find_candidates([{"email": cast.CONTACTS[1].email.lower()}])
    assert [i.fields["email"] for i in by_email] == [cast.CONTACTS[1].email.lower()]
    person = cast.CONTACTS[2]
    by_name = contacts.find_candidates(
        [
            {"first_name": person.first, "last_name": person.last, "company": person.company},
            {"email": "tom.o'neil@globex.example"},
        ]
    )
    assert {i.fields["last_name"] for i in by_name} >= {person.last}
    assert contacts.find_candidates([{"email": cast.CONTACTS[-1].email}]) == []  # Sam's

    tasks = sf_side.repos["task"]
    due = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    found = tasks.find_candidates([{"subject": "Send proposal to Acme", "due_date": due}])
    assert [i.fields["subject"] for i in found] == ["Send proposal to Acme"]

    events = sf_side.repos["event"]
    listing, _ = _read_all(events)
    seeded = next(
        i for p in listing for i in p.upserted if i.fields["subject"] == "Pipeline review"
    )
    summit = next(
        i for p in listing for i in p.upserted if i.fields["subject"] == "Northwind Summit"
    )
    matched = events.find_candidates(
        [
            {"subject": "Pipeline review", "start": seeded.fields["start"]},
            {"subject": "Northwind Summit", "start": summit.fields["start"]},
            {"subject": None, "start": seeded.fields["start"]},
        ]
    )
    assert {i.id for i in matched} == {seeded.id, summit.id}


def test_quiet_incremental_read_costs_one_query(sf_side: SfSide) -> None:
    for kind in ("contact", "event", "task"):
        repo = sf_side.repos[kind]
        _, cursor = _read_all(repo)
        before = sf_side.counters()
        calls_before = repo.api_calls()["salesforce"]  # type: ignore[attr-defined]
        pages, again = _read_all(repo, cursor)
        after = sf_side.counters()
        assert [list(p.upserted) for p in pages] == [[]]
        assert not any(p.full for p in pages)
        spent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        # one queryAll brings changes and deletions alike (the emulator counts it as "query")
        assert spent.get("query", 0) == 1, (kind, spent)
        assert spent["total"] == 1, (kind, spent)
        own = repo.api_calls()["salesforce"] - calls_before  # type: ignore[attr-defined]
        assert own == spent["total"]
        assert again


def test_own_write_comes_back_as_what_the_write_returned(sf_side: SfSide) -> None:
    """Writes return what Salesforce keeps without reading it back: the echo in the next
    feed read hashes the same (and brings the version), for every lossy value."""
    due = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    acme = cast.CONTACTS[0].company
    cases: dict[Kind, list[dict[str, FieldValue]]] = {
        "task": [
            {"subject": "Echo", "due_date": due},  # no priority/status: Normal, Not Started
            {"subject": "Echo 2", "status": "waitingonothers", "priority": "high"},
        ],
        "contact": [
            {"last_name": "Echo", "company": acme.upper()},  # the Account's own spelling
            {"last_name": "Echo", "company": "No Such Company " + _key()[:6]},  # none
            {"first_name": "Only", "email": "only.first@example.org"},  # LastName = email
            {"first_name": "Nobody"},  # LastName = "(no last name)"
        ],
    }
    for kind, rows in cases.items():
        repo = sf_side.repos[kind]
        _, cursor = _read_all(repo)
        calls = sf_side.gateway.stats.total
        created = repo.create([NewItem(_key(), normalize(kind, f)) for f in rows])
        assert sf_side.gateway.stats.total - calls <= 2, kind  # lookup + Collections only
        assert all(c.ok and c.fields is not None for c in created), created
        pages, _ = _read_all(repo, cursor)
        echoed = {i.id: i for p in pages for i in p.upserted}
        for result in created:
            item = echoed[result.id or ""]
            assert item.version
            assert result.fields is not None
            assert fields_hash(project(kind, result.fields, repo.fields), repo.fields) == (
                fields_hash(project(kind, item.fields, repo.fields), repo.fields)
            ), (kind, result.fields, item.fields)


def test_scope_change_forces_a_full_read(sf_side: SfSide) -> None:
    _, cursor = _read_all(sf_side.repos["contact"])
    everyone = salesforce_repositories(
        sf_side.gateway,
        settings_snapshot(contacts_scope="all"),
        user_id=sf_side.user_id,
        now=datetime.now(UTC),
    )["contact"]
    pages, _ = _read_all(everyone, cursor)
    assert all(p.full for p in pages)
    emails = {i.fields["email"] for p in pages for i in p.upserted}
    assert emails >= MY_CONTACTS | SAMS_CONTACTS
    filtered = salesforce_repositories(
        sf_side.gateway,
        settings_snapshot(contacts_scope="filter", contacts_filter="Title = 'CTO'"),
        user_id=sf_side.user_id,
        now=datetime.now(UTC),
    )["contact"]
    pages, _ = _read_all(filtered)
    assert {i.fields["title"] for p in pages for i in p.upserted} == {"CTO"}


def test_the_engine_links_everything_and_a_second_session_is_quiet(
    sf_side: SfSide, tmp_path: Path
) -> None:
    db = open_database(tmp_path / "engine.sqlite3")
    try:
        state = SyncState(db)
        mailbox: dict[Kind, MemoryRepository] = {
            kind: MemoryRepository("mailbox", kind, service="memory") for kind in FIELDS
        }
        # one mailbox contact that matches a Salesforce one by email, one that is new
        known = cast.CONTACTS[3]
        mailbox["contact"].add(
            {"first_name": known.first, "last_name": known.last, "email": known.email}
        )
        mailbox["contact"].add({"first_name": "New", "last_name": "Person-" + _key()[:6]})
        due = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
        # (with a priority, as a To Do task always has: Salesforce would store 'Normal' for none)
        mailbox["task"].add(
            {
                "subject": "From the mailbox",
                "due_date": due,
                "status": "deferred",
                "priority": "low",
            }
        )
        jobs = [
            KindJob(kind, mailbox[kind], sf_side.repos[kind], KindOptions())
            for kind in ("contact", "event", "task")
        ]
        first = run_session(jobs, state)
        assert first["status"] == "ok", first
        counts = first["counts"]
        assert isinstance(counts, dict)
        assert counts["contact"]["salesforce"]["created"] == 1
        assert counts["task"]["salesforce"]["created"] == 1
        for kind in ("contact", "event", "task"):
            sf_items = {i.id for p in sf_side.repos[kind].read_changes(None) for i in p.upserted}
            links = state.links(kind)
            assert {link.salesforce_id for link in links} == sf_items, kind
            assert {link.mailbox_id for link in links} == set(mailbox[kind].items), kind
        assert len(mailbox["contact"].items) == len(state.links("contact"))

        second = run_session(jobs, state)
        assert second["status"] == "ok", second
        assert second["changes"] == 0, second
        quiet = second["counts"]
        assert isinstance(quiet, dict)
        for kind_counts in quiet.values():
            for side_counts in kind_counts.values():
                assert side_counts == {"created": 0, "updated": 0, "deleted": 0}
        calls = second["api_calls"]
        assert isinstance(calls, dict)
        assert calls["salesforce"] == 3, calls  # one feed queryAll per kind
    finally:
        db.close()


def test_writes_without_read_back_neither_bounce_nor_hide_an_edit(
    sf_side: SfSide, tmp_path: Path
) -> None:
    """Contacts and tasks written to Salesforce return what it keeps without a read-back
    query and without a version: the next session takes their echo as our own (no write
    either way, the version stored) and an edit made in Salesforce in between still syncs."""
    db = open_database(tmp_path / "engine.sqlite3")
    try:
        state = SyncState(db)
        mailbox: dict[Kind, MemoryRepository] = {
            kind: MemoryRepository("mailbox", kind, service="memory") for kind in FIELDS
        }
        acme = cast.CONTACTS[0].company
        tag = _key()[:6]
        people = [
            {"first_name": "Ann", "last_name": f"Echo-{tag}", "company": acme.lower()},
            {"first_name": "Bo", "last_name": f"Echo-{tag}", "company": f"Nowhere {tag}"},
            {"first_name": "Cy", "email": f"cy.{tag}@example.org"},
        ]
        ids = [mailbox["contact"].add(p) for p in people]
        task = mailbox["task"].add({"subject": f"Echo task {tag}"})  # Salesforce: Normal
        jobs = [
            KindJob(kind, mailbox[kind], sf_side.repos[kind], KindOptions())
            for kind in ("contact", "task")
        ]
        first = run_session(jobs, state)
        assert first["status"] == "ok", first
        counts = first["counts"]
        assert isinstance(counts, dict)
        assert counts["contact"]["salesforce"]["created"] == 3
        # each side keeps its own spelling; the link remembers Salesforce's
        assert mailbox["contact"].values(ids[0])["company"] == acme.lower()
        link = next(lk for lk in state.links("contact") if lk.mailbox_id == ids[0])
        assert link.stored.get("salesforce", {}).get("company") == acme
        by_mailbox = {lk.mailbox_id: lk for lk in state.links("contact")}
        assert all(by_mailbox[i].salesforce_version == "" for i in ids)  # no read-back

        # Bo's phone is edited in Salesforce before the echo is read
        bo = by_mailbox[ids[1]].salesforce_id
        assert bo
        assert sf_side.gateway.writer.update("Contact", [{"Id": bo, "Phone": "+1 555 0100"}])[
            0
        ].success
        second = run_session(jobs, state)
        assert second["status"] == "ok", second
        counts = second["counts"]
        assert isinstance(counts, dict)
        assert counts["contact"]["mailbox"] == {"created": 0, "updated": 1, "deleted": 0}
        assert counts["contact"]["salesforce"] == {"created": 0, "updated": 0, "deleted": 0}
        assert counts["task"]["mailbox"] == {"created": 0, "updated": 0, "deleted": 0}
        assert counts["task"]["salesforce"] == {"created": 0, "updated": 0, "deleted": 0}
        assert mailbox["contact"].values(ids[1])["phone"] == "+1 555 0100"
        assert mailbox["contact"].values(ids[1])["company"] == f"Nowhere {tag}"  # not erased
        assert mailbox["task"].values(task)["subject"] == f"Echo task {tag}"
        links = state.links("contact") + state.links("task")
        assert all(lk.salesforce_version for lk in links)  # the echo brought the versions

        third = run_session(jobs, state)
        assert third["changes"] == 0, third
    finally:
        db.close()


def test_the_engine_carries_edits_both_ways_and_salesforce_deletions(
    sf_side: SfSide, tmp_path: Path
) -> None:
    db = open_database(tmp_path / "engine.sqlite3")
    try:
        state = SyncState(db)
        mailbox: dict[Kind, MemoryRepository] = {
            kind: MemoryRepository("mailbox", kind, service="memory") for kind in FIELDS
        }
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        day = (datetime.now(UTC).date() + timedelta(days=7)).isoformat()
        next_day = (datetime.now(UTC).date() + timedelta(days=8)).isoformat()
        meeting = mailbox["event"].add(
            {
                "subject": "Mailbox meeting " + _key()[:6],
                "start": start,
                "end": start + timedelta(minutes=45),
                "show_as": "busy",
                "ical_uid": "uid-1",
            }
        )
        mailbox["event"].add(
            {
                "subject": "Mailbox holiday",
                "start": day,
                "end": next_day,
                "is_all_day": True,
                "show_as": "oof",
            }
        )
        jobs = [
            KindJob(kind, mailbox[kind], sf_side.repos[kind], KindOptions())
            for kind in ("contact", "event", "task")
        ]
        first = run_session(jobs, state)
        assert first["status"] == "ok", first
        counts = first["counts"]
        assert isinstance(counts, dict)
        assert counts["event"]["salesforce"]["created"] == 2
        holiday = next(
            i
            for p in sf_side.repos["event"].read_changes(None)
            for i in p.upserted
            if i.fields["subject"] == "Mailbox holiday"
        )
        assert (holiday.fields["start"], holiday.fields["end"]) == (day, next_day)
        assert holiday.fields["show_as"] == "oof"

        # a contact's phone edited in Salesforce, its title in the mailbox
        person = cast.CONTACTS[0]
        link = next(
            lk for lk in state.links("contact") if lk.base.get("email") == person.email.lower()
        )
        assert link.salesforce_id and link.mailbox_id
        assert sf_side.gateway.writer.update(
            "Contact", [{"Id": link.salesforce_id, "Phone": "+1 555 9999"}]
        )[0].success
        mailbox["contact"].edit(link.mailbox_id, {"title": "Chief Buyer"})
        # a task deleted in Salesforce; the meeting moved in the mailbox
        task_link = next(
            lk for lk in state.links("task") if lk.base.get("subject") == "Send proposal to Acme"
        )
        assert task_link.salesforce_id and task_link.mailbox_id
        assert sf_side.gateway.writer.delete([task_link.salesforce_id])[0].success
        later = start + timedelta(hours=2)
        mailbox["event"].edit(meeting, {"start": later, "end": later + timedelta(minutes=45)})

        second = run_session(jobs, state)
        assert second["status"] == "ok", second
        assert mailbox["contact"].values(link.mailbox_id)["phone"] == "+1 555 9999"
        moved = sf_side.repos["contact"].get([link.salesforce_id])[0]
        assert moved.fields["title"] == "Chief Buyer"
        assert moved.fields["phone"] == "+1 555 9999"
        assert task_link.mailbox_id not in mailbox["task"].items
        event_link = next(lk for lk in state.links("event") if lk.mailbox_id == meeting)
        assert event_link.salesforce_id
        sf_meeting = sf_side.repos["event"].get([event_link.salesforce_id])[0]
        assert sf_meeting.fields["start"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")

        third = run_session(jobs, state)
        assert third["changes"] == 0, third
    finally:
        db.close()


def test_events_bring_their_attendees_in_the_feed_query(sf_side: SfSide, tmp_path: Path) -> None:
    """Attendees ride in the events' own query (an EventRelations subquery): the session right
    after a first sync that wrote events with attendees costs one Salesforce call per kind."""
    repos = salesforce_repositories(
        sf_side.gateway,
        settings_snapshot(),
        user_id=sf_side.user_id,
        now=datetime.now(UTC),
        attendees=True,
    )
    assert "attendees" in repos["event"].fields
    db = open_database(tmp_path / "attendees.sqlite3")
    try:
        state = SyncState(db)
        mailbox: dict[Kind, MemoryRepository] = {
            kind: MemoryRepository("mailbox", kind, service="memory") for kind in FIELDS
        }
        mailbox["event"].read_only = frozenset({"attendees"})
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        people = [cast.CONTACTS[0].email, cast.COLLEAGUES[0].email, "nobody@nowhere.example"]
        meeting = mailbox["event"].add(
            {
                "subject": "Subquery attendees " + _key()[:6],
                "start": start,
                "end": start + timedelta(hours=1),
                "attendees": people,
            }
        )
        mailbox["contact"].add({"first_name": "Sub", "last_name": "Query-" + _key()[:6]})
        jobs = [
            KindJob(kind, mailbox[kind], repos[kind], KindOptions())
            for kind in ("contact", "event", "task")
        ]
        first = run_session(jobs, state)
        assert first["status"] == "ok", first
        counts = first["counts"]
        assert isinstance(counts, dict)
        assert counts["event"]["salesforce"]["created"] == 1
        assert counts["contact"]["salesforce"]["created"] == 1

        before = sf_side.counters()
        second = run_session(jobs, state)
        after = sf_side.counters()
        assert second["status"] == "ok", second
        assert second["changes"] == 0, second
        calls = second["api_calls"]
        assert isinstance(calls, dict)
        assert calls["salesforce"] == 3, calls  # one feed queryAll per kind, attendees included
        spent = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        assert spent["total"] == 3 and spent.get("query", 0) == 3, spent

        (link,) = [lk for lk in state.links("event") if lk.mailbox_id == meeting]
        held = repos["event"].get([link.salesforce_id or ""])[0].fields
        known = {cast.CONTACTS[0].email.lower(), cast.COLLEAGUES[0].email.lower()}
        assert held["attendees"] == tuple(sorted(known))
    finally:
        db.close()
