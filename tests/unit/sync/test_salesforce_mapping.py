"""Salesforce records <-> neutral fields: both ways, all-day, time zones, picklists, empties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from scc_desktop.salesforce.errors import RecordError
from scc_desktop.salesforce.writer import WriteResult as SfWriteResult
from scc_desktop.settings import SETTINGS, SettingsSnapshot, Value
from scc_desktop.sync import salesforce_mapping as m
from scc_desktop.sync import salesforce_side as side
from scc_desktop.sync.fields import FIELDS, normalize, project

# --- contacts ------------------------------------------------------------------------------------


def test_contact_read_maps_every_column_and_the_account_name() -> None:
    record = {
        "FirstName": " Maria ",
        "LastName": "Garcia",
        "Email": "Maria.Garcia@Globex.Example",
        "Phone": "+1 555 0100",
        "MobilePhone": None,
        "Title": "CFO",
        "Account.Name": "Globex",
        "MailingStreet": "1 Main St\r\nSuite 2  ",
        "MailingCity": "Springfield",
        "MailingState": "IL",
        "MailingPostalCode": "62701",
        "MailingCountry": "USA",
        "Description": "",
    }
    fields = m.contact_from_sf(record)
    assert fields == {
        "first_name": "Maria",
        "last_name": "Garcia",
        "email": "maria.garcia@globex.example",
        "phone": "+1 555 0100",
        "mobile": None,
        "title": "CFO",
        "company": "Globex",
        "street": "1 Main St\nSuite 2",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
        "country": "USA",
        "notes": None,
    }
    assert set(fields) == m.CONTACT_FIELDS
    assert set(FIELDS["contact"]) > m.CONTACT_FIELDS
    assert "email2" not in m.CONTACT_FIELDS


def test_contact_without_account_has_no_company() -> None:
    assert m.contact_from_sf({"LastName": "Doe", "Account": None})["company"] is None


def test_contact_write_sends_only_the_named_fields_and_looks_up_the_account() -> None:
    fields = normalize("contact", {"last_name": "Doe", "company": "Acme Corporation", "phone": ""})
    row = m.contact_to_sf(fields, {"company", "phone"}, {"acme corporation": "001A"})
    assert row == {"AccountId": "001A", "Phone": None}


def test_contact_write_with_an_unknown_company_leaves_the_account_empty() -> None:
    row = m.contact_to_sf({"company": "Nowhere Ltd"}, {"company"}, {"acme": "001A"})
    assert row == {"AccountId": None}


def test_contact_write_fills_the_required_last_name() -> None:
    with_email = m.contact_to_sf(
        {"first_name": "Cher", "email": "cher@x.example"}, {"last_name"}, {}
    )
    assert with_email == {"LastName": "cher@x.example"}
    assert m.contact_to_sf({}, {"last_name"}, {}) == {"LastName": m.NO_LAST_NAME}


def test_contact_round_trip_is_stable() -> None:
    fields = normalize(
        "contact",
        {
            "first_name": "Tom",
            "last_name": "O'Neil",
            "email": "tom.o'neil@globex.example",
            "street": "2 Side St",
            "notes": "line 1\nline 2",
        },
    )
    names = m.CONTACT_FIELDS - {"company"}
    row = m.contact_to_sf(fields, names, {})
    assert project("contact", m.contact_from_sf(row), names) == project("contact", fields, names)


# --- tasks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("neutral", "label"),
    [
        ("not_started", "Not Started"),
        ("in_progress", "In Progress"),
        ("completed", "Completed"),
        ("waiting_on_someone_else", "Waiting on someone else"),
        ("deferred", "Deferred"),
    ],
)
def test_task_status_both_ways(neutral: str, label: str) -> None:
    assert m.task_status_to_sf(neutral) == label
    assert m.task_from_sf({"Status": label})["status"] == neutral


@pytest.mark.parametrize(
    ("alias", "label"),
    [
        ("notstarted", "Not Started"),
        ("inprogress", "In Progress"),
        ("waitingonothers", "Waiting on someone else"),
        (None, "Not Started"),
        ("bogus", "Not Started"),
    ],
)
def test_task_status_aliases_and_empty(alias: str | None, label: str) -> None:
    assert m.task_status_to_sf(alias) == label


@pytest.mark.parametrize(("neutral", "label"), [("high", "High"), ("low", "Low"), (None, "Normal")])
def test_priority(neutral: str | None, label: str) -> None:
    assert m.priority_to_sf(neutral) == label


def test_task_both_ways() -> None:
    record = {
        "Subject": "Send  proposal",
        "ActivityDate": "2026-11-25",
        "Status": "In Progress",
        "Priority": "High",
        "Description": None,
    }
    fields = m.task_from_sf(record)
    assert fields == {
        "subject": "Send proposal",
        "due_date": "2026-11-25",
        "status": "in_progress",
        "priority": "high",
        "description": None,
    }
    assert m.task_to_sf(fields, m.TASK_FIELDS) == {
        "Subject": "Send proposal",
        "ActivityDate": "2026-11-25",
        "Status": "In Progress",
        "Priority": "High",
        "Description": None,
    }
    assert m.task_to_sf({"due_date": None}, {"due_date"}) == {"ActivityDate": None}


# --- events --------------------------------------------------------------------------------------


def test_timed_event_read_is_exact_utc() -> None:
    fields = m.event_from_sf(
        {
            "Subject": "Review",
            "StartDateTime": "2026-03-29T00:30:00.000+0000",
            "EndDateTime": "2026-03-29T01:30:00.000+0000",
            "IsAllDayEvent": False,
            "ShowAs": "OutOfOffice",
            "IsPrivate": True,
            "Location": "",
        }
    )
    assert fields["start"] == "2026-03-29T00:30:00Z"
    assert fields["end"] == "2026-03-29T01:30:00Z"
    assert fields["is_all_day"] is False
    assert fields["show_as"] == "oof"
    assert fields["is_private"] is True
    assert fields["location"] is None


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_timed_event_across_dst_written_in_utc(zone: str) -> None:
    """A meeting at 01:30-03:30 local on the night the clocks change keeps its exact instants."""
    tz = ZoneInfo(zone)
    day = datetime(2026, 3, 29 if zone == "Europe/Berlin" else 8, 1, 30, tzinfo=tz)
    start, end = day, day + timedelta(hours=2)  # wall-clock arithmetic across the switch
    neutral = normalize("event", {"start": start, "end": end, "is_all_day": False})
    row = m.event_to_sf(neutral, {"start", "end", "is_all_day"})
    assert row["IsAllDayEvent"] is False
    sent_start = datetime.fromisoformat(row["StartDateTime"])
    sent_end = datetime.fromisoformat(row["EndDateTime"])
    assert sent_start == start and sent_end == end
    assert sent_start.utcoffset() == timedelta(0)
    # the switch makes the two wall-clock hours one hour of real time
    assert sent_end - sent_start == timedelta(hours=1)
    back = m.event_from_sf({**row, "IsAllDayEvent": False})
    assert (back["start"], back["end"]) == (neutral["start"], neutral["end"])


def test_timed_event_offset_input_becomes_utc() -> None:
    neutral = {"start": "2026-06-01T09:00:00+02:00", "end": None, "is_all_day": False}
    row = m.event_times_to_sf(neutral)
    assert row["StartDateTime"] == "2026-06-01T07:00:00.000+0000"
    assert row["EndDateTime"] == row["StartDateTime"]  # no end: a zero-length event


def test_all_day_event_read_uses_activity_date_and_duration() -> None:
    fields = m.event_from_sf(
        {
            "IsAllDayEvent": True,
            "ActivityDate": "2026-12-12",
            "StartDateTime": "2026-12-12T00:00:00.000+0000",
            "EndDateTime": "2026-12-13T00:00:00.000+0000",
            "DurationInMinutes": 2880,
        }
    )
    assert fields["is_all_day"] is True
    assert (fields["start"], fields["end"]) == ("2026-12-12", "2026-12-14")  # end exclusive


def test_all_day_event_without_duration_uses_the_end_date() -> None:
    fields = m.event_from_sf(
        {
            "IsAllDayEvent": True,
            "ActivityDate": "2026-12-12",
            "EndDateTime": "2026-12-12T00:00:00.000+0000",
        }
    )
    assert (fields["start"], fields["end"]) == ("2026-12-12", "2026-12-13")


def test_all_day_event_write_and_back() -> None:
    neutral = normalize(
        "event", {"start": "2026-12-12", "end": "2026-12-15", "is_all_day": True, "subject": "X"}
    )
    row = m.event_to_sf(neutral, {"start", "end", "is_all_day", "subject"})
    assert row == {
        "Subject": "X",
        "IsAllDayEvent": True,
        "ActivityDate": "2026-12-12",
        "DurationInMinutes": 3 * 1440,
        "StartDateTime": "2026-12-12T00:00:00.000+0000",
        "EndDateTime": "2026-12-14T00:00:00.000+0000",
    }
    back = m.event_from_sf(row)
    assert (back["start"], back["end"], back["is_all_day"]) == ("2026-12-12", "2026-12-15", True)


def test_all_day_event_without_end_lasts_one_day() -> None:
    row = m.event_times_to_sf({"start": "2026-12-12", "end": None, "is_all_day": True})
    assert row["DurationInMinutes"] == 1440


def test_an_event_without_start_is_refused() -> None:
    with pytest.raises(ValueError, match="start"):
        m.event_times_to_sf({"start": None, "is_all_day": False})
    with pytest.raises(ValueError, match="start"):
        m.event_times_to_sf({"start": None, "is_all_day": True})


def test_time_fields_are_sent_together_only_when_one_changed() -> None:
    fields = {"subject": "S", "start": "2026-01-01T10:00:00Z", "end": "2026-01-01T11:00:00Z"}
    assert m.event_to_sf(fields, {"subject"}) == {"Subject": "S"}
    assert set(m.event_to_sf(fields, {"end"})) == {"IsAllDayEvent", "StartDateTime", "EndDateTime"}


@pytest.mark.parametrize(
    ("neutral", "label"),
    [
        ("busy", "Busy"),
        ("free", "Free"),
        ("oof", "OutOfOffice"),
        ("workingelsewhere", "WorkingElsewhere"),
        ("working_elsewhere", "WorkingElsewhere"),
        ("tentative", "Busy"),
        (None, "Busy"),
    ],
)
def test_show_as_to_salesforce(neutral: str | None, label: str) -> None:
    assert m.show_as_to_sf(neutral) == label


@pytest.mark.parametrize(
    ("label", "neutral"),
    [
        ("Busy", "busy"),
        ("Free", "free"),
        ("OutOfOffice", "oof"),
        ("WorkingElsewhere", "workingelsewhere"),
        (None, None),
    ],
)
def test_show_as_from_salesforce(label: str | None, neutral: str | None) -> None:
    record = {"ShowAs": label, "StartDateTime": "2026-01-01T10:00:00.000+0000"}
    assert m.event_from_sf(record)["show_as"] == neutral


def test_sf_datetime_text_converts_any_zone() -> None:
    moment = datetime(2026, 7, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-4)))
    assert m.sf_datetime_text(moment) == "2026-07-01T16:00:00.123+0000"
    assert m.sf_datetime_text(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000+0000"


# --- scopes and write results (salesforce_side's pure parts) -------------------------------------


def _settings(**changes: Value) -> SettingsSnapshot:
    values: dict[str, Value] = {decl.key: decl.default for decl in SETTINGS}
    values.update(changes)
    return SettingsSnapshot(values)


def test_contact_scopes() -> None:
    assert side.contact_scope(_settings(), "005A") == "OwnerId = '005A'"
    assert side.contact_scope(_settings(contacts_scope="all"), "005A") is None
    custom = _settings(contacts_scope="filter", contacts_filter="Title = 'CTO' OR Title = 'CFO'")
    assert side.contact_scope(custom, "005A") == "(Title = 'CTO' OR Title = 'CFO')"
    blank = _settings(contacts_scope="filter", contacts_filter="  ")
    assert side.contact_scope(blank, "005A") == "OwnerId = '005A'"


def test_event_scope_is_whole_days_and_skips_private_items() -> None:
    now = datetime(2026, 11, 22, 23, 33, 7, tzinfo=UTC)
    scope = side.event_scope(_settings(), "005A", now)
    assert scope == (
        "OwnerId = '005A' AND IsChild = false AND StartDateTime >= 2026-11-08T00:00:00Z "
        "AND StartDateTime < 2027-01-22T00:00:00Z AND IsPrivate = false"
    )
    later = now.replace(hour=0, minute=1)
    assert side.event_scope(_settings(), "005A", later) == scope  # same day, same scope
    assert "IsPrivate" not in side.event_scope(_settings(sync_private_items=True), "005A", now)


def test_task_scope_excludes_email_activities() -> None:
    scope = side.task_scope("005A")
    assert scope.startswith("OwnerId = '005A' AND TaskSubtype != 'Email' AND (IsClosed = false")
    assert "LAST_N_DAYS:14" in scope


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("UNABLE_TO_LOCK_ROW", True),
        ("TRANSIENT_OUTCOME_UNKNOWN", True),
        ("TRANSIENT_RETRIES_EXHAUSTED", True),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", False),
        ("REQUIRED_FIELD_MISSING", False),
    ],
)
def test_write_failures_say_whether_a_retry_may_help(code: str, transient: bool) -> None:
    failed = SfWriteResult(0, False, errors=(RecordError(code, "Nope", ("LastName",)),))
    result = side._port_failure(failed)
    assert not result.ok
    assert result.transient is transient
    assert code in result.error and "Nope" in result.error
    assert side._port_failure(SfWriteResult(0, False)).transient is False
