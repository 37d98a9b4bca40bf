"""Seeds for the Microsoft emulator: an empty mailbox, the demo week, and a large mailbox.

The demo uses the shared cast (demo_people) so mail participants match Salesforce Contacts and
Leads. The large seed writes rows in bulk with generated bodies so 20,000 messages take seconds.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scc_desktop.sandbox.demo_people import (
    COLLEAGUES,
    CONTACTS,
    DEMO_USER,
    LEADS,
    STRANGERS,
    Person,
)
from scc_desktop.sandbox.microsoft import calendar as cal
from scc_desktop.sandbox.microsoft.db import new_id
from scc_desktop.sandbox.microsoft.graph import WELL_KNOWN, message_data

if TYPE_CHECKING:
    from scc_desktop.sandbox.microsoft.service import MicrosoftService

TZ = "Pacific Standard Time"  # the demo user's mailbox zone (Windows name, as Outlook stores it)
DEFAULT_CATEGORIES = (
    ("Red category", "preset0"),
    ("Orange category", "preset1"),
    ("Yellow category", "preset3"),
    ("Green category", "preset4"),
    ("Blue category", "preset7"),
    ("Purple category", "preset8"),
)
# A 1x1 PNG for the inline image.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
        "0000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
    )
).decode()


def load(service: MicrosoftService, seed: str, params: Mapping[str, Any]) -> None:
    empty(service)
    if seed == "demo":
        demo(service)
    elif seed == "large":
        large(service, params)
    elif seed != "empty":
        raise ValueError(f"unknown seed {seed!r}")


def empty(service: MicrosoftService) -> None:
    """The folders, calendar, contact folder, To Do list and categories of a new mailbox."""
    store = service.store
    root = new_id("AAMkAGR")
    rows: list[tuple[str, str, str, str, dict[str, Any]]] = [
        (
            root,
            "mailFolder",
            "",
            "",
            {"displayName": WELL_KNOWN["msgfolderroot"], "_wellKnown": "msgfolderroot"},
        )
    ]
    store.set_meta("wk:msgfolderroot", root)
    for name, display in WELL_KNOWN.items():
        if name == "msgfolderroot":
            continue
        fid = new_id("AAMkAGF")
        store.set_meta(f"wk:{name}", fid)
        rows.append(
            (fid, "mailFolder", root, display.lower(), {"displayName": display, "_wellKnown": name})
        )
    for kind, key, display, extra in (
        ("contactFolder", "contacts", "Contacts", {}),
        (
            "calendar",
            "calendar",
            "Calendar",
            {"color": "auto", "isDefaultCalendar": True, "canEdit": True},
        ),
        ("todoList", "tasks", "Tasks", {"wellknownListName": "defaultList"}),
    ):
        iid = new_id("AAMkAGW")
        store.set_meta(f"wk:{key}", iid)
        rows.append(
            (
                iid,
                kind,
                "todo" if kind == "todoList" else "",
                display.lower(),
                {"displayName": display, **extra},
            )
        )
    for name, color in DEFAULT_CATEGORIES:
        rows.append(
            (
                str(uuid.uuid4()),
                "category",
                "outlook",
                name.lower(),
                {"displayName": name, "color": color},
            )
        )
    store.bulk_insert(rows)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _addr(p: Person) -> str:
    return f"{p.name} <{p.email}>"


def _local(day: dt.date, hour: int, minute: int = 0) -> dict[str, str]:
    return {"dateTime": f"{day.isoformat()}T{hour:02d}:{minute:02d}:00", "timeZone": TZ}


def demo(service: MicrosoftService) -> None:
    """A believable week: a thread with Jane Cooper, internal, free-mail, lead, sent mail."""
    graph = service.graph
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    jane, tom, maria, wei, olivia, lars = CONTACTS
    ravi = LEADS[0]
    chris, nina = STRANGERS
    priya, sam = COLLEAGUES
    inbox, sent = graph.folder("inbox"), graph.folder("sentitems")

    def mail(  # noqa: PLR0917
        folder: str,
        ago_h: float,
        sender: Person,
        to: list[Person],
        subject: str,
        text: str,
        **extra: Any,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": _addr(sender),
            "toRecipients": [_addr(p) for p in to],
            "ccRecipients": [_addr(p) for p in extra.pop("cc", [])],
            "subject": subject,
            "body": {"contentType": "html", "content": f"<html><body><p>{text}</p></body></html>"},
            "receivedDateTime": _iso(now - dt.timedelta(hours=ago_h)),
            "isRead": folder == "sent" or ago_h > 30,
            **extra,
        }
        item = graph.new_message(sent if folder == "sent" else inbox, body, draft=False)
        return item.data

    first = mail(
        "in",
        6 * 24 + 3,
        jane,
        [DEMO_USER],
        "Fleet renewal - pricing questions",
        "Hi Alex,<br>Before we sign the renewal, could you walk us through the per-vehicle pricing "
        "for the 120 units? Lars will join from procurement.<br>Thanks, Jane",
        cc=[lars],
    )
    conv = first["conversationId"]
    reply = mail(
        "sent",
        5 * 24 + 20,
        DEMO_USER,
        [jane],
        "RE: Fleet renewal - pricing questions",
        "Hi Jane,<br>Happy to. Per-vehicle pricing drops to $950 above 100 units; I will send the "
        "revised quote on Thursday.<br>Best, Alex",
        cc=[lars],
        conversationId=conv,
        internetMessageHeaders=[{"name": "In-Reply-To", "value": first["internetMessageId"]}],
    )
    mail(
        "in",
        4 * 24 + 2,
        jane,
        [DEMO_USER],
        "RE: Fleet renewal - pricing questions",
        "Thanks Alex, the attached spec lists the vehicle mix. Can we meet next week?<br>Jane",
        cc=[lars],
        conversationId=conv,
        internetMessageHeaders=[{"name": "In-Reply-To", "value": reply["internetMessageId"]}],
        attachments=[
            {"name": "Fleet-spec-2026.pdf", "contentType": "application/pdf", "size": 48_213},
            {
                "name": "acme-logo.png",
                "contentType": "image/png",
                "contentBytes": PIXEL,
                "isInline": True,
                "contentId": "acme-logo",
            },
            {
                "@odata.type": "#microsoft.graph.referenceAttachment",
                "name": "Vehicle mix.xlsx",
                "sourceUrl": "https://acme.sharepoint.example/sites/fleet/Vehicle%20mix.xlsx",
            },
        ],
    )
    mail(
        "in",
        3 * 24 + 5,
        priya,
        [DEMO_USER],
        "Notes from the Initech call",
        "Alex, notes from today's call with Wei: they want SSO and a "
        "security review before Q1.<br>Priya",
    )
    mail(
        "in",
        3 * 24,
        chris,
        [DEMO_USER],
        "Quick question about your product",
        "Hey, saw your talk last week. Do you offer a free tier for small teams? Chris",
    )
    mail(
        "in",
        2 * 24 + 4,
        ravi,
        [DEMO_USER],
        "Intro - Hooli IT modernization",
        "Hi Alex, Emma Wilson suggested I reach out. We are "
        "modernizing our fleet telemetry and would like a demo.<br>Ravi Kumar",
    )
    mail(
        "sent",
        2 * 24,
        DEMO_USER,
        [wei],
        "Initech security review follow-up",
        "Hi Wei, attached is our security whitepaper; Priya can walk "
        "your team through SSO setup.<br>Alex",
        cc=[priya],
        attachments=[
            {"name": "Security-whitepaper.pdf", "contentType": "application/pdf", "size": 120_000}
        ],
    )
    mail(
        "in",
        26,
        maria,
        [DEMO_USER],
        "Globex purchase order",
        "Alex, PO 4471 is approved; Tom will send the paperwork.<br>Maria",
        cc=[tom],
    )
    mail(
        "in",
        20,
        nina,
        [DEMO_USER],
        "VendorCo: your monthly statement",
        "Your statement for this month is ready.",
    )
    mail(
        "in",
        5,
        olivia,
        [DEMO_USER],
        "Umbrella security suite - next steps",
        "Hi Alex, we are ready to start the qualification workshop. "
        "Does next Tuesday work?<br>Olivia",
        categories=["Salesforce"],
    )
    mail(
        "in",
        1,
        sam,
        [DEMO_USER],
        "Pipeline review moved",
        "Pipeline review stays on Mondays; please update the forecast.<br>Sam",
    )

    # Calendar: the next two weeks, in the user's zone.
    today = now.astimezone(dt.UTC).date()

    def event(
        day_offset: int,
        hour: int,
        minutes: int,
        subject: str,
        attendees: list[Person],
        **extra: Any,
    ) -> None:
        day = today + dt.timedelta(days=day_offset)
        end = dt.datetime.combine(day, dt.time(hour)) + dt.timedelta(minutes=minutes)
        body: dict[str, Any] = {
            "subject": subject,
            "body": {"contentType": "html", "content": f"<p>{subject}</p>"},
            "start": _local(day, hour),
            "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": TZ},
            "attendees": [
                {"emailAddress": {"name": p.name, "address": p.email}, "type": "required"}
                for p in attendees
            ],
            "location": {
                "displayName": extra.pop("where", "Microsoft Teams Meeting" if attendees else "")
            },
            **extra,
        }
        data = graph.event_data(body)
        service.store.insert(
            "event",
            graph.wk("calendar"),
            data,
            sort=cal.to_utc(data["start"]).isoformat(),
            item_id=new_id("AAMkAGE"),
        )

    event(1, 10, 60, "Acme fleet renewal - pricing walkthrough", [jane, lars])
    event(3, 14, 30, "Globex PO kickoff", [maria, priya])
    event(2, 8, 45, "Prep: Acme pricing", [])
    event(5, 16, 60, "Dentist", [], sensitivity="private", showAs="oof", where="Downtown Dental")
    event(6, 11, 30, "Hooli intro call", [ravi], categories=["Salesforce"])
    monday = today - dt.timedelta(days=today.weekday())
    event(
        (monday - today).days,
        9,
        30,
        "Pipeline review",
        [sam, priya],
        recurrence={
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["monday"],
                "firstDayOfWeek": "sunday",
            },
            "range": {"type": "noEnd", "startDate": monday.isoformat(), "recurrenceTimeZone": TZ},
        },
    )
    kickoff = today + dt.timedelta(days=8)
    service.store.insert(
        "event",
        graph.wk("calendar"),
        graph.event_data(
            {
                "subject": "Sales kickoff",
                "isAllDay": True,
                "showAs": "free",
                "start": {"dateTime": f"{kickoff.isoformat()}T00:00:00", "timeZone": TZ},
                "end": {
                    "dateTime": f"{(kickoff + dt.timedelta(days=1)).isoformat()}T00:00:00",
                    "timeZone": TZ,
                },
            }
        ),
        sort=kickoff.isoformat(),
        item_id=new_id("AAMkAGE"),
    )

    # To Do
    tasks = graph.wk("tasks")
    for title, status, due in (
        ("Send Acme revised quote", "notStarted", 2),
        ("Follow up with Ravi Kumar (Hooli)", "inProgress", 4),
        ("Book travel to Chicago for Globex", "completed", -1),
    ):
        data = graph.task_data(
            {
                "title": title,
                "status": status,
                "importance": "high" if due == 2 else "normal",
                "dueDateTime": {
                    "dateTime": f"{(today + dt.timedelta(days=due)).isoformat()}T00:00:00.0000000",
                    "timeZone": "UTC",
                },
            }
        )
        service.store.insert(
            "task",
            tasks,
            data,
            sort=data["createdDateTime"],
            item_id=new_id("AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"),
        )

    # Contacts in the default folder
    folder = graph.wk("contacts")
    for person, cats in ((jane, ["Salesforce"]), (wei, []), (chris, [])):
        data = graph.contact_data(
            {
                "givenName": person.first,
                "surname": person.last,
                "emailAddresses": [{"address": person.email, "name": person.name}],
                "companyName": person.company,
                "jobTitle": person.title,
                "businessPhones": [person.phone] if person.phone else [],
                "categories": cats,
            }
        )
        service.store.insert(
            "contact", folder, data, sort=data["displayName"].lower(), item_id=new_id("AAMkAGD")
        )


def large(service: MicrosoftService, params: Mapping[str, Any]) -> None:
    """Many messages over `days` days (Inbox and Sent Items) and many contacts, in bulk."""
    messages = int(params.get("messages", 20_000))
    days = int(params.get("days", 60))
    contacts = int(params.get("contacts", 5_000))
    rng = random.Random(4242)
    graph = service.graph
    inbox, sent = graph.folder("inbox").id, graph.folder("sentitems").id
    people = [*CONTACTS, *LEADS, *STRANGERS, *COLLEAGUES]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    words = (
        "renewal",
        "pricing",
        "forecast",
        "contract",
        "demo",
        "onboarding",
        "invoice",
        "roadmap",
        "security",
        "review",
        "meeting",
        "proposal",
        "budget",
        "timeline",
        "pilot",
        "rollout",
    )
    rows: list[tuple[str, str, str, str, dict[str, Any]]] = []
    span = max(1, days) * 86400
    for i in range(messages):
        when = _iso(now - dt.timedelta(seconds=rng.randrange(span)))
        other = (
            people[i % len(people)]
            if i % 3 == 0
            else Person(
                f"Person{i % 997}", f"Customer{i % 53}", f"person{i % 997}@customer{i % 53}.example"
            )
        )
        outgoing = i % 5 == 0
        subject = " ".join(rng.choice(words) for _ in range(4)).capitalize()
        data = message_data(
            {
                "from": _addr(DEMO_USER if outgoing else other),
                "toRecipients": [_addr(other if outgoing else DEMO_USER)],
                "subject": subject,
                "body": {
                    "contentType": "text",
                    "content": f"{subject}. " + " ".join(rng.choice(words) for _ in range(30)),
                },
                "receivedDateTime": when,
                "isRead": True,
            },
            draft=False,
        )
        rows.append((new_id(), "message", sent if outgoing else inbox, when, data))
    folder = graph.wk("contacts")
    for i in range(contacts):
        first, last = f"Given{i}", f"Family{i % 211}"
        data = {
            "createdDateTime": _iso(now),
            "lastModifiedDateTime": _iso(now),
            "categories": [],
            "givenName": first,
            "surname": last,
            "displayName": f"{first} {last}",
            "emailAddresses": [
                {
                    "address": f"{first.lower()}.{last.lower()}@customer{i % 53}.example",
                    "name": f"{first} {last}",
                }
            ],
            "businessPhones": [],
            "homePhones": [],
            "companyName": f"Customer {i % 53}",
        }
        rows.append((new_id("AAMkAGD"), "contact", folder, data["displayName"].lower(), data))
    service.store.bulk_insert(rows)
