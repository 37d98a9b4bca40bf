"""Graph JSON <-> neutral types: addresses, bodies, stamps, time zones, all-day dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scc_desktop.mailbox.graph import mapping
from scc_desktop.mailbox.types import (
    Address,
    Attendee,
    AttendeeType,
    CalendarEvent,
    Contact,
    Importance,
    OccurrenceType,
    PostalAddress,
    ResponseStatus,
    ShowAs,
    TaskStatus,
    TodoTask,
)


def test_message_fields_direction_and_stamp() -> None:
    raw = {
        "id": "AAMk1",
        "internetMessageId": "<abc@example.com>",
        "conversationId": "conv-1",
        "parentFolderId": "inbox-id",
        "from": {"emailAddress": {"name": "Ann Buyer", "address": "Ann@Acme.COM"}},
        "toRecipients": [{"emailAddress": {"name": "Me", "address": "me@contoso.com"}}],
        "ccRecipients": [{"emailAddress": {"address": "cc@acme.com"}}, {"emailAddress": {}}],
        "subject": "Quote",
        "body": {
            "contentType": "html",
            "content": "<html><body><p>Hello&nbsp;there</p><p>Bye</p></body></html>",
        },
        "receivedDateTime": "2026-03-29T00:30:00Z",
        "sentDateTime": "2026-03-29T00:29:59Z",
        "categories": ["Salesforce"],
        "hasAttachments": True,
        "changeKey": "CQAAAB",
        "singleValueExtendedProperties": [
            {
                "id": mapping.SF_ID_PROP.upper().replace("STRING", "String"),
                "value": "00T000000000001",
            }
        ],
    }
    msg = mapping.message_from_graph(raw, owner="me@contoso.com")
    assert msg.from_ == Address("ann@acme.com", "Ann Buyer")
    assert msg.to == (Address("me@contoso.com", "Me"),)
    assert msg.cc == (Address("cc@acme.com", ""),)
    assert msg.is_inbound is True
    assert msg.body_text == "Hello there\n\nBye"
    assert msg.body_html.startswith("<html>")
    assert msg.received == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert msg.categories == ("Salesforce",)
    assert msg.has_attachments and msg.version == "CQAAAB"
    assert msg.sf_key == "00T000000000001"
    assert msg.folder == "inbox-id"
    outbound = mapping.message_from_graph(
        {**raw, "from": {"emailAddress": {"address": "ME@contoso.com"}}}, owner="me@contoso.com"
    )
    assert outbound.is_inbound is False


def test_message_direction_without_owner_uses_folder() -> None:
    raw = {"id": "1", "from": {"emailAddress": {"address": "a@b.c"}}}
    assert mapping.message_from_graph(raw, folder="sentitems").is_inbound is False
    assert mapping.message_from_graph(raw, folder="inbox").is_inbound is True


def test_contact_round_trip_with_stamps() -> None:
    contact = Contact(
        id="",
        given_name="Ann",
        surname="Buyer",
        emails=(Address("ann@acme.com", "Ann Buyer"),),
        business_phone="+1 555 0100",
        mobile_phone="+1 555 0101",
        job_title="CFO",
        company="Acme",
        mailing_address=PostalAddress("1 Main St", "Springfield", "IL", "62701", "USA"),
        notes="met at expo",
        categories=("Salesforce",),
        sf_id="003000000000001",
        sync_key="k-1",
    )
    body = mapping.contact_to_graph(contact)
    assert body["displayName"] == "Ann Buyer"
    assert {"id": mapping.SYNC_KEY_PROP, "value": "k-1"} in body["singleValueExtendedProperties"]
    back = mapping.contact_from_graph(
        {**body, "id": "C1", "changeKey": "v1", "parentFolderId": "F"}
    )
    assert back == contact.__class__(
        **{**contact.__dict__, "id": "C1", "version": "v1", "folder": "F"}
    )


def test_utc_event_and_original_zone() -> None:
    raw = {
        "id": "E1",
        "subject": "Review",
        "start": {"dateTime": "2026-03-29T00:30:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-29T01:30:00.0000000", "timeZone": "UTC"},
        "originalStartTimeZone": "W. Europe Standard Time",
        "isAllDay": False,
        "sensitivity": "private",
        "showAs": "tentative",
        "type": "occurrence",
        "seriesMasterId": "M1",
        "originalStart": "2026-03-29T00:30:00Z",
        "attendees": [
            {
                "type": "optional",
                "status": {"response": "accepted", "time": "x"},
                "emailAddress": {"name": "Bob", "address": "BOB@acme.com"},
            },
        ],
        "organizer": {"emailAddress": {"name": "Me", "address": "me@contoso.com"}},
        "isOrganizer": True,
        "iCalUId": "uid-1",
        "changeKey": "ck",
        "body": {"contentType": "text", "content": "agenda"},
        "location": {"displayName": "Room 1"},
    }
    ev = mapping.event_from_graph(raw)
    assert ev.start == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert ev.end == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert ev.time_zone == "W. Europe Standard Time"
    assert ev.is_private and ev.sensitivity == "private"
    assert ev.show_as is ShowAs.TENTATIVE
    assert ev.occurrence_type is OccurrenceType.OCCURRENCE and ev.series_master_id == "M1"
    assert ev.original_start == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert ev.attendees == (
        Attendee(Address("bob@acme.com", "Bob"), AttendeeType.OPTIONAL, ResponseStatus.ACCEPTED),
    )
    assert ev.location == "Room 1" and ev.body_text == "agenda" and ev.ical_uid == "uid-1"


@pytest.mark.parametrize(
    ("local", "zone", "utc"),
    [
        # Berlin switches to summer time on 2026-03-29 at 02:00 local (01:00 UTC)
        (
            "2026-03-29T01:30:00.0000000",
            "W. Europe Standard Time",
            datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
        ),
        ("2026-03-29T03:30:00.0000000", "Europe/Berlin", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("2026-11-01T01:30:00", "Eastern Standard Time", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        (
            "2026-07-01T09:00:00.1234567",
            "Pacific Standard Time",
            datetime(2026, 7, 1, 16, 0, 0, 123456, tzinfo=UTC),
        ),
        ("2026-07-01T09:00:00", "tzone://Microsoft/Utc", datetime(2026, 7, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_date_time_zone_to_utc(local: str, zone: str, utc: datetime) -> None:
    assert mapping.parse_dtz({"dateTime": local, "timeZone": zone}) == utc


def test_all_day_event_keeps_its_dates() -> None:
    raw = {
        "id": "E2",
        "subject": "Offsite",
        "isAllDay": True,
        "start": {"dateTime": "2026-05-04T00:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-05-06T00:00:00.0000000", "timeZone": "UTC"},
    }
    ev = mapping.event_from_graph(raw)
    assert ev.is_all_day
    assert (ev.start_date, ev.end_date) == (date(2026, 5, 4), date(2026, 5, 6))
    body = mapping.event_to_graph(ev)
    assert body["isAllDay"] is True
    assert body["start"] == {"dateTime": "2026-05-04T00:00:00.0000000", "timeZone": "UTC"}
    assert body["end"] == {"dateTime": "2026-05-06T00:00:00.0000000", "timeZone": "UTC"}
    # an all-day item given in the organizer's zone keeps its calendar dates (no conversion)
    tokyo = mapping.event_from_graph(
        {**raw, "start": {"dateTime": "2026-05-04T00:00:00", "timeZone": "Tokyo Standard Time"}}
    )
    assert tokyo.start_date == date(2026, 5, 4)


def test_event_to_graph_timed_private_and_attendees() -> None:
    ev = CalendarEvent(
        id="",
        subject="Call",
        start=datetime(2026, 1, 2, 15, 0, tzinfo=UTC),
        end=datetime(2026, 1, 2, 15, 30, tzinfo=UTC),
        is_private=True,
        attendees=(Attendee(Address("a@b.c", "A")),),
        show_as=ShowAs.FREE,
        sync_key="ek",
    )
    body = mapping.event_to_graph(ev)
    assert body["start"] == {"dateTime": "2026-01-02T15:00:00.0000000", "timeZone": "UTC"}
    assert body["sensitivity"] == "private" and body["showAs"] == "free"
    assert body["attendees"] == [
        {"emailAddress": {"address": "a@b.c", "name": "A"}, "type": "required"}
    ]
    assert body["singleValueExtendedProperties"] == [{"id": mapping.SYNC_KEY_PROP, "value": "ek"}]
    public = mapping.event_to_graph(
        CalendarEvent(**{**ev.__dict__, "is_private": False, "sensitivity": "private"})
    )
    assert public["sensitivity"] == "normal"
    with pytest.raises(ValueError, match="naive"):
        mapping.to_dtz(datetime(2026, 1, 1))


def test_task_round_trip_with_extension() -> None:
    task = TodoTask(
        id="",
        title="Call back",
        body="about pricing",
        due=date(2026, 2, 3),
        status=TaskStatus.COMPLETED,
        importance=Importance.HIGH,
        completed=datetime(2026, 2, 2, 10, 0, tzinfo=UTC),
        sf_id="00T1",
        sync_key="tk",
    )
    body = mapping.task_to_graph(task, with_extension=True)
    assert body["dueDateTime"] == {"dateTime": "2026-02-03T00:00:00.0000000", "timeZone": "UTC"}
    assert body["extensions"][0]["extensionName"] == mapping.TASK_EXTENSION
    raw = {
        **body,
        "id": "T1",
        "@odata.etag": 'W/"e1"',
        "extensions": [
            {
                **body["extensions"][0],
                "id": "microsoft.graph.openTypeExtension." + mapping.TASK_EXTENSION,
            }
        ],
    }
    back = mapping.task_from_graph(raw)
    assert back == TodoTask(**{**task.__dict__, "id": "T1", "version": 'W/"e1"'})
    assert "extensions" not in mapping.task_to_graph(task)


def test_etag_and_key_filter() -> None:
    assert mapping.etag_for("") == ""
    assert mapping.etag_for("abc") == 'W/"abc"'
    assert mapping.etag_for('W/"abc"') == 'W/"abc"'
    f = mapping.key_filter(mapping.SYNC_KEY_PROP, ["o'k"])
    assert f.startswith("singleValueExtendedProperties/Any(ep: ep/id eq 'String {")
    assert "ep/value eq 'o''k'" in f
    two = mapping.key_filter(mapping.SYNC_KEY_PROP, ["a", "b"])
    assert two.count("(ep/id eq") == 2 and " or " in two


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # events: 7 fraction digits (Python keeps 6)
        ("2026-03-10T09:30:00.1234567Z", datetime(2026, 3, 10, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2026-03-10T09:30:00Z", datetime(2026, 3, 10, 9, 30, tzinfo=UTC)),  # contacts
        ("2026-03-10T11:30:00+02:00", datetime(2026, 3, 10, 9, 30, tzinfo=UTC)),
        ("2026-03-10T09:30:00", datetime(2026, 3, 10, 9, 30, tzinfo=UTC)),  # no zone: UTC
        (None, None),
        ("", None),
        ("not a date", None),
    ],
)
def test_last_modified_date_time_is_aware_utc(value: str | None, expected: datetime | None) -> None:
    raw = {"id": "x", "lastModifiedDateTime": value}
    event_raw = {
        **raw,
        "start": {"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-10T10:00:00.0000000", "timeZone": "UTC"},
    }
    modified = [
        mapping.contact_from_graph(raw).modified_at,
        mapping.event_from_graph(event_raw).modified_at,
        mapping.task_from_graph({**raw, "title": "t"}).modified_at,
    ]
    assert modified == [expected] * 3
    for value_out in modified:
        assert value_out is None or value_out.utcoffset() is not None


def test_last_modified_is_read_only() -> None:
    """It is never written back: Graph refuses read-only properties."""
    when = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    contact = Contact(id="c", given_name="A", modified_at=when)
    event = CalendarEvent(id="e", subject="s", start=when, end=when, modified_at=when)
    task = TodoTask(id="t", title="t", modified_at=when)
    for body in (
        mapping.contact_to_graph(contact),
        mapping.event_to_graph(event),
        mapping.task_to_graph(task),
    ):
        assert "lastModifiedDateTime" not in body
