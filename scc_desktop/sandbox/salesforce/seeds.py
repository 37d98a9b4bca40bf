"""Seeds: 'empty' (the org and its users), 'demo' (the shared demo cast), 'large' (demo + bulk).

Records go through the same `Org.create` as API writes, so seeded data obeys the org's rules;
one commit at the end keeps 'large' to a few seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scc_desktop.sandbox import demo_people as cast
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.values import fmt_dt

LARGE_DEFAULTS = {"contacts": 10_000, "events": 3_000, "tasks": 2_000}
_FIRST_NAMES = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Juno")


def load(org: Org, seed: str, params: Mapping[str, Any]) -> None:
    store = org.store
    with store.lock:
        store.wipe()
        org.reload()
        users = _users(org)
        if seed in ("demo", "large"):
            _demo(org, users)
        if seed == "large":
            _large(org, users, {**LARGE_DEFAULTS, **dict(params)})
        store.commit()
        store.kv_set("seeded", seed)


def _users(org: Org) -> dict[str, str]:
    """Users are not createable through the API, so they are put in place directly."""
    store = org.store
    now = fmt_dt(org.stamp())
    out: dict[str, str] = {}
    for person in (cast.DEMO_USER, *cast.COLLEAGUES):
        rid = store.next_id("User")
        out[person.email] = rid
        store.put(
            {
                "attributes": {"type": "User"},
                "Id": rid,
                "IsDeleted": False,
                "CreatedDate": now,
                "LastModifiedDate": now,
                "SystemModstamp": now,
                "CreatedById": rid,
                "LastModifiedById": rid,
                "Username": person.email,
                "Email": person.email,
                "FirstName": person.first,
                "LastName": person.last,
                "Name": person.name,
                "Alias": (person.first[0] + person.last[:4]).lower(),
                "IsActive": True,
                "Title": person.title,
                "Phone": person.phone,
                "CompanyName": person.company,
                "TimeZoneSidKey": "GMT",
            }
        )
    store.kv_set("demo_user_id", out[cast.DEMO_USER.email])
    return out


def _at(days: int, hour: int, minute: int = 0) -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return fmt_dt(today + timedelta(days=days, hours=hour, minutes=minute))


def _day(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def _demo(org: Org, users: dict[str, str]) -> None:
    me = users[cast.DEMO_USER.email]
    sam = users[cast.COLLEAGUES[1].email]
    accounts: dict[str, str] = {}
    for acc in cast.ACCOUNTS:
        accounts[acc.name] = org.create(
            "Account",
            {
                "Name": acc.name,
                "Industry": acc.industry,
                "Phone": acc.phone,
                "Website": f"https://www.{acc.domain}",
                "Type": "Customer - Direct",
            },
            me,
        )
    contacts: dict[str, str] = {}
    for i, person in enumerate(cast.CONTACTS):
        owner = me if i < cast.DEMO_USER_CONTACT_COUNT else sam
        contacts[person.email] = org.create(
            "Contact",
            {
                "FirstName": person.first,
                "LastName": person.last,
                "Email": person.email,
                "Title": person.title,
                "Phone": person.phone,
                "AccountId": accounts.get(person.company),
                "OwnerId": owner,
            },
            me,
        )
    for person in cast.LEADS:
        org.create(
            "Lead",
            {
                "FirstName": person.first,
                "LastName": person.last,
                "Email": person.email,
                "Title": person.title,
                "Phone": person.phone,
                "Company": person.company,
                "LeadSource": "Web",
            },
            me,
        )
    opportunities: dict[str, str] = {}
    for opp in cast.OPPORTUNITIES:
        owner = users[opp.owner]
        rid = org.create(
            "Opportunity",
            {
                "Name": opp.name,
                "AccountId": accounts[opp.account],
                "StageName": opp.stage,
                "Amount": opp.amount,
                "CloseDate": _day(opp.close_in_days),
                "OwnerId": owner,
            },
            owner,
        )
        opportunities[opp.name] = rid
        rec = org.store.get(rid)
        assert rec is not None
        created = _at(-opp.created_days_ago, 9)
        org.store.put({**rec, "CreatedDate": created})
        for j, person in enumerate(p for p in cast.CONTACTS if p.company == opp.account):
            org.create(
                "OpportunityContactRole",
                {
                    "OpportunityId": rid,
                    "ContactId": contacts[person.email],
                    "Role": "Decision Maker" if j == 0 else "Influencer",
                    "IsPrimary": j == 0,
                },
                owner,
            )
    c = [contacts[p.email] for p in cast.CONTACTS]
    events: list[tuple[str, str, str, int, str | None, str | None, str]] = [
        ("Quarterly review with Acme", _at(2, 15), "", 60, c[0], accounts["Acme Corporation"], me),
        ("Globex pricing call", _at(-3, 16), "", 30, c[1], None, me),
        ("Initech onboarding workshop", _at(9, 13), "Austin office", 120, c[3], None, me),
        ("Umbrella security review", _at(35, 10), "Video call", 60, c[4], None, me),
        ("Pipeline review", _at(-10, 9), "Room 4", 45, None, None, me),
        ("Globex expansion kickoff", _at(4, 14), "", 60, c[2], None, sam),
    ]
    for subject, start, location, minutes, who, what, owner in events:
        org.create(
            "Event",
            {
                "Subject": subject,
                "StartDateTime": start,
                "DurationInMinutes": minutes,
                "Location": location or None,
                "WhoId": who,
                "WhatId": what,
                "OwnerId": owner,
            },
            owner,
        )
    org.create(
        "Event",
        {"Subject": "Northwind Summit", "IsAllDayEvent": True, "ActivityDate": _day(20)},
        me,
    )
    fleet = opportunities["Acme - Fleet Renewal"]
    tasks: list[tuple[str, int, str, str, str | None, str | None, str, str]] = [
        ("Send proposal to Acme", 3, "Not Started", "High", c[0], fleet, me, "Task"),
        ("Follow up with Maria Garcia", -2, "In Progress", "Normal", c[2], None, me, "Task"),
        ("Prepare security questionnaire", 14, "Not Started", "Normal", c[4], None, me, "Task"),
        ("Call Wei Chen about the pilot", -5, "Completed", "Normal", c[3], None, me, "Call"),
        ("Email: Pricing for 2026", -1, "Completed", "Normal", c[1], None, me, "Email"),
        ("Review Globex contract", 6, "Not Started", "Normal", c[2], None, sam, "Task"),
    ]
    for subject, due, status, priority, who, what, owner, subtype in tasks:
        org.create(
            "Task",
            {
                "Subject": subject,
                "ActivityDate": _day(due),
                "Status": status,
                "Priority": priority,
                "WhoId": who,
                "WhatId": what,
                "OwnerId": owner,
                "TaskSubtype": subtype,
            },
            owner,
        )


def _large(org: Org, users: dict[str, str], params: Mapping[str, Any]) -> None:
    me = users[cast.DEMO_USER.email]
    accounts = [r["Id"] for r in org.store.records("Account")]
    for i in range(int(params["contacts"])):
        org.create(
            "Contact",
            {
                "FirstName": _FIRST_NAMES[i % len(_FIRST_NAMES)],
                "LastName": f"Sample{i:05d}",
                "Email": f"contact{i:05d}@bulk{i % 40:02d}.example",
                "Title": "Buyer",
                "AccountId": accounts[i % len(accounts)] if accounts else None,
            },
            me,
        )
    span_days = 74  # [-14d, +60d)
    for i in range(int(params["events"])):
        org.create(
            "Event",
            {
                "Subject": f"Bulk meeting {i:05d}",
                "StartDateTime": _at(-14 + i % span_days, 8 + i % 9, 30 * (i % 2)),
                "DurationInMinutes": 30,
            },
            me,
        )
    statuses = ("Not Started", "In Progress", "Completed")
    for i in range(int(params["tasks"])):
        org.create(
            "Task",
            {
                "Subject": f"Bulk task {i:05d}",
                "ActivityDate": _day(-14 + i % span_days),
                "Status": statuses[i % len(statuses)],
            },
            me,
        )
