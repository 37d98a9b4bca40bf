"""$batch writes against the sandbox: contacts, events, To Do tasks; stamps; partial failures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from scc_desktop.mailbox.cursors import CursorStore, apply_pages
from scc_desktop.mailbox.graph import GraphMailbox
from scc_desktop.mailbox.types import (
    Address,
    Attendee,
    CalendarEvent,
    Contact,
    Delete,
    Importance,
    OccurrenceType,
    PostalAddress,
    ShowAs,
    TaskStatus,
    TodoTask,
    Update,
)
from scc_desktop.store.db import open_database


def contact(i: int) -> Contact:
    return Contact(
        id="",
        given_name=f"Given{i}",
        surname=f"Family{i}",
        emails=(Address(f"given{i}@acme.example", f"Given{i} Family{i}"),),
        business_phone=f"+1 555 01{i:02d}",
        company="Acme",
        job_title="Buyer",
        mailing_address=PostalAddress("1 Main St", "Springfield", "IL", "62701", "USA"),
        sf_id=f"003{i:012d}",
        sync_key=f"key-{i}",
    )


def drain(pages: Any) -> dict[str, Any]:
    items: dict[str, Any] = {}
    for page in pages:
        for change in page.changes:
            if change.item is None:
                items.pop(change.id, None)
            else:
                items[change.id] = change.item
    return items


def test_acceptance_100_contacts_cost_5_batch_calls(mailbox: GraphMailbox, admin: Any) -> None:
    setup = mailbox.ensure_setup()
    admin.reset_counters()
    mailbox.http.reset_counts()
    results = mailbox.create_contacts([contact(i) for i in range(100)])
    counters = admin.counters()
    assert counters["batch"] == 5 and counters["total"] == 5
    assert mailbox.call_counts()["batch"] == 5
    assert all(r.ok for r in results) and [r.index for r in results] == list(range(100))
    assert results[7].item is not None and results[7].item.given_name == "Given7"
    assert results[7].item.folder == setup.contacts_folder_id and results[7].item.version
    stored = [c for c in admin.dump("contacts") if c["parent"] == setup.contacts_folder_id]
    assert len(stored) == 100
    # the stamps are on the items: found again by correlation key after a "crash"
    found = mailbox.find_contacts_by_key(["key-3", "key-42", "key-missing"])
    assert set(found) == {"key-3", "key-42"}
    assert found["key-42"].id == results[42].id and found["key-42"].sf_id == "003000000000042"
    # and the delta stream of the folder sees them, stamps included, on every page
    mailbox.page_size = 30
    seen = drain(mailbox.read_contacts(None))
    assert len(seen) == 100 and all(c.sf_id and c.sync_key for c in seen.values())


def test_contacts_stream_survives_a_410_with_the_cursor_in_the_state_db(
    mailbox: GraphMailbox, admin: Any, tmp_path: Any
) -> None:
    store = CursorStore(open_database(tmp_path / "state.sqlite3"))
    view: dict[str, Contact] = {}

    def apply(page: Any, tx: Any) -> None:
        for change in page.changes:
            if change.item is None:
                view.pop(change.id, None)
            else:
                view[change.id] = change.item

    mailbox.page_size = 7
    mailbox.create_contacts([contact(i) for i in range(20)])
    apply_pages(store, mailbox.read_contacts(store.load("graph:contacts")), apply)
    assert len(view) == 20
    admin.ms("invalidate_delta_tokens")
    mailbox.create_contacts([contact(99)])
    pages = list(mailbox.read_contacts(store.load("graph:contacts")))
    assert pages[0].restarted and all(p.full_sync for p in pages)
    apply_pages(store, pages, apply)
    assert len(view) == 21
    assert len({c.sync_key for c in view.values()}) == 21  # no duplicate
    admin.reset_counters()
    assert len(list(mailbox.read_contacts(store.load("graph:contacts")))) == 1
    assert admin.counters()["contact_delta"] == 1


def test_contact_update_delete_and_partial_failures(mailbox: GraphMailbox) -> None:
    created = mailbox.create_contacts([contact(i) for i in range(3)])
    first, second, third = (r.item for r in created)
    assert first and second and third
    renamed = Contact(**{**first.__dict__, "job_title": "CFO"})
    results = mailbox.update_contacts(
        [
            Update(renamed, first.version),
            Update(Contact(**{**second.__dict__, "id": "AAMkAGDdoesnotexist"})),
        ]
    )
    assert results[0].ok and results[0].item is not None and results[0].item.job_title == "CFO"
    assert results[0].item.version != first.version
    assert not results[1].ok and results[1].not_found and not results[1].retryable
    deleted = mailbox.delete_contacts([Delete(second.id), Delete("AAMkAGDgoneAlready")])
    assert deleted[0].ok and deleted[1].ok  # deleting what is gone is done
    cursor = None
    items: dict[str, Contact] = {}
    for page in mailbox.read_contacts(cursor):
        for change in page.changes:
            if change.item is not None:
                items[change.id] = change.item
            else:
                items.pop(change.id, None)
    assert set(items) == {first.id, third.id}
    assert items[first.id].job_title == "CFO"


def test_batch_items_throttled_are_retried_after_retry_after(
    mailbox: GraphMailbox, admin: Any, sleeps: list[float]
) -> None:
    mailbox.ensure_setup()
    admin.faults(throttle_rate=0.3, retry_after_s=7, seed=11)
    results = mailbox.create_contacts([contact(i) for i in range(40)])
    admin.faults()
    assert all(r.ok for r in results), [r.error_code for r in results if not r.ok]
    assert sleeps and all(s == 7.0 for s in sleeps)
    stamped = [c for c in admin.dump("contacts") if c.get("_sv")]
    assert len(stamped) == 40  # each created once, no duplicate from a retry


def test_batch_partial_failure_reported_per_item(mailbox: GraphMailbox, admin: Any) -> None:
    mailbox.ensure_setup()
    admin.faults(partial_failure_rate=0.5, seed=3)
    results = mailbox.create_contacts([contact(i) for i in range(10)])
    admin.faults()
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    # 503s are retried; an item unlucky in every round is reported as retryable, never lost
    assert len(ok) + len(failed) == 10
    assert all(r.retryable for r in failed)
    assert len([c for c in admin.dump("contacts") if c.get("_sv")]) == len(ok)


def test_events_round_trip_in_utc_all_day_and_private(mailbox: GraphMailbox, admin: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0, second=0, minute=0)
    day = (now + timedelta(days=3)).date()
    timed = CalendarEvent(
        id="",
        subject="Pricing call",
        start=now + timedelta(days=1),
        end=now + timedelta(days=1, minutes=45),
        body_text="agenda",
        location="Teams",
        attendees=(Attendee(Address("ann@acme.example", "Ann")),),
        show_as=ShowAs.BUSY,
        categories=("Salesforce",),
        sf_id="00U000000000001",
        sync_key="ev-1",
    )
    all_day = CalendarEvent(
        id="",
        subject="Offsite",
        start=datetime.combine(day, datetime.min.time(), UTC),
        end=datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
        is_all_day=True,
        start_date=day,
        end_date=day + timedelta(days=1),
        is_private=True,
        sync_key="ev-2",
    )
    results = mailbox.create_events([timed, all_day])
    assert all(r.ok for r in results), results
    window = (now - timedelta(days=14), now + timedelta(days=60))
    cursor = None
    events: dict[str, CalendarEvent] = {}
    for page in mailbox.read_events(cursor, *window):
        cursor = page.cursor
        for change in page.changes:
            if change.item is not None:
                events[change.id] = change.item
    got = {e.subject: e for e in events.values()}
    assert got["Pricing call"].start == timed.start and got["Pricing call"].end == timed.end
    assert got["Pricing call"].attendees[0].address.email == "ann@acme.example"
    assert got["Pricing call"].location == "Teams" and got["Pricing call"].categories == (
        "Salesforce",
    )
    assert got["Offsite"].is_all_day and got["Offsite"].start_date == day
    assert got["Offsite"].end_date == day + timedelta(days=1) and got["Offsite"].is_private
    # update with the version read; a quiet stream afterwards costs one call
    ev = got["Pricing call"]
    upd = mailbox.update_events(
        [Update(CalendarEvent(**{**ev.__dict__, "subject": "Pricing call v2"}), ev.version)]
    )
    assert upd[0].ok and upd[0].item is not None and upd[0].item.subject == "Pricing call v2"
    changed = drain(mailbox.read_events(cursor, *window))
    assert [e.subject for e in changed.values()] == ["Pricing call v2"]
    found = mailbox.find_events_by_key(["ev-1", "ev-2"])
    assert found["ev-1"].id == ev.id and found["ev-1"].sf_id == "00U000000000001"
    assert mailbox.delete_events([Delete(ev.id)])[0].ok


def test_recurring_series_occurrences_in_the_window(
    mailbox: GraphMailbox, admin: Any, auth: Any
) -> None:
    admin.reset("demo")
    auth.sign_in_device_flow(lambda code: admin.ms("approve_device", {"user_code": code.user_code}))
    now = datetime.now(UTC)
    events = drain(mailbox.read_events(None, now - timedelta(days=14), now + timedelta(days=60)))
    occurrences = [e for e in events.values() if e.occurrence_type is OccurrenceType.OCCURRENCE]
    assert len(occurrences) >= 2
    assert all(o.series_master_id for o in occurrences)
    assert len({o.series_master_id for o in occurrences}) >= 1
    assert all(o.start.tzinfo is not None and o.end > o.start for o in events.values())
    assert any(e.is_private for e in events.values())
    assert any(e.attendees for e in events.values()) and any(
        not e.attendees for e in events.values()
    )


def test_tasks_with_open_extension(mailbox: GraphMailbox, admin: Any) -> None:
    tasks = [
        TodoTask(
            id="",
            title="Call Ann",
            body="pricing",
            due=date(2026, 12, 1),
            importance=Importance.HIGH,
            sf_id="00T000000000001",
            sync_key="t-1",
        ),
        TodoTask(id="", title="Send quote", sync_key="t-2"),
    ]
    results = mailbox.create_tasks(tasks)
    assert all(r.ok for r in results), results
    cursor = None
    seen: dict[str, TodoTask] = {}
    for page in mailbox.read_tasks(cursor):
        cursor = page.cursor
        for change in page.changes:
            if change.item is not None:
                seen[change.id] = change.item
    by_title = {t.title: t for t in seen.values()}
    assert by_title["Call Ann"].due == date(2026, 12, 1)
    assert by_title["Call Ann"].importance is Importance.HIGH
    found = mailbox.find_tasks_by_key(["t-1", "t-2"])
    assert found["t-1"].sf_id == "00T000000000001" and found["t-2"].id == results[1].id
    done = TodoTask(
        **{
            **by_title["Send quote"].__dict__,
            "status": TaskStatus.COMPLETED,
            "completed": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        }
    )
    upd = mailbox.update_tasks([Update(done, by_title["Send quote"].version)])
    assert upd[0].ok and upd[0].item is not None and upd[0].item.status is TaskStatus.COMPLETED
    deleted = mailbox.delete_tasks([Delete(by_title["Call Ann"].id)])
    assert deleted[0].ok
    changes = [c for p in mailbox.read_tasks(cursor) for c in p.changes]
    assert {(c.id, c.removed) for c in changes} == {
        (by_title["Call Ann"].id, True),
        (done.id, False),
    }


def test_contacts_categorized_elsewhere(mailbox: GraphMailbox) -> None:
    http = mailbox.http
    tagged = http.send_json(
        "POST",
        "/me/contacts",
        {
            "givenName": "Tia",
            "surname": "Tagged",
            "categories": ["Salesforce"],
            "emailAddresses": [{"address": "tia@acme.example", "name": "Tia"}],
        },
    )
    http.send_json("POST", "/me/contacts", {"givenName": "Ned", "surname": "Plain"})
    found = list(mailbox.list_categorized_contacts())
    assert [c.id for c in found] == [tagged["id"]]
    assert found[0].emails[0].email == "tia@acme.example" and found[0].categories == ("Salesforce",)
