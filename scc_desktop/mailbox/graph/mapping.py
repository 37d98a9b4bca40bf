"""Graph JSON <-> neutral item types. Pure functions, no I/O.

Times: events are read with `Prefer: outlook.timezone="UTC"`, but any dateTimeTimeZone is
handled (IANA names, common Windows names, UTC). All-day items keep their dates exactly: their
midnight-to-midnight `dateTime` is read as a date, never converted between zones.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scc_desktop.mailbox.types import (
    Address,
    Attendee,
    AttendeeType,
    CalendarEvent,
    Contact,
    Importance,
    MailMessage,
    OccurrenceType,
    PostalAddress,
    ResponseStatus,
    ShowAs,
    TaskStatus,
    TodoTask,
)

log = logging.getLogger(__name__)

# Our stamps: single-value extended properties (messages, events, contacts) in our own GUID
# namespace, and one open extension on To Do tasks.
PROPERTY_SET = "{8c5d43b1-4f0e-4b57-9a43-3b8f9a6f0c51}"
SYNC_KEY_PROP = f"String {PROPERTY_SET} Name SccSyncKey"
SF_ID_PROP = f"String {PROPERTY_SET} Name SfId"
TASK_EXTENSION = "com.sccdesktop.sync"
EXPAND_STAMPS = (
    f"singleValueExtendedProperties($filter=id eq '{SYNC_KEY_PROP}' or id eq '{SF_ID_PROP}')"
)

# The Windows time zone names Outlook uses most, for the rare item not read in UTC.
WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Arabian Standard Time": "Asia/Dubai",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
}
_UTC_NAMES = {
    "utc",
    "etc/utc",
    "gmt",
    "etc/gmt",
    "z",
    "tzone://microsoft/utc",
    "coordinated universal time",
}


# -- primitives -------------------------------------------------------------------------------
def _s(value: Any) -> str:
    return "" if value is None else str(value)


def zone(name: str | None) -> ZoneInfo | None:
    """The zone of a Graph time zone name (IANA or Windows); None for UTC or unknown names."""
    if not name or name.strip().lower() in _UTC_NAMES:
        return None
    key = WINDOWS_ZONES.get(name.strip(), name.strip())
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; reading it as UTC", name)
        return None


def parse_naive(value: str) -> datetime:
    """'2024-03-10T09:30:00.0000000' (7 fraction digits, maybe a Z or offset) as a datetime."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    match = re.match(r"^(.*T\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(.*)$", text)
    if match:  # Python takes at most 6 fraction digits
        frac = match.group(2) or ""
        text = match.group(1) + frac[:7] + match.group(3)
    return datetime.fromisoformat(text)


def parse_instant(value: str | None) -> datetime | None:
    """An ISO instant ('2024-03-10T09:30:00Z') as aware UTC."""
    if not value:
        return None
    parsed = parse_naive(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def modified_at(raw: Mapping[str, Any]) -> datetime | None:
    """An item's `lastModifiedDateTime` as aware UTC; None when missing or unreadable (the
    engine then treats the other side as newer rather than failing the item)."""
    value = raw.get("lastModifiedDateTime")
    try:
        return parse_instant(value) if isinstance(value, str) else None
    except ValueError:
        log.warning("unreadable lastModifiedDateTime %r", value)
        return None


def parse_dtz(value: Mapping[str, Any] | None) -> datetime | None:
    """A Graph dateTimeTimeZone as aware UTC."""
    if not value or not value.get("dateTime"):
        return None
    parsed = parse_naive(str(value["dateTime"]))
    if parsed.tzinfo is None:
        tz = zone(_s(value.get("timeZone")))
        parsed = parsed.replace(tzinfo=tz or UTC)
    return parsed.astimezone(UTC)


def dtz_date(value: Mapping[str, Any] | None) -> date | None:
    """The calendar date of a dateTimeTimeZone, as written (for all-day items and due dates)."""
    if not value or not value.get("dateTime"):
        return None
    return parse_naive(str(value["dateTime"])).date()


def format_instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000")


def to_dtz(value: datetime) -> dict[str, str]:
    return {"dateTime": format_instant(value), "timeZone": "UTC"}


def date_dtz(value: date) -> dict[str, str]:
    return {"dateTime": f"{value.isoformat()}T00:00:00.0000000", "timeZone": "UTC"}


def address(value: Mapping[str, Any] | None) -> Address | None:
    if not value:
        return None
    email = value.get("emailAddress", value)
    if not isinstance(email, Mapping):
        return None
    addr = _s(email.get("address")).strip().lower()
    if not addr:
        return None
    return Address(email=addr, name=_s(email.get("name")).strip())


def addresses(values: Iterable[Mapping[str, Any]] | None) -> tuple[Address, ...]:
    out: list[Address] = []
    for value in values or ():
        addr = address(value)
        if addr is not None:
            out.append(addr)
    return tuple(out)


def address_json(addr: Address) -> dict[str, str]:
    return {"address": addr.email, "name": addr.name or addr.email}


def stamps(raw: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(sync key, Salesforce id) stamped on an item, from its expanded extended properties or
    (tasks) its open extension."""
    key: str | None = None
    sf_id: str | None = None
    for prop in raw.get("singleValueExtendedProperties") or ():
        prop_id = _s(prop.get("id")).lower()
        if prop_id == SYNC_KEY_PROP.lower():
            key = _s(prop.get("value")) or None
        elif prop_id == SF_ID_PROP.lower():
            sf_id = _s(prop.get("value")) or None
    for ext in raw.get("extensions") or ():
        name = _s(ext.get("extensionName") or ext.get("id"))
        if name.endswith(TASK_EXTENSION):
            key = _s(ext.get("syncKey")) or key
            sf_id = _s(ext.get("sfId")) or sf_id
    return key, sf_id


def stamp_json(sync_key: str | None, sf_id: str | None) -> list[dict[str, str]]:
    props: list[dict[str, str]] = []
    if sync_key:
        props.append({"id": SYNC_KEY_PROP, "value": sync_key})
    if sf_id:
        props.append({"id": SF_ID_PROP, "value": sf_id})
    return props


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts).replace("\xa0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def body_parts(body: Mapping[str, Any] | None) -> tuple[str, str]:
    """(text, html) of a Graph itemBody."""
    if not body:
        return "", ""
    content = _s(body.get("content"))
    if _s(body.get("contentType")).lower() == "html":
        return html_to_text(content), content
    return content, ""


def text_body(text: str) -> dict[str, str]:
    return {"contentType": "text", "content": text}


# -- messages ---------------------------------------------------------------------------------
MESSAGE_FIELDS = (
    "id,internetMessageId,conversationId,parentFolderId,from,sender,toRecipients,ccRecipients,"
    "subject,receivedDateTime,sentDateTime,categories,hasAttachments,isDraft,changeKey"
)


def message_from_graph(raw: Mapping[str, Any], owner: str = "", folder: str = "") -> MailMessage:
    """`owner` is the mailbox owner's address: a message from the owner is outbound."""
    from_ = address(raw.get("from")) or address(raw.get("sender"))
    text, markup = body_parts(raw.get("body"))
    folder_id = _s(raw.get("parentFolderId")) or folder
    if owner and from_ is not None:
        inbound = from_.email != owner.lower()
    else:
        inbound = folder.lower() != "sentitems"
    key, sf_id = stamps(raw)
    return MailMessage(
        id=_s(raw.get("id")),
        internet_message_id=_s(raw.get("internetMessageId")),
        conversation_id=_s(raw.get("conversationId")),
        folder=folder_id,
        from_=from_,
        to=addresses(raw.get("toRecipients")),
        cc=addresses(raw.get("ccRecipients")),
        subject=_s(raw.get("subject")),
        body_text=text,
        body_html=markup,
        received=parse_instant(raw.get("receivedDateTime")),
        sent=parse_instant(raw.get("sentDateTime")),
        is_inbound=inbound,
        categories=tuple(_s(c) for c in raw.get("categories") or ()),
        has_attachments=bool(raw.get("hasAttachments")),
        is_draft=bool(raw.get("isDraft")),
        version=_s(raw.get("changeKey")),
        sf_key=sf_id or key,
    )


# -- contacts ---------------------------------------------------------------------------------
def contact_from_graph(raw: Mapping[str, Any]) -> Contact:
    addr = raw.get("businessAddress") or {}
    key, sf_id = stamps(raw)
    phones = [p for p in (raw.get("businessPhones") or ()) if p]
    return Contact(
        id=_s(raw.get("id")),
        given_name=_s(raw.get("givenName")),
        surname=_s(raw.get("surname")),
        emails=addresses(raw.get("emailAddresses")),
        business_phone=_s(phones[0]) if phones else "",
        mobile_phone=_s(raw.get("mobilePhone")),
        job_title=_s(raw.get("jobTitle")),
        company=_s(raw.get("companyName")),
        mailing_address=PostalAddress(
            street=_s(addr.get("street")),
            city=_s(addr.get("city")),
            state=_s(addr.get("state")),
            postal_code=_s(addr.get("postalCode")),
            country=_s(addr.get("countryOrRegion")),
        ),
        notes=_s(raw.get("personalNotes")),
        categories=tuple(_s(c) for c in raw.get("categories") or ()),
        version=_s(raw.get("changeKey")),
        folder=_s(raw.get("parentFolderId")),
        sf_id=sf_id,
        sync_key=key,
        modified_at=modified_at(raw),
    )


def contact_to_graph(contact: Contact, *, with_stamps: bool = True) -> dict[str, Any]:
    mailing = contact.mailing_address
    body: dict[str, Any] = {
        "givenName": contact.given_name,
        "surname": contact.surname,
        "displayName": " ".join(p for p in (contact.given_name, contact.surname) if p),
        "emailAddresses": [address_json(a) for a in contact.emails],
        "businessPhones": [contact.business_phone] if contact.business_phone else [],
        "mobilePhone": contact.mobile_phone or None,
        "jobTitle": contact.job_title or None,
        "companyName": contact.company or None,
        "businessAddress": {
            "street": mailing.street,
            "city": mailing.city,
            "state": mailing.state,
            "postalCode": mailing.postal_code,
            "countryOrRegion": mailing.country,
        },
        "personalNotes": contact.notes,
        "categories": list(contact.categories),
    }
    props = stamp_json(contact.sync_key, contact.sf_id) if with_stamps else []
    if props:
        body["singleValueExtendedProperties"] = props
    return body


# -- events -----------------------------------------------------------------------------------
def _enum(cls: Any, value: Any, default: Any) -> Any:
    try:
        return cls(_s(value))
    except ValueError:
        return default


def event_from_graph(raw: Mapping[str, Any]) -> CalendarEvent:
    all_day = bool(raw.get("isAllDay"))
    start_date: date | None
    end_date: date | None
    start_raw = raw.get("start")
    end_raw = raw.get("end")
    if all_day:
        first = dtz_date(start_raw) or date(1970, 1, 1)
        last = dtz_date(end_raw) or first + timedelta(days=1)
        if last <= first:
            last = first + timedelta(days=1)
        start_date, end_date = first, last
        start = datetime.combine(first, time(0), UTC)
        end = datetime.combine(last, time(0), UTC)
    else:
        start_date = end_date = None
        start = parse_dtz(start_raw) or datetime(1970, 1, 1, tzinfo=UTC)
        end = parse_dtz(end_raw) or start
    text, _markup = body_parts(raw.get("body"))
    location = raw.get("location") or {}
    sensitivity = _s(raw.get("sensitivity")) or "normal"
    attendees: list[Attendee] = []
    for att in raw.get("attendees") or ():
        addr = address(att)
        if addr is None:
            continue
        status = att.get("status") or {}
        attendees.append(
            Attendee(
                address=addr,
                type=_enum(AttendeeType, att.get("type"), AttendeeType.REQUIRED),
                response=_enum(ResponseStatus, status.get("response"), ResponseStatus.NONE),
            )
        )
    key, sf_id = stamps(raw)
    original_start = parse_instant(raw.get("originalStart")) if raw.get("originalStart") else None
    return CalendarEvent(
        id=_s(raw.get("id")),
        subject=_s(raw.get("subject")),
        start=start,
        end=end,
        is_all_day=all_day,
        start_date=start_date,
        end_date=end_date,
        time_zone=_s(raw.get("originalStartTimeZone"))
        or _s((start_raw or {}).get("timeZone"))
        or "UTC",
        body_text=text,
        location=_s(location.get("displayName")) if isinstance(location, Mapping) else "",
        attendees=tuple(attendees),
        organizer=address(raw.get("organizer")),
        is_organizer=bool(raw.get("isOrganizer", True)),
        is_private=sensitivity.lower() in ("private", "confidential"),
        sensitivity=sensitivity,
        show_as=_enum(ShowAs, raw.get("showAs"), ShowAs.BUSY),
        categories=tuple(_s(c) for c in raw.get("categories") or ()),
        ical_uid=_s(raw.get("iCalUId")),
        occurrence_type=_enum(OccurrenceType, raw.get("type"), OccurrenceType.SINGLE),
        series_master_id=_s(raw.get("seriesMasterId")) or None,
        original_start=original_start,
        is_cancelled=bool(raw.get("isCancelled")),
        version=_s(raw.get("changeKey")),
        sf_id=sf_id,
        sync_key=key,
        modified_at=modified_at(raw),
    )


def event_to_graph(event: CalendarEvent, *, with_stamps: bool = True) -> dict[str, Any]:
    if event.is_all_day:
        start_date = event.start_date or event.start.date()
        end_date = event.end_date or event.end.date()
        if end_date <= start_date:
            end_date = start_date + timedelta(days=1)
        start, end = date_dtz(start_date), date_dtz(end_date)
    else:
        start, end = to_dtz(event.start), to_dtz(event.end)
    sensitivity = event.sensitivity if event.sensitivity else "normal"
    if event.is_private and sensitivity.lower() not in ("private", "confidential"):
        sensitivity = "private"
    if not event.is_private and sensitivity.lower() in ("private", "confidential"):
        sensitivity = "normal"
    body: dict[str, Any] = {
        "subject": event.subject,
        "body": text_body(event.body_text),
        "start": start,
        "end": end,
        "isAllDay": event.is_all_day,
        "location": {"displayName": event.location},
        "attendees": [
            {
                "emailAddress": address_json(a.address),
                "type": a.type.value,
            }
            for a in event.attendees
        ],
        "sensitivity": sensitivity,
        "showAs": event.show_as.value,
        "categories": list(event.categories),
    }
    props = stamp_json(event.sync_key, event.sf_id) if with_stamps else []
    if props:
        body["singleValueExtendedProperties"] = props
    return body


# -- To Do tasks ------------------------------------------------------------------------------
def task_from_graph(raw: Mapping[str, Any]) -> TodoTask:
    body = raw.get("body") or {}
    text, _markup = body_parts(body)
    key, sf_id = stamps(raw)
    completed_raw = raw.get("completedDateTime")
    return TodoTask(
        id=_s(raw.get("id")),
        title=_s(raw.get("title")),
        body=text,
        due=dtz_date(raw.get("dueDateTime")),
        status=_enum(TaskStatus, raw.get("status"), TaskStatus.NOT_STARTED),
        importance=_enum(Importance, raw.get("importance"), Importance.NORMAL),
        completed=parse_dtz(completed_raw) if isinstance(completed_raw, Mapping) else None,
        version=_s(raw.get("@odata.etag")),
        sf_id=sf_id,
        sync_key=key,
        modified_at=modified_at(raw),
    )


def task_extension_json(sync_key: str | None, sf_id: str | None) -> dict[str, Any]:
    return {
        "@odata.type": "microsoft.graph.openTypeExtension",
        "extensionName": TASK_EXTENSION,
        "syncKey": sync_key or "",
        "sfId": sf_id or "",
    }


def task_to_graph(task: TodoTask, *, with_extension: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": task.title,
        "body": text_body(task.body),
        "status": task.status.value,
        "importance": task.importance.value,
        "dueDateTime": date_dtz(task.due) if task.due else None,
    }
    if task.status is TaskStatus.COMPLETED and task.completed is not None:
        body["completedDateTime"] = to_dtz(task.completed)
    if with_extension and (task.sync_key or task.sf_id):
        body["extensions"] = [task_extension_json(task.sync_key, task.sf_id)]
    return body


def etag_for(version: str) -> str:
    """The If-Match value for a version: Outlook items take W/"changeKey"; etags pass through."""
    if not version:
        return ""
    if version.startswith(('W/"', '"')):
        return version
    return f'W/"{version}"'


def quote_odata(value: str) -> str:
    return value.replace("'", "''")


def key_filter(prop_id: str, keys: Sequence[str]) -> str:
    """An OData filter for items whose extended property `prop_id` has one of `keys`."""
    clauses = [
        f"ep/id eq '{quote_odata(prop_id)}' and ep/value eq '{quote_odata(k)}'" for k in keys
    ]
    inner = clauses[0] if len(clauses) == 1 else " or ".join(f"({c})" for c in clauses)
    return f"singleValueExtendedProperties/Any(ep: {inner})"
