"""Mailbox items <-> neutral fields: times across DST, all-day dates, scope rules, round trips."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from scc_desktop.mailbox.graph import mapping as graph
from scc_desktop.mailbox.types import (
    Address,
    Attendee,
    CalendarEvent,
    Contact,
    Importance,
    OccurrenceType,
    PostalAddress,
    ShowAs,
    TaskStatus,
    TodoTask,
)
from scc_desktop.sync.fields import FIELDS, fields_hash, normalize, project
from scc_desktop.sync.mailbox_mapping import (
    CONTACT_FIELDS,
    EVENT_FIELDS,
    TASK_FIELDS,
    EventScope,
    contact_fields,
    contact_from_fields,
    event_fields,
    event_from_fields,
    event_in_scope,
    task_fields,
    task_from_fields,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _event(**kw: object) -> CalendarEvent:
    base: dict[str, object] = {
        "id": "e1",
        "subject": "Review",
        "start": datetime(2026, 5, 4, 9, tzinfo=UTC),
        "end": datetime(2026, 5, 4, 10, tzinfo=UTC),
    }
    base.update(kw)
    return CalendarEvent(**base)  # type: ignore[arg-type]


def test_declared_fields_are_known_names() -> None:
    assert set(FIELDS["contact"]) >= CONTACT_FIELDS
    assert set(FIELDS["event"]) >= EVENT_FIELDS
    assert "ical_uid" not in EVENT_FIELDS  # assigned by the server: matching only
    assert set(FIELDS["task"]) == TASK_FIELDS


# --- time zones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "start", "end", "utc_start", "utc_end"),
    [
        # Berlin springs forward at 02:00 on 2026-03-29: 01:30 CET .. 03:30 CEST is one hour
        (BERLIN, (2026, 3, 29, 1, 30), (2026, 3, 29, 3, 30), "00:30:00Z", "01:30:00Z"),
        # New York springs forward at 02:00 on 2026-03-08: 01:00 EST .. 04:00 EDT is two hours
        (NEW_YORK, (2026, 3, 8, 1, 0), (2026, 3, 8, 4, 0), "06:00:00Z", "08:00:00Z"),
    ],
)
def test_meeting_across_dst_switch_is_exact_utc(
    zone: ZoneInfo,
    start: tuple[int, int, int, int, int],
    end: tuple[int, int, int, int, int],
    utc_start: str,
    utc_end: str,
) -> None:
    local_start = datetime(*start, tzinfo=zone)
    local_end = datetime(*end, tzinfo=zone)
    event = _event(
        start=local_start,
        end=local_end,
        attendees=(Attendee(Address("a@x.example")),),
    )
    fields = event_fields(event)
    day = local_start.date().isoformat()
    assert fields["start"] == f"{day}T{utc_start}"
    assert fields["end"] == f"{day}T{utc_end}"
    back = event_from_fields(fields, event)
    assert back.start == local_start and back.end == local_end
    assert back.start.tzinfo is UTC
    # (subtracting two datetimes of one zone gives wall-clock time; the real length is in UTC)
    assert back.end - back.start == local_end.astimezone(UTC) - local_start.astimezone(UTC)
    assert back.end - back.start != local_end - local_start  # the hour the switch removes


def test_graph_wall_times_in_named_zones_across_dst() -> None:
    """The same instants read from Graph JSON in IANA and Windows zone names."""
    raw = {
        "id": "e2",
        "subject": "Across the switch",
        "start": {"dateTime": "2026-10-25T01:30:00.0000000", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-10-25T03:30:00.0000000", "timeZone": "W. Europe Standard Time"},
        "attendees": [{"emailAddress": {"address": "B@X.example", "name": "B"}}],
    }
    fields = event_fields(graph.event_from_graph(raw))
    # 01:30 CEST (+2) = 23:30Z; 03:30 CET (+1) = 02:30Z: three hours across the fall back
    assert fields["start"] == "2026-10-24T23:30:00Z"
    assert fields["end"] == "2026-10-25T02:30:00Z"
    assert fields["attendees"] == ("b@x.example",)
    ny = {
        "id": "e3",
        "subject": "NY",
        "start": {"dateTime": "2026-11-01T00:30:00", "timeZone": "Eastern Standard Time"},
        "end": {"dateTime": "2026-11-01T02:30:00", "timeZone": "America/New_York"},
    }
    ny_fields = event_fields(graph.event_from_graph(ny))
    assert ny_fields["start"] == "2026-11-01T04:30:00Z"  # EDT
    assert ny_fields["end"] == "2026-11-01T07:30:00Z"  # EST


# --- all-day ------------------------------------------------------------------------------


def test_all_day_carries_dates_end_exclusive() -> None:
    event = _event(
        is_all_day=True,
        start_date=date(2026, 3, 29),
        end_date=date(2026, 3, 31),
        start=datetime(2026, 3, 29, tzinfo=UTC),
        end=datetime(2026, 3, 31, tzinfo=UTC),
    )
    fields = event_fields(event)
    assert fields["start"] == "2026-03-29"
    assert fields["end"] == "2026-03-31"
    assert fields["is_all_day"] is True
    back = event_from_fields(fields)
    assert back.is_all_day
    assert (back.start_date, back.end_date) == (date(2026, 3, 29), date(2026, 3, 31))
    body = graph.event_to_graph(back)
    assert body["isAllDay"] is True
    assert body["start"]["dateTime"].startswith("2026-03-29T00:00:00")
    assert body["end"]["dateTime"].startswith("2026-03-31T00:00:00")


def test_all_day_without_end_lasts_one_day() -> None:
    back = event_from_fields({"subject": "Off", "start": "2026-07-01", "is_all_day": True})
    assert (back.start_date, back.end_date) == (date(2026, 7, 1), date(2026, 7, 2))


# --- scope --------------------------------------------------------------------------------

MEETING = _event(attendees=(Attendee(Address("a@x.example")),))
APPOINTMENT = _event()


@pytest.mark.parametrize(
    ("event", "scope", "expected"),
    [
        (MEETING, EventScope(), False),
        (MEETING, EventScope(meetings=True), True),
        (MEETING, EventScope(appointments=True), False),
        (APPOINTMENT, EventScope(meetings=True), False),
        (APPOINTMENT, EventScope(appointments=True), True),
        (_event(categories=("Salesforce",)), EventScope(), True),
        (_event(categories=("salesforce ",)), EventScope(), True),
        (_event(categories=("Red",)), EventScope(), False),
        (_event(is_private=True, categories=("Salesforce",)), EventScope(), False),
        (_event(is_private=True), EventScope(appointments=True), False),
        (_event(is_private=True), EventScope(appointments=True, private=True), True),
        (_event(is_cancelled=True, categories=("Salesforce",)), EventScope(), False),
        (
            _event(occurrence_type=OccurrenceType.SERIES_MASTER),
            EventScope(appointments=True),
            False,
        ),
        (_event(occurrence_type=OccurrenceType.OCCURRENCE), EventScope(appointments=True), True),
    ],
)
def test_event_scope(event: CalendarEvent, scope: EventScope, expected: bool) -> None:
    assert event_in_scope(event, scope) is expected


def test_private_flag_maps_both_ways() -> None:
    private = _event(is_private=True, sensitivity="confidential")
    assert event_fields(private)["is_private"] is True
    back = event_from_fields({**event_fields(private), "is_private": False}, private)
    assert graph.event_to_graph(back)["sensitivity"] == "normal"
    new = event_from_fields({"subject": "x", "start": "2026-01-01T10:00:00Z", "is_private": True})
    assert graph.event_to_graph(new)["sensitivity"] == "private"


def test_new_event_is_categorized_without_attendees() -> None:
    new = event_from_fields(
        {
            "subject": "From Salesforce",
            "start": "2026-05-04T09:00:00Z",
            "end": "2026-05-04T10:00:00Z",
            "attendees": ("x@y.example",),
            "show_as": "out_of_office",  # the long spelling is understood too
        },
        sync_key="k1",
    )
    assert new.categories == ("Salesforce",)
    assert new.attendees == ()  # never written: would send invitations
    assert new.show_as is ShowAs.OOF and new.sync_key == "k1"


def test_update_keeps_attendees_categories_and_zone() -> None:
    base = _event(
        attendees=(Attendee(Address("a@x.example")),),
        categories=("Salesforce", "Red"),
        time_zone="Europe/Berlin",
        sync_key="k",
        version="v1",
    )
    fields = {**event_fields(base), "subject": "Renamed", "attendees": ()}
    out = event_from_fields(fields, base)
    assert out.subject == "Renamed"
    assert out.attendees == base.attendees
    assert out.categories == ("Salesforce", "Red")
    assert out.time_zone == "Europe/Berlin" and out.sync_key == "k"


def test_event_round_trip_hash_is_stable() -> None:
    event = _event(
        location="  Room  1 ",
        body_text="line 1\r\nline 2  \n",
        show_as=ShowAs.WORKING_ELSEWHERE,
        attendees=(Attendee(Address("b@x.example")), Attendee(Address("a@x.example"))),
    )
    fields = event_fields(event)
    assert fields["attendees"] == ("a@x.example", "b@x.example")
    assert fields["show_as"] == "workingelsewhere"  # the words salesforce_mapping uses
    again = event_fields(event_from_fields(fields, event))
    names = sorted(EVENT_FIELDS)
    assert fields_hash(project("event", again, names), names) == fields_hash(
        project("event", fields, names), names
    )


# --- contacts -----------------------------------------------------------------------------


def test_contact_round_trip_keeps_extra_emails_and_categories() -> None:
    contact = Contact(
        id="c1",
        given_name="Jane",
        surname="Cooper",
        emails=(Address("Jane@Acme.example", "Jane"), Address("j2@acme.example"), Address("j3@x")),
        business_phone="+1 212",
        mobile_phone="+1 917",
        job_title="VP",
        company="Acme",
        mailing_address=PostalAddress("1 Main St\nSuite 2", "NYC", "NY", "10001", "US"),
        notes="met at expo",
        categories=("Salesforce",),
        version="v1",
    )
    fields = contact_fields(contact)
    assert fields["email"] == "jane@acme.example" and fields["email2"] == "j2@acme.example"
    assert fields["street"] == "1 Main St\nSuite 2"
    changed = contact_from_fields({**fields, "email2": None, "title": "CEO"}, contact)
    assert [a.email for a in changed.emails] == ["jane@acme.example", "j3@x"]
    assert changed.categories == ("Salesforce",) and changed.job_title == "CEO"
    assert contact_fields(contact_from_fields(fields, contact)) == fields


def test_new_contact_is_stamped() -> None:
    new = contact_from_fields(normalize("contact", {"last_name": "Lee"}), sync_key="key-1")
    assert new.sync_key == "key-1" and new.id == "" and new.surname == "Lee"


# --- tasks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "neutral", "salesforce_word"),
    [
        (TaskStatus.NOT_STARTED, "not_started", "Not Started"),
        (TaskStatus.IN_PROGRESS, "in_progress", "In Progress"),
        (TaskStatus.COMPLETED, "completed", "Completed"),
        (TaskStatus.WAITING, "waiting_on_someone_else", "Waiting on someone else"),
        (TaskStatus.DEFERRED, "deferred", "Deferred"),
    ],
)
def test_task_status_agrees_with_salesforce_words(
    status: TaskStatus, neutral: str, salesforce_word: str
) -> None:
    task = TodoTask(id="t", title="Call", status=status)
    assert task_fields(task)["status"] == neutral
    assert normalize("task", {"status": salesforce_word})["status"] == neutral
    assert task_from_fields(normalize("task", {"status": salesforce_word})).status is status


def test_task_fields_round_trip() -> None:
    task = TodoTask(
        id="t1",
        title="Send quote",
        body="details",
        due=date(2026, 3, 29),
        status=TaskStatus.IN_PROGRESS,
        importance=Importance.HIGH,
        sync_key="k",
    )
    fields = task_fields(task)
    assert fields == {
        "subject": "Send quote",
        "due_date": "2026-03-29",
        "status": "in_progress",
        "priority": "high",
        "description": "details",
    }
    back = task_from_fields(fields, task)
    assert back == task
    assert task_from_fields({"subject": "x", "priority": "High"}).importance is Importance.HIGH
    assert task_from_fields({"subject": "x", "due_date": None}).due is None


# --- agreement with the Salesforce mapper (a disagreement would ping-pong forever) ------------


@pytest.mark.parametrize(
    "show_as", [s for s in ShowAs if s not in (ShowAs.TENTATIVE, ShowAs.UNKNOWN)]
)
def test_show_as_words_survive_a_salesforce_round_trip(show_as: ShowAs) -> None:
    from scc_desktop.sync import salesforce_mapping as sf

    word = event_fields(_event(show_as=show_as))["show_as"]
    assert sf.SHOW_AS_FROM_SF[sf.show_as_to_sf(word)] == word
    assert event_from_fields({"start": "2026-01-01T10:00:00Z", "show_as": word}).show_as is show_as


@pytest.mark.parametrize("status", list(TaskStatus))
def test_task_words_survive_a_salesforce_round_trip(status: TaskStatus) -> None:
    from scc_desktop.sync import salesforce_mapping as sf

    fields = task_fields(TodoTask(id="t", title="x", status=status, importance=Importance.LOW))
    assert normalize("task", {"status": sf.task_status_to_sf(fields["status"])}) == {
        "status": fields["status"]
    }
    assert sf.priority_to_sf(fields["priority"]) == "Low"
