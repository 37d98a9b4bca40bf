"""Fetch by id through $batch (contacts, events, To Do tasks), lastModifiedDateTime, and the
emulator reporting an event moved beyond the calendarView window as @removed, as Graph does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.mailbox.types import (
    Address,
    CalendarEvent,
    Contact,
    DeltaPage,
    OccurrenceType,
    TodoTask,
)


def _contact(i: int) -> Contact:
    return Contact(
        id="",
        given_name=f"Given{i}",
        surname=f"Family{i}",
        emails=(Address(f"given{i}@acme.example"),),
        sf_id=f"003{i:012d}",
        sync_key=f"key-{i}",
    )


def _fresh_counts(mailbox: GraphMailbox, admin: Any) -> None:
    admin.reset_counters()
    mailbox.http.reset_counts()


def _batch_calls(mailbox: GraphMailbox, admin: Any) -> int:
    counters = admin.counters()
    assert counters.get("total") == counters.get("batch")  # nothing but $batch calls
    assert mailbox.call_counts().get("batch", 0) == counters.get("batch", 0)
    return int(counters.get("batch", 0))


def _aware_recent(value: datetime | None, since: datetime) -> bool:
    return value is not None and value.tzinfo is not None and value >= since - timedelta(seconds=1)


def test_get_contacts_by_ids_one_batch_per_20(mailbox: GraphMailbox, admin: Any) -> None:
    started = datetime.now(UTC)
    setup = mailbox.ensure_setup()
    created = mailbox.create_contacts([_contact(i) for i in range(25)])
    assert all(r.ok for r in created)
    ids = [r.id for r in created]
    other = mailbox.http.send_json("POST", "/me/contacts", {"givenName": "Elsewhere"})
    wanted = [*ids, "AAMkAGD-no-such-contact", str(other["id"])]  # 27 ids

    _fresh_counts(mailbox, admin)
    found = mailbox.get_contacts(wanted)
    assert _batch_calls(mailbox, admin) == 2  # 20 + 7
    assert set(found) == {*ids, str(other["id"])}  # the missing id is simply absent
    c3 = found[ids[3]]
    assert (c3.given_name, c3.sf_id, c3.sync_key) == ("Given3", "003000000000003", "key-3")
    assert c3.folder == setup.contacts_folder_id and c3.version
    assert found[str(other["id"])].folder != setup.contacts_folder_id  # any folder
    assert all(_aware_recent(c.modified_at, started) for c in found.values())

    # every change bumps lastModifiedDateTime
    before = c3.modified_at
    assert before is not None
    mailbox.http.send_json("PATCH", f"/me/contacts/{ids[3]}", {"jobTitle": "CFO"})
    after = mailbox.get_contacts([ids[3]])[ids[3]].modified_at
    assert after is not None and after > before

    _fresh_counts(mailbox, admin)
    assert mailbox.get_contacts([]) == {}
    assert admin.counters().get("total", 0) == 0


def test_get_events_by_ids_wherever_they_are_in_time(mailbox: GraphMailbox, admin: Any) -> None:
    started = datetime.now(UTC)
    now = started.replace(microsecond=0, second=0, minute=0)
    near = CalendarEvent(
        id="", subject="Near", start=now + timedelta(days=1), end=now + timedelta(days=1, hours=1)
    )
    far = CalendarEvent(
        id="",
        subject="Far",
        start=now + timedelta(days=400),
        end=now + timedelta(days=400, minutes=30),
    )
    results = mailbox.create_events(
        [
            CalendarEvent(**{**near.__dict__, "sync_key": "ev-near"}),
            CalendarEvent(**{**far.__dict__, "sync_key": "ev-far", "sf_id": "00U000000000009"}),
        ]
    )
    assert all(r.ok for r in results), results
    near_id, far_id = results[0].id, results[1].id
    # a user event in another zone still comes back in UTC (Prefer per sub-request)
    berlin = mailbox.http.send_json(
        "POST",
        "/me/events",
        {
            "subject": "Berlin",
            "start": {"dateTime": "2026-07-01T10:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-07-01T11:00:00", "timeZone": "Europe/Berlin"},
        },
    )
    _fresh_counts(mailbox, admin)
    found = mailbox.get_events([near_id, far_id, "AAMkAGE-gone", str(berlin["id"])])
    assert _batch_calls(mailbox, admin) == 1
    assert set(found) == {near_id, far_id, str(berlin["id"])}
    assert found[far_id].start == far.start and found[far_id].sf_id == "00U000000000009"
    assert found[near_id].end == near.end and found[near_id].sync_key == "ev-near"
    assert found[str(berlin["id"])].start == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert all(_aware_recent(e.modified_at, started) for e in found.values())

    mailbox.delete_events([])  # no call
    mailbox.http.send_json("DELETE", f"/me/events/{near_id}", None)
    assert set(mailbox.get_events([near_id, far_id])) == {far_id}


def test_get_tasks_by_ids_in_the_salesforce_list(mailbox: GraphMailbox, admin: Any) -> None:
    started = datetime.now(UTC)
    created = mailbox.create_tasks(
        [TodoTask(id="", title=f"Task {i}", sync_key=f"t-{i}", sf_id=f"00T{i}") for i in range(3)]
    )
    assert all(r.ok for r in created)
    ids = [r.id for r in created]
    default = next(
        lst
        for lst in mailbox.http.get_json("/me/todo/lists")["value"]
        if lst.get("wellknownListName") == "defaultList"
    )
    elsewhere = mailbox.http.send_json(
        "POST", f"/me/todo/lists/{default['id']}/tasks", {"title": "Not ours"}
    )
    _fresh_counts(mailbox, admin)
    found = mailbox.get_tasks([*ids, "AAkAL-missing", str(elsewhere["id"])])
    assert _batch_calls(mailbox, admin) == 1
    assert set(found) == set(ids)  # another list's task is not in our list
    assert [(found[i].title, found[i].sync_key, found[i].sf_id) for i in ids] == [
        (f"Task {n}", f"t-{n}", f"00T{n}") for n in range(3)
    ]
    assert all(_aware_recent(t.modified_at, started) for t in found.values())
    before = found[ids[0]].modified_at
    assert before is not None
    mailbox.http.send_json(
        "PATCH",
        f"/me/todo/lists/{mailbox.ensure_setup().tasks_list_id}/tasks/{ids[0]}",
        {"status": "completed"},
    )
    after = mailbox.get_tasks([ids[0]])[ids[0]].modified_at
    assert after is not None and after > before


def _drain(pages: Any) -> tuple[dict[str, CalendarEvent], set[str], str]:
    items: dict[str, CalendarEvent] = {}
    removed: set[str] = set()
    cursor = ""
    page: DeltaPage[CalendarEvent]
    for page in pages:
        cursor = page.cursor
        for change in page.changes:
            if change.item is None:
                items.pop(change.id, None)
                removed.add(change.id)
            else:
                items[change.id] = change.item
                removed.discard(change.id)
    return items, removed, cursor


def test_events_moved_beyond_the_window_are_reported_removed(
    mailbox: GraphMailbox, admin: Any, auth: Any
) -> None:
    """As calendarView/delta does: a single event and one occurrence of a series rescheduled
    past the window come back as @removed; fetched by id, they still exist."""
    admin.reset("demo")
    auth.sign_in_device_flow(lambda code: admin.ms("approve_device", {"user_code": code.user_code}))
    now = datetime.now(UTC)
    window = (now - timedelta(days=14), now + timedelta(days=60))
    events, _, cursor = _drain(mailbox.read_events(None, *window))
    single = next(
        e
        for e in events.values()
        if e.occurrence_type is OccurrenceType.SINGLE and not e.is_all_day and e.start > now
    )
    occurrence = next(
        e
        for e in events.values()
        if e.occurrence_type is OccurrenceType.OCCURRENCE and e.start > now
    )
    later = (now + timedelta(days=200)).replace(microsecond=0, second=0, minute=0)
    for event in (single, occurrence):
        mailbox.http.send_json(
            "PATCH",
            f"/me/events/{event.id}",
            {
                "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
            },
        )
    changed, removed, _ = _drain(mailbox.read_events(cursor, *window))
    assert {single.id, occurrence.id} <= removed
    assert single.id not in changed and occurrence.id not in changed
    found = mailbox.get_events([single.id, occurrence.id])
    assert {e.start for e in found.values()} == {later}
    assert found[occurrence.id].occurrence_type is OccurrenceType.EXCEPTION
    assert found[occurrence.id].series_master_id == occurrence.series_master_id
