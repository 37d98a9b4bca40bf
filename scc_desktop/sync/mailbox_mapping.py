"""Neutral mailbox items (`mailbox.types`) <-> the engine's neutral fields (`sync.fields`).

Pure functions, shared by every mailbox provider. Conventions the Salesforce mapper must agree on:
- event times are aware UTC ('...Z'); an all-day item carries dates, the end date EXCLUSIVE
  (iCalendar/Graph style: a one-day item on the 3rd is 3rd..4th);
- show_as is Graph's word normalized: busy, free, tentative, oof, workingelsewhere (as
  `salesforce_mapping` reads Salesforce's ShowAs; Salesforce has no "tentative": it comes back
  "busy" once);
- task status not_started, in_progress, completed, waiting_on_someone_else, deferred (the
  Salesforce picklist words through `fields._enum`); priority low, normal, high.
Writes start from the item as the mailbox holds it (`base`), so what the engine does not sync
(categories, extra emails, attendees, the organizer's time zone) survives an update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from scc_desktop.mailbox.protocol import SALESFORCE_CATEGORY
from scc_desktop.mailbox.types import (
    Address,
    CalendarEvent,
    Contact,
    Importance,
    PostalAddress,
    ResponseStatus,
    ShowAs,
    TaskStatus,
    TodoTask,
)
from scc_desktop.sync.fields import FieldValue, normalize

CONTACT_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "email2",
        "phone",
        "mobile",
        "title",
        "company",
        "street",
        "city",
        "state",
        "postal_code",
        "country",
        "notes",
    }
)
# `ical_uid` is left out on purpose: Graph assigns it and cannot take it, so declaring it would
# bounce every item created from Salesforce back as a change. It is still in the item's fields,
# which is what first-run matching reads.
EVENT_FIELDS = frozenset(
    {
        "subject",
        "start",
        "end",
        "is_all_day",
        "location",
        "description",
        "show_as",
        "is_private",
        "attendees",
        "responses",
    }
)
TASK_FIELDS = frozenset({"subject", "due_date", "status", "priority", "description"})

_SHOW_AS_OUT: Mapping[ShowAs, str | None] = {
    ShowAs.BUSY: "busy",
    ShowAs.FREE: "free",
    ShowAs.TENTATIVE: "tentative",
    ShowAs.OOF: "oof",
    ShowAs.WORKING_ELSEWHERE: "workingelsewhere",
    ShowAs.UNKNOWN: None,
}
_SHOW_AS_IN: Mapping[str, ShowAs] = {
    **{v: k for k, v in _SHOW_AS_OUT.items() if v is not None},
    "outofoffice": ShowAs.OOF,
    "out_of_office": ShowAs.OOF,
    "working_elsewhere": ShowAs.WORKING_ELSEWHERE,
}
_STATUS_OUT: Mapping[TaskStatus, str] = {
    TaskStatus.NOT_STARTED: "not_started",
    TaskStatus.IN_PROGRESS: "in_progress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.WAITING: "waiting_on_someone_else",
    TaskStatus.DEFERRED: "deferred",
}
_STATUS_IN: Mapping[str, TaskStatus] = {
    **{v: k for k, v in _STATUS_OUT.items()},
    "waiting_on_others": TaskStatus.WAITING,
    "waitingonothers": TaskStatus.WAITING,
    "notstarted": TaskStatus.NOT_STARTED,
    "inprogress": TaskStatus.IN_PROGRESS,
}
_IMPORTANCE_IN: Mapping[str, Importance] = {
    "low": Importance.LOW,
    "normal": Importance.NORMAL,
    "medium": Importance.NORMAL,
    "high": Importance.HIGH,
}


def _str(fields: Mapping[str, FieldValue], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


# --- contacts -------------------------------------------------------------------------------


def contact_fields(contact: Contact) -> dict[str, FieldValue]:
    emails = [a.email for a in contact.emails if a.email]
    addr = contact.mailing_address
    return normalize(
        "contact",
        {
            "first_name": contact.given_name,
            "last_name": contact.surname,
            "email": emails[0] if emails else None,
            "email2": emails[1] if len(emails) > 1 else None,
            "phone": contact.business_phone,
            "mobile": contact.mobile_phone,
            "title": contact.job_title,
            "company": contact.company,
            "street": addr.street,
            "city": addr.city,
            "state": addr.state,
            "postal_code": addr.postal_code,
            "country": addr.country,
            "notes": contact.notes,
        },
    )


def contact_from_fields(
    fields: Mapping[str, FieldValue], base: Contact | None = None, *, sync_key: str | None = None
) -> Contact:
    """The contact to write; addresses beyond the second and the categories are kept."""
    fields = normalize("contact", fields)
    current = base or Contact(id="")
    old = list(current.emails)
    emails: list[Address] = []
    for index, name in enumerate(("email", "email2")):
        value = _str(fields, name)
        if value:
            kept = old[index].name if index < len(old) else ""
            emails.append(Address(email=value, name=kept))
    taken = {a.email.lower() for a in emails}
    emails.extend(a for a in old[2:] if a.email.lower() not in taken)
    return replace(
        current,
        given_name=_str(fields, "first_name"),
        surname=_str(fields, "last_name"),
        emails=tuple(emails),
        business_phone=_str(fields, "phone"),
        mobile_phone=_str(fields, "mobile"),
        job_title=_str(fields, "title"),
        company=_str(fields, "company"),
        mailing_address=PostalAddress(
            street=_str(fields, "street"),
            city=_str(fields, "city"),
            state=_str(fields, "state"),
            postal_code=_str(fields, "postal_code"),
            country=_str(fields, "country"),
        ),
        notes=_str(fields, "notes"),
        sync_key=sync_key if sync_key is not None else current.sync_key,
    )


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventScope:
    """Which calendar items sync: the "Salesforce" category always, meetings and appointments
    by their auto-sharing switches; private ones only with `private`."""

    meetings: bool = False
    appointments: bool = False
    private: bool = False


def is_meeting(event: CalendarEvent) -> bool:
    return bool(event.attendees)


def has_category(event: CalendarEvent, name: str) -> bool:
    return any(c.strip().lower() == name.lower() for c in event.categories)


def event_in_scope(event: CalendarEvent, scope: EventScope) -> bool:
    """A Salesforce Task shown in the calendar (its own category) is never a calendar item to
    save, whatever the auto-sharing switches say."""
    if event.is_cancelled or event.occurrence_type.value == "seriesMaster":
        return False
    if has_category(event, SALESFORCE_TASKS_CATEGORY):
        return False
    if event.is_private and not scope.private:
        return False
    if any(c.strip().lower() == SALESFORCE_CATEGORY.lower() for c in event.categories):
        return True
    return scope.meetings if is_meeting(event) else scope.appointments


def event_fields(event: CalendarEvent) -> dict[str, FieldValue]:
    if event.is_all_day:
        first = event.start_date or event.start.date()
        last = event.end_date or first + timedelta(days=1)
        start: object = first.isoformat()
        end: object = max(last, first + timedelta(days=1)).isoformat()
    else:
        start, end = event.start, event.end
    return normalize(
        "event",
        {
            "subject": event.subject,
            "start": start,
            "end": end,
            "is_all_day": event.is_all_day,
            "location": event.location,
            "description": event.body_text,
            "show_as": _SHOW_AS_OUT.get(event.show_as),
            "is_private": event.is_private,
            "attendees": [a.address.email for a in event.attendees],
            "responses": attendee_responses(event),
            "ical_uid": event.ical_uid,
        },
    )


_RESPONSE_OUT: Mapping[ResponseStatus, str] = {
    ResponseStatus.ACCEPTED: "accepted",
    ResponseStatus.DECLINED: "declined",
    ResponseStatus.TENTATIVE: "tentative",
}


def attendee_responses(event: CalendarEvent) -> list[str]:
    """The attendees' answers as "address:accepted|declined|tentative"; an attendee who has not
    answered (none, notResponded) or the organizer has no entry."""
    return [
        f"{a.address.email}:{_RESPONSE_OUT[a.response]}"
        for a in event.attendees
        if a.address.email and a.response in _RESPONSE_OUT
    ]


def _moment(value: str) -> datetime:
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def event_from_fields(
    fields: Mapping[str, FieldValue],
    base: CalendarEvent | None = None,
    *,
    sync_key: str | None = None,
) -> CalendarEvent:
    """The event to write. Attendees are never written (that would send invitations): they flow
    mailbox -> Salesforce only. A new event carries the "Salesforce" category so it stays in
    scope whatever the auto-sharing switches say."""
    fields = normalize("event", fields)
    all_day = fields.get("is_all_day") is True
    start_text = _str(fields, "start")
    end_text = _str(fields, "end") or start_text
    if not start_text:
        raise ValueError("a calendar item needs a start")
    start = _moment(start_text)
    end = max(_moment(end_text), start)
    start_date = end_date = None
    if all_day:
        start_date = date.fromisoformat(start_text[:10])
        end_date = max(date.fromisoformat(end_text[:10]), start_date + timedelta(days=1))
        start = datetime.combine(start_date, datetime.min.time(), UTC)
        end = datetime.combine(end_date, datetime.min.time(), UTC)
    private = fields.get("is_private") is True
    current = base or CalendarEvent(
        id="", subject="", start=start, end=end, categories=(SALESFORCE_CATEGORY,)
    )
    show = _SHOW_AS_IN.get(_str(fields, "show_as"), current.show_as if base else ShowAs.BUSY)
    return replace(
        current,
        subject=_str(fields, "subject"),
        start=start,
        end=end,
        is_all_day=all_day,
        start_date=start_date,
        end_date=end_date,
        location=_str(fields, "location"),
        body_text=_str(fields, "description"),
        is_private=private,
        show_as=show,
        sync_key=sync_key if sync_key is not None else current.sync_key,
    )


# --- Salesforce Tasks shown in the calendar ----------------------------------------------------

SALESFORCE_TASKS_CATEGORY = "Salesforce Tasks"
"""The category of the read-only calendar items that show Salesforce Tasks."""
TASK_CALENDAR_FIELDS = frozenset({"subject", "due_date", "description"})


def task_calendar_fields(event: CalendarEvent) -> dict[str, FieldValue]:
    """A shown Task's calendar item: its subject, the day it lies on, its body."""
    day = event.start_date if event.is_all_day and event.start_date else event.start.date()
    return normalize(
        "task_calendar",
        {"subject": event.subject, "due_date": day, "description": event.body_text},
    )


def task_calendar_event(
    fields: Mapping[str, FieldValue],
    base: CalendarEvent | None = None,
    *,
    sync_key: str | None = None,
) -> CalendarEvent:
    """An all-day, free (it blocks no time) calendar item on the Task's due date, in its own
    category; an update keeps whatever else the item has."""
    fields = normalize("task_calendar", fields)
    due = _str(fields, "due_date")
    if not due:
        raise ValueError("a Salesforce Task shown in the calendar needs a due date")
    day = date.fromisoformat(due[:10])
    after = day + timedelta(days=1)
    start = datetime.combine(day, datetime.min.time(), UTC)
    end = datetime.combine(after, datetime.min.time(), UTC)
    current = base or CalendarEvent(
        id="",
        subject="",
        start=start,
        end=end,
        categories=(SALESFORCE_TASKS_CATEGORY,),
        show_as=ShowAs.FREE,
    )
    return replace(
        current,
        subject=_str(fields, "subject"),
        start=start,
        end=end,
        is_all_day=True,
        start_date=day,
        end_date=after,
        body_text=_str(fields, "description"),
        sync_key=sync_key if sync_key is not None else current.sync_key,
    )


# --- tasks ----------------------------------------------------------------------------------


def task_fields(task: TodoTask) -> dict[str, FieldValue]:
    return normalize(
        "task",
        {
            "subject": task.title,
            "due_date": task.due,
            "status": _STATUS_OUT[task.status],
            "priority": task.importance.value,
            "description": task.body,
        },
    )


def task_from_fields(
    fields: Mapping[str, FieldValue], base: TodoTask | None = None, *, sync_key: str | None = None
) -> TodoTask:
    fields = normalize("task", fields)
    current = base or TodoTask(id="", title="")
    due_text = _str(fields, "due_date")
    status = _STATUS_IN.get(_str(fields, "status"), TaskStatus.NOT_STARTED)
    return replace(
        current,
        title=_str(fields, "subject"),
        body=_str(fields, "description"),
        due=date.fromisoformat(due_text[:10]) if due_text else None,
        status=status,
        importance=_IMPORTANCE_IN.get(_str(fields, "priority"), Importance.NORMAL),
        completed=current.completed if status is TaskStatus.COMPLETED else None,
        sync_key=sync_key if sync_key is not None else current.sync_key,
    )
