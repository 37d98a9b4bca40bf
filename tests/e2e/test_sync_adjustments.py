"""Issue 5's remaining calendar scope over the real connectors on both sides (HTTPS to the
built-in sandbox): attendee answers flowing mailbox -> Salesforce, calendar items saved as Tasks,
Salesforce Tasks shown in the calendar. Each scenario ends with a session that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_sync_acceptance import World, graph_instant

from scc_desktop.engine_runner import local_zone
from scc_desktop.sandbox import demo_people as cast


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def respond(world: World, event_id: str, email: str, response: str) -> None:
    """The attendee answers (the admin API stands in for their reply reaching Exchange)."""
    reply = world.http.post(
        f"{world.admin}/microsoft/respond",
        json={"event_id": event_id, "email": email, "response": response},
    )
    assert reply.status_code == 200, reply.text


def relations(world: World, event_id: str) -> dict[str, dict[str, Any]]:
    """The event's person relations by the related person's email."""
    people = {
        r["Id"]: r["Email"].lower()
        for kind in ("Contact", "Lead", "User")
        for r in world.sf_records(kind)
        if r.get("Email")
    }
    return {
        people[r["RelationId"]]: r
        for r in world.sf_records("EventRelation")
        if r["EventId"] == event_id and not r.get("IsWhat")
    }


def new_meeting(world: World, subject: str, attendees: list[str], **extra: Any) -> str:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    body = {
        "subject": subject,
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        "categories": ["Salesforce"],
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        **extra,
    }
    return str(world.graph("POST", "/me/events", json=body).json()["id"])


def sf_event_of(world: World, subject: str) -> dict[str, Any]:
    (found,) = [e for e in world.sf_records("Event") if e["Subject"] == subject]
    return found


# --- attendee answers ------------------------------------------------------------------------


def test_attendee_answers_in_the_mailbox_reach_the_event_relations(world: World) -> None:
    contact, colleague = cast.CONTACTS[0].email, cast.COLLEAGUES[0].email
    world.sync()
    meeting = new_meeting(
        world, "Depot rollout review", [contact, colleague, "stranger@nowhere.example"]
    )
    world.sync()
    event = sf_event_of(world, "Depot rollout review")
    before = relations(world, event["Id"])
    assert set(before) == {contact, colleague}
    assert {r["Status"] for r in before.values()} == {"New"}  # nobody has answered yet
    world.quiet()

    respond(world, meeting, contact, "accepted")
    respond(world, meeting, colleague, "declined")
    respond(world, meeting, "stranger@nowhere.example", "accepted")  # unknown to Salesforce
    outcome = world.sync()
    assert outcome.summary is not None
    assert outcome.summary["counts"]["event"]["salesforce"]["updated"] == 1, outcome.summary
    after = relations(world, event["Id"])
    assert after[contact]["Status"] == "Accepted" and after[contact]["RespondedDate"]
    assert after[colleague]["Status"] == "Declined"
    assert set(after) == {contact, colleague}  # still only the people Salesforce knows
    world.quiet()

    # Salesforce has no tentative status: it stays New, with a note in the Response (Comment)
    respond(world, meeting, contact, "tentativelyAccepted")
    world.sync()
    assert relations(world, event["Id"])[contact]["Status"] == "New"
    assert relations(world, event["Id"])[contact]["Response"] == "Tentatively accepted"
    world.quiet()
    respond(world, meeting, contact, "accepted")  # firm again: the note goes
    world.sync()
    assert relations(world, event["Id"])[contact]["Status"] == "Accepted"
    assert not relations(world, event["Id"])[contact].get("Response")
    world.quiet()


# --- calendar items saved as Tasks -----------------------------------------------------------


def graph_event(world: World, event_id: str) -> dict[str, Any]:
    return dict(world.graph("GET", f"/me/events/{event_id}").json())


def todo_titles(world: World) -> set[str]:
    (listed,) = [
        x for x in world.graph_all("/me/todo/lists") if x["displayName"] == "Salesforce Tasks"
    ]
    return {t["title"] for t in world.graph_all(f"/me/todo/lists/{listed['id']}/tasks")}


def sf_tasks(world: World, subject: str) -> list[dict[str, Any]]:
    return [t for t in world.sf_records("Task") if t["Subject"] == subject]


def test_calendar_items_saved_as_tasks_sync_both_ways_and_flipping_duplicates_nothing(
    world: World,
) -> None:
    zone = local_zone()
    contact = cast.CONTACTS[0]
    world.sync()
    before = new_meeting(world, "Saved as an Event", [])
    world.sync()
    event = sf_event_of(world, "Saved as an Event")

    world.set("calendar_items_as_tasks", True)
    meeting = new_meeting(
        world,
        "Fleet pricing call",
        [contact.email],
        location={"displayName": "Room 4"},
        body={"contentType": "text", "content": "Bring the price list."},
    )
    outcome = world.sync()
    assert outcome.summary is not None
    assert outcome.summary["counts"]["event"]["salesforce"]["created"] == 1, outcome.summary
    (task,) = sf_tasks(world, "Fleet pricing call")
    start = graph_instant(graph_event(world, meeting)["start"])
    assert task["ActivityDate"] == start.astimezone(zone).date().isoformat()
    assert task["SCC_Sync_Key__c"].startswith("cal-") and task["Type"] == "Meeting"
    assert task["Status"] == "Not Started"  # it lies ahead
    assert task["Description"].startswith("Bring the price list.")
    assert f"When: {start.astimezone(zone):%Y-%m-%d %H:%M} – " in task["Description"]
    assert "Where: Room 4" in task["Description"]
    jane = next(c for c in world.sf_records("Contact") if c["Email"] == contact.email)
    assert task["WhoId"] == jane["Id"]
    # nothing else: the existing Event stays as it was, no Event for the new item, and the
    # tasks kind leaves the Task out of the To Do list
    assert sf_event_of(world, "Saved as an Event")["Id"] == event["Id"]
    assert not [e for e in world.sf_records("Event") if e["Subject"] == "Fleet pricing call"]
    world.quiet()
    assert "Fleet pricing call" not in todo_titles(world)

    # moved and re-placed in the mailbox: the Task follows
    later = start + timedelta(days=1, hours=2)
    world.graph(
        "PATCH",
        f"/me/events/{meeting}",
        json={
            "start": {"dateTime": later.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (later + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "location": {"displayName": "Depot 2"},
        },
    )
    world.sync()
    (task,) = sf_tasks(world, "Fleet pricing call")
    assert task["ActivityDate"] == later.astimezone(zone).date().isoformat()
    assert "Where: Depot 2" in task["Description"]
    assert f"When: {later.astimezone(zone):%Y-%m-%d %H:%M} – " in task["Description"]
    world.quiet()

    # moved and renamed in Salesforce: the item moves to that day at the same time
    moved_day = later.astimezone(zone).date() + timedelta(days=2)
    world.sf_write(
        {
            "id": task["Id"],
            "fields": {"ActivityDate": moved_day.isoformat(), "Subject": "Fleet pricing (v2)"},
        }
    )
    world.sync()
    item = graph_event(world, meeting)
    assert item["subject"] == "Fleet pricing (v2)"
    assert graph_instant(item["start"]) == later + timedelta(days=2)
    assert graph_instant(item["end"]) == later + timedelta(days=2, hours=1)
    assert item["location"]["displayName"] == "Depot 2"
    world.quiet()

    # switched off again: new items are Events, the Task link keeps syncing as a Task
    world.set("calendar_items_as_tasks", False)
    new_meeting(world, "After the switch", [])
    world.graph("PATCH", f"/me/events/{meeting}", json={"subject": "Fleet pricing (v3)"})
    outcome = world.sync()
    assert outcome.summary is not None
    counts = outcome.summary["counts"]["event"]["salesforce"]
    assert counts == {"created": 1, "updated": 1, "deleted": 0}, counts
    assert sf_event_of(world, "After the switch")
    assert [t["Id"] for t in sf_tasks(world, "Fleet pricing (v3)")] == [task["Id"]]
    assert not [e for e in world.sf_records("Event") if "Fleet pricing" in e["Subject"]]
    assert graph_event(world, before)["subject"] == "Saved as an Event"
    world.quiet()


# --- Salesforce Tasks shown in the calendar ---------------------------------------------------


def shown_items(world: World) -> dict[str, dict[str, Any]]:
    """The calendar items in the "Salesforce Tasks" category, by subject."""
    return {
        e["subject"]: e
        for e in world.dump("events")
        if "Salesforce Tasks" in (e.get("categories") or [])
    }


def test_salesforce_tasks_show_in_the_calendar_read_only_and_go_away(world: World) -> None:
    world.set("appointments_autoshare", True)  # would sweep any appointment into Events
    world.set("show_sf_tasks_in_calendar", True)
    alex = world.alex_id()
    due = (datetime.now(UTC) + timedelta(days=6)).date()
    task_id = world.sf_write(
        {
            "type": "Task",
            "fields": {
                "Subject": "Call Jane about renewal",
                "ActivityDate": due.isoformat(),
                "Status": "Not Started",
                "OwnerId": alex,
                "Description": "Renewal terms",
            },
        }
    )
    other_id = world.sf_write(
        {
            "type": "Task",
            "fields": {
                "Subject": "Send the depot quote",
                "ActivityDate": due.isoformat(),
                "Status": "Not Started",
                "OwnerId": alex,
            },
        }
    )
    world.sync()
    shown = shown_items(world)
    item = shown["Call Jane about renewal"]
    assert item["isAllDay"] is True and item["showAs"] == "free"
    assert item["start"]["dateTime"].startswith(due.isoformat())
    assert "Renewal terms" in item["body"]["content"]
    assert "Send the depot quote" in shown
    categories = {c["displayName"] for c in world.dump("categories")}
    assert "Salesforce Tasks" in categories
    # not swept into Events by the appointments switch
    assert not [e for e in world.sf_records("Event") if e["Subject"] == "Call Jane about renewal"]
    world.quiet()

    # edited in the mailbox: put back, nothing written to Salesforce, nothing to ask about
    world.graph("PATCH", f"/me/events/{item['id']}", json={"subject": "Mine now"})
    outcome = world.sync()
    assert outcome.summary is not None
    assert outcome.summary["counts"]["task_calendar"]["salesforce"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
    }
    assert graph_event(world, item["id"])["subject"] == "Call Jane about renewal"
    assert world.sf_record("Task", task_id)["Subject"] == "Call Jane about renewal"
    assert world.state.open_issues("task_calendar") == []
    # deleted in the mailbox: it comes back
    world.graph("DELETE", f"/me/events/{item['id']}")
    world.sync()
    assert "Call Jane about renewal" in shown_items(world)
    world.quiet()

    # changed in Salesforce: followed; closed there: taken away
    moved = due + timedelta(days=1)
    world.sf_write({"id": task_id, "fields": {"ActivityDate": moved.isoformat()}})
    world.sync()
    assert shown_items(world)["Call Jane about renewal"]["start"]["dateTime"].startswith(
        moved.isoformat()
    )
    world.sf_write({"id": task_id, "fields": {"Status": "Completed"}})
    world.sync()
    assert "Call Jane about renewal" not in shown_items(world)
    assert "Send the depot quote" in shown_items(world)
    world.quiet()

    # the setting off: every shown Task leaves the calendar, Salesforce keeps them all
    world.set("show_sf_tasks_in_calendar", False)
    world.sync()
    assert shown_items(world) == {}
    assert world.sf_record("Task", other_id)["Subject"] == "Send the depot quote"
    assert world.state.links("task_calendar") == []
    world.quiet()
