"""Salesforce records <-> the neutral fields of `fields.py`, as pure functions.

Kept apart from the repositories so every mapping rule (all-day events, picklists, time zones,
empty values) is unit-tested without a server. Reading normalizes through `fields.normalize`, so
a value read back after our own write hashes exactly like the value we wrote.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scc_desktop.sync.fields import FieldValue, normalize

SYNC_KEY = "SCC_Sync_Key__c"
DAY_MINUTES = 24 * 60

# --- contacts -----------------------------------------------------------------------------------

CONTACT_COLUMNS: Mapping[str, str] = {
    "first_name": "FirstName",
    "last_name": "LastName",
    "email": "Email",
    "phone": "Phone",
    "mobile": "MobilePhone",
    "title": "Title",
    "street": "MailingStreet",
    "city": "MailingCity",
    "state": "MailingState",
    "postal_code": "MailingPostalCode",
    "country": "MailingCountry",
    "notes": "Description",
}
"""Plain one-to-one columns; `company` goes through Account.Name / AccountId."""

CONTACT_FIELDS: frozenset[str] = frozenset({*CONTACT_COLUMNS, "company"})
CONTACT_SELECT: tuple[str, ...] = (
    *CONTACT_COLUMNS.values(),
    "Account.Name",
    "AccountId",
    "OwnerId",
    "LastModifiedDate",
    SYNC_KEY,
)
NO_LAST_NAME = "(no last name)"
"""Contact.LastName is required: a mailbox contact without one gets its email or this text."""


def contact_from_sf(record: Mapping[str, Any]) -> dict[str, FieldValue]:
    raw: dict[str, object] = {name: record.get(col) for name, col in CONTACT_COLUMNS.items()}
    raw["company"] = record.get("Account.Name")
    return normalize("contact", raw)


def contact_to_sf(
    fields: Mapping[str, FieldValue],
    names: Collection[str],
    account_ids: Mapping[str, str],
) -> dict[str, Any]:
    """The columns for `names`; `account_ids` maps lower-cased account names to Ids.

    A company with no Account of that name leaves AccountId empty: we never create Accounts
    from the mailbox (a typo there would litter the org with accounts).
    """
    row: dict[str, Any] = {}
    for name in names:
        if name == "company":
            company = fields.get("company")
            row["AccountId"] = (
                account_ids.get(company.lower()) if isinstance(company, str) else None
            )
        elif name in CONTACT_COLUMNS:
            row[CONTACT_COLUMNS[name]] = _plain(fields.get(name))
    if "LastName" in row and not row["LastName"]:
        email = fields.get("email")
        row["LastName"] = email if isinstance(email, str) and email else NO_LAST_NAME
    return row


# --- tasks --------------------------------------------------------------------------------------

TASK_FIELDS: frozenset[str] = frozenset(
    {"subject", "due_date", "status", "priority", "description"}
)
TASK_SELECT: tuple[str, ...] = (
    "Subject",
    "ActivityDate",
    "Status",
    "Priority",
    "Description",
    "OwnerId",
    "IsClosed",
    "TaskSubtype",
    "LastModifiedDate",
    SYNC_KEY,
)
TASK_STATUS_TO_SF: Mapping[str, str] = {
    "not_started": "Not Started",
    "in_progress": "In Progress",
    "completed": "Completed",
    "waiting_on_someone_else": "Waiting on someone else",
    "deferred": "Deferred",
}
# What the mailbox connectors may call the same states (Graph's To Do words, normalized).
_TASK_STATUS_ALIASES: Mapping[str, str] = {
    "notstarted": "not_started",
    "needsaction": "not_started",
    "inprogress": "in_progress",
    "waitingonothers": "waiting_on_someone_else",
    "waiting_on_others": "waiting_on_someone_else",
    "waiting": "waiting_on_someone_else",
}
PRIORITY_TO_SF: Mapping[str, str] = {"high": "High", "normal": "Normal", "low": "Low"}


def task_status_to_sf(value: FieldValue) -> str:
    """Unknown or empty -> 'Not Started' (Status is a required, restricted picklist)."""
    if not isinstance(value, str):
        return "Not Started"
    key = _TASK_STATUS_ALIASES.get(value, value)
    return TASK_STATUS_TO_SF.get(key, "Not Started")


def priority_to_sf(value: FieldValue) -> str:
    """Unknown or empty -> 'Normal' (Priority is required)."""
    return PRIORITY_TO_SF.get(value, "Normal") if isinstance(value, str) else "Normal"


def task_from_sf(record: Mapping[str, Any]) -> dict[str, FieldValue]:
    return normalize(
        "task",
        {
            "subject": record.get("Subject"),
            "due_date": record.get("ActivityDate"),
            "status": record.get("Status"),
            "priority": record.get("Priority"),
            "description": record.get("Description"),
        },
    )


def task_to_sf(fields: Mapping[str, FieldValue], names: Collection[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in names:
        value = fields.get(name)
        if name == "subject":
            row["Subject"] = _plain(value)
        elif name == "due_date":
            row["ActivityDate"] = _plain(value)
        elif name == "status":
            row["Status"] = task_status_to_sf(value)
        elif name == "priority":
            row["Priority"] = priority_to_sf(value)
        elif name == "description":
            row["Description"] = _plain(value)
    return row


# --- events -------------------------------------------------------------------------------------

EVENT_FIELDS: frozenset[str] = frozenset(
    {"subject", "start", "end", "is_all_day", "location", "description", "show_as", "is_private"}
)
EVENT_TIME_FIELDS: frozenset[str] = frozenset({"start", "end", "is_all_day"})
EVENT_SELECT: tuple[str, ...] = (
    "Subject",
    "StartDateTime",
    "EndDateTime",
    "IsAllDayEvent",
    "ActivityDate",
    "DurationInMinutes",
    "Location",
    "Description",
    "ShowAs",
    "IsPrivate",
    "OwnerId",
    "WhoId",
    "LastModifiedDate",
    SYNC_KEY,
)
SHOW_AS_FROM_SF: Mapping[str, str] = {
    "Busy": "busy",
    "Free": "free",
    "OutOfOffice": "oof",
    "WorkingElsewhere": "workingelsewhere",
}
"""Neutral show_as uses Graph's words normalized (free, tentative, busy, oof, workingelsewhere)."""
_SHOW_AS_TO_SF: Mapping[str, str] = {
    "busy": "Busy",
    "free": "Free",
    "oof": "OutOfOffice",
    "out_of_office": "OutOfOffice",
    "outofoffice": "OutOfOffice",
    "workingelsewhere": "WorkingElsewhere",
    "working_elsewhere": "WorkingElsewhere",
}


def show_as_to_sf(value: FieldValue) -> str:
    """Salesforce has no 'tentative': it (and anything unknown) is shown as Busy."""
    return _SHOW_AS_TO_SF.get(value, "Busy") if isinstance(value, str) else "Busy"


def _sf_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _sf_date(value: object) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    return date.fromisoformat(value[:10])


def event_from_sf(record: Mapping[str, Any]) -> dict[str, FieldValue]:
    """All-day events become dates with an exclusive end (as the mailbox keeps them).

    Salesforce stores an all-day event as ActivityDate plus DurationInMinutes = 1440 x days.
    """
    all_day = bool(record.get("IsAllDayEvent"))
    start: object
    end: object
    if all_day:
        first = _sf_date(record.get("ActivityDate")) or _sf_date(record.get("StartDateTime"))
        minutes = record.get("DurationInMinutes")
        if isinstance(minutes, int) and minutes > 0:
            days = max(1, minutes // DAY_MINUTES)
        else:
            last = _sf_date(record.get("EndDateTime"))
            days = max(1, (last - first).days + 1) if last and first else 1
        start = first
        end = first + timedelta(days=days) if first else None
    else:
        start = _sf_datetime(record.get("StartDateTime"))
        end = _sf_datetime(record.get("EndDateTime"))
    show_as = record.get("ShowAs")
    return normalize(
        "event",
        {
            "subject": record.get("Subject"),
            "start": start,
            "end": end,
            "is_all_day": all_day,
            "location": record.get("Location"),
            "description": record.get("Description"),
            "show_as": SHOW_AS_FROM_SF.get(show_as, "busy") if isinstance(show_as, str) else None,
            "is_private": bool(record.get("IsPrivate")),
        },
    )


def _as_date(value: FieldValue) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    return date.fromisoformat(value[:10])


def _as_datetime(value: FieldValue) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def sf_datetime_text(moment: datetime) -> str:
    """Salesforce's datetime format, in UTC."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def event_times_to_sf(fields: Mapping[str, FieldValue]) -> dict[str, Any]:
    """All the time columns at once: Salesforce derives them from each other, so a change to
    any of start, end or all-day sends them together."""
    if fields.get("is_all_day"):
        first = _as_date(fields.get("start"))
        if first is None:
            raise ValueError("an all-day event needs a start date")
        after = _as_date(fields.get("end"))
        days = max(1, (after - first).days) if after else 1
        midnight = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return {
            "IsAllDayEvent": True,
            "ActivityDate": first.isoformat(),
            "DurationInMinutes": days * DAY_MINUTES,
            "StartDateTime": sf_datetime_text(midnight),
            "EndDateTime": sf_datetime_text(midnight + timedelta(days=days - 1)),
        }
    start = _as_datetime(fields.get("start"))
    if start is None:
        raise ValueError("an event needs a start time")
    end = _as_datetime(fields.get("end")) or start
    end = max(end, start)
    return {
        "IsAllDayEvent": False,
        "StartDateTime": sf_datetime_text(start),
        "EndDateTime": sf_datetime_text(end),
    }


def event_to_sf(fields: Mapping[str, FieldValue], names: Collection[str]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in names:
        value = fields.get(name)
        if name == "subject":
            row["Subject"] = _plain(value)
        elif name == "location":
            row["Location"] = _plain(value)
        elif name == "description":
            row["Description"] = _plain(value)
        elif name == "show_as":
            row["ShowAs"] = show_as_to_sf(value)
        elif name == "is_private":
            row["IsPrivate"] = bool(value)
    if EVENT_TIME_FIELDS.intersection(names):
        row.update(event_times_to_sf(fields))
    return row


def _plain(value: FieldValue) -> Any:
    """Empty text is sent as null, which clears the field (a PATCH with '' may not)."""
    if value in ("", ()):
        return None
    return value


# --- attendee responses -------------------------------------------------------------------------

TENTATIVE_COMMENT = "Tentatively accepted"
"""EventRelation.Status has no tentative answer (New, Accepted, Declined: the Undecided,
Accepted and Declined relation views): a tentative answer stays New with this Response."""
RESPONSE_TO_SF: Mapping[str, tuple[str, str | None]] = {
    "accepted": ("Accepted", None),
    "declined": ("Declined", None),
    "tentative": ("New", TENTATIVE_COMMENT),
}


def parse_responses(value: FieldValue) -> dict[str, str]:
    """The `responses` field ("address:answer" entries) as {address: answer}."""
    out: dict[str, str] = {}
    if isinstance(value, tuple):
        for entry in value:
            address, _, answer = entry.rpartition(":")
            if address and answer in RESPONSE_TO_SF:
                out[address.lower()] = answer
    return out


def relation_answer(status: object, response: object) -> str | None:
    """An EventRelation's Status (and Response) as a neutral answer; None when unanswered."""
    if status == "Accepted":
        return "accepted"
    if status == "Declined":
        return "declined"
    if status == "New" and response == TENTATIVE_COMMENT:
        return "tentative"
    return None


# --- calendar items saved as Tasks --------------------------------------------------------------

CALENDAR_KEY_PREFIX = "cal-"
"""A Task saved from a calendar item carries its sync key with this prefix: it is how the
calendar's Task scope finds them and how the tasks kind (the To Do list) leaves them out."""
CALENDAR_MARK = "── Calendar item ──"
"""The line that starts the calendar lines at the end of such a Task's Comments."""
CALENDAR_TASK_SELECT: tuple[str, ...] = (
    "Subject",
    "ActivityDate",
    "Description",
    "Status",
    "OwnerId",
    "IsClosed",
    "TaskSubtype",
    "WhoId",
    "Who.Email",
    "LastModifiedDate",
    SYNC_KEY,
)
CALENDAR_TASK_TEXT: frozenset[str] = frozenset(
    {"start", "end", "is_all_day", "location", "description"}
)
"""The event fields a Task keeps in its Comments (and its date): a change to any rewrites them."""
_TIMED = re.compile(
    r"^When: (\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2}) – (?:(\d{4}-\d{2}-\d{2}) )?(\d{2}):(\d{2})"
    r" \(([^)]+)\)$"
)
_ALL_DAY = re.compile(r"^When: (\d{4}-\d{2}-\d{2})(?: – (\d{4}-\d{2}-\d{2}))? \(all day\)$")


def zone_label(zone: tzinfo) -> str:
    key = getattr(zone, "key", None)
    if isinstance(key, str) and key:
        return key
    offset = zone.utcoffset(None) or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _zone_named(label: str, fallback: tzinfo) -> tzinfo:
    try:
        return ZoneInfo(label)
    except (ValueError, ZoneInfoNotFoundError):
        return fallback


def calendar_day(fields: Mapping[str, FieldValue], zone: tzinfo) -> date | None:
    """The Task's ActivityDate for an event: its start date in the user's zone (an all-day
    item's own first date)."""
    if fields.get("is_all_day"):
        return _as_date(fields.get("start"))
    start = _as_datetime(fields.get("start"))
    return start.astimezone(zone).date() if start is not None else None


def calendar_lines(fields: Mapping[str, FieldValue], zone: tzinfo) -> str:
    """The calendar lines: when (in the user's zone) and where."""
    if fields.get("is_all_day"):
        first = _as_date(fields.get("start"))
        after = _as_date(fields.get("end"))
        if first is None:
            return ""
        last = max(first, (after - timedelta(days=1)) if after else first)
        when = f"{first} (all day)" if last == first else f"{first} – {last} (all day)"
    else:
        start = _as_datetime(fields.get("start"))
        if start is None:
            return ""
        end = max(_as_datetime(fields.get("end")) or start, start)
        a, b = start.astimezone(zone), end.astimezone(zone)
        until = b.strftime("%H:%M") if b.date() == a.date() else b.strftime("%Y-%m-%d %H:%M")
        when = f"{a:%Y-%m-%d %H:%M} – {until} ({zone_label(zone)})"
    lines = [CALENDAR_MARK, f"When: {when}"]
    location = fields.get("location")
    if isinstance(location, str) and location:
        lines.append(f"Where: {location}")
    return "\n".join(lines)


def calendar_task_description(fields: Mapping[str, FieldValue], zone: tzinfo) -> str | None:
    body = fields.get("description")
    text = body if isinstance(body, str) else ""
    lines = calendar_lines(fields, zone)
    return "\n\n".join(part for part in (text, lines) if part) or None


def calendar_task_to_sf(
    fields: Mapping[str, FieldValue], names: Collection[str], zone: tzinfo, now: datetime
) -> dict[str, Any]:
    """Subject; the date, Comments (the body and the calendar lines), Type Meeting and the
    Status when the time, place or body changed: Completed once the item has ended, else Not
    Started (Salesforce users may change it afterwards)."""
    row: dict[str, Any] = {}
    if "subject" in names:
        row["Subject"] = _plain(fields.get("subject"))
    if CALENDAR_TASK_TEXT.intersection(names):
        day = calendar_day(fields, zone)
        if day is None:
            raise ValueError("a calendar item needs a start")
        row["ActivityDate"] = day.isoformat()
        row["Description"] = calendar_task_description(fields, zone)
        row["Type"] = "Meeting"
        end = _as_datetime(fields.get("end")) or _as_datetime(fields.get("start"))
        row["Status"] = "Completed" if end is not None and end <= now else "Not Started"
    return row


def _when(line: str, day: date | None, zone: tzinfo) -> tuple[object, object, bool] | None:
    """(start, end, all day) from a "When:" line; `day` (the Task's date) moves it."""
    found = _ALL_DAY.match(line)
    if found:
        first = date.fromisoformat(found.group(1))
        last = date.fromisoformat(found.group(2)) if found.group(2) else first
        start = day or first
        return start, start + timedelta(days=max(1, (last - first).days + 1)), True
    found = _TIMED.match(line)
    if not found:
        return None
    d1, h1, m1, d2, h2, m2, label = found.groups()
    where = _zone_named(label, zone)
    first = date.fromisoformat(d1)
    begin = datetime.combine(first, time(int(h1), int(m1)), where)
    last = date.fromisoformat(d2) if d2 else first
    finish = datetime.combine(last, time(int(h2), int(m2)), where)
    moved = datetime.combine(day or first, time(int(h1), int(m1)), where)
    length = max(finish.astimezone(UTC) - begin.astimezone(UTC), timedelta(0))
    return moved.astimezone(UTC), moved.astimezone(UTC) + length, False


def calendar_task_from_sf(record: Mapping[str, Any], zone: tzinfo) -> dict[str, FieldValue]:
    """The event a calendar Task stands for: the body and the calendar lines from its
    Comments, moved to its date (a Task moved in Salesforce moves the item, at the same time
    of day). Without readable calendar lines it is an all-day item on its date."""
    text = record.get("Description")
    body, where_line, when_line = (text if isinstance(text, str) else ""), None, None
    head, mark, tail = body.rpartition(CALENDAR_MARK)
    if mark:
        body = head
        for line in tail.strip().splitlines():
            if line.startswith("When: "):
                when_line = line.strip()
            elif line.startswith("Where: "):
                where_line = line[len("Where: ") :].strip()
    day = _sf_date(record.get("ActivityDate"))
    timing = _when(when_line, day, zone) if when_line else None
    if timing is None:
        timing = (day, day + timedelta(days=1) if day else None, True)
    start, end, all_day = timing
    who = record.get("Who.Email")
    return normalize(
        "event",
        {
            "subject": record.get("Subject"),
            "start": start,
            "end": end,
            "is_all_day": all_day,
            "location": where_line,
            "description": body,
            "show_as": None,
            "is_private": False,
            "attendees": [who] if isinstance(who, str) and who else [],
            "responses": (),
        },
    )
