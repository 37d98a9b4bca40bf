"""The other sync adjustments and attendee answers, without a server: the Task <-> calendar item
mapping, the answers' mapping, the calendar category's exclusion, and the engine's mirror rules
for Salesforce Tasks shown in the calendar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sync_harness import Harness

from scc_desktop.mailbox.types import Address, Attendee, CalendarEvent, ResponseStatus, ShowAs
from scc_desktop.sync import salesforce_mapping as sfm
from scc_desktop.sync.fields import normalize
from scc_desktop.sync.mailbox_mapping import (
    SALESFORCE_TASKS_CATEGORY,
    EventScope,
    event_fields,
    event_in_scope,
    task_calendar_event,
    task_calendar_fields,
)
from scc_desktop.sync.planner import Direction, Policy
from scc_desktop.sync.salesforce_side import _join_calendar_cursor, _split_calendar_cursor

BERLIN = ZoneInfo("Europe/Berlin")


def _timed(start: str, end: str, **extra: object) -> dict[str, object]:
    return normalize(
        "event",
        {"subject": "Review", "start": start, "end": end, "is_all_day": False, **extra},
    )


# --- calendar items as Tasks: the mapping ---------------------------------------------------


def test_a_timed_item_becomes_a_task_dated_in_the_users_zone_and_reads_back_exactly() -> None:
    # 23:30 UTC is already the next day in Berlin
    fields = _timed(
        "2026-03-09T23:30:00Z", "2026-03-10T00:45:00Z", location="Room 4", description="Agenda"
    )
    now = datetime(2026, 3, 1, tzinfo=UTC)
    row = sfm.calendar_task_to_sf(fields, fields.keys(), BERLIN, now)
    assert row["ActivityDate"] == "2026-03-10"
    assert row["Status"] == "Not Started" and row["Type"] == "Meeting"
    assert row["Description"] == (
        "Agenda\n\n── Calendar item ──\n"
        "When: 2026-03-10 00:30 – 01:45 (Europe/Berlin)\nWhere: Room 4"
    )
    back = sfm.calendar_task_from_sf({**row, "Subject": "Review"}, BERLIN)
    for name in ("subject", "start", "end", "is_all_day", "location", "description"):
        assert back[name] == fields[name], name


def test_a_task_moved_in_salesforce_moves_the_item_at_the_same_wall_time_across_dst() -> None:
    # 09:00 Berlin before the switch (UTC+1), moved to a day after it (UTC+2)
    fields = _timed("2026-03-27T08:00:00Z", "2026-03-27T09:30:00Z")
    row = sfm.calendar_task_to_sf(fields, fields.keys(), BERLIN, datetime(2026, 3, 1, tzinfo=UTC))
    back = sfm.calendar_task_from_sf({**row, "ActivityDate": "2026-03-30"}, BERLIN)
    assert back["start"] == "2026-03-30T07:00:00Z" and back["end"] == "2026-03-30T08:30:00Z"


def test_an_all_day_item_keeps_its_days_and_a_past_one_is_completed() -> None:
    fields = normalize(
        "event", {"subject": "Fair", "start": "2026-02-02", "end": "2026-02-05", "is_all_day": True}
    )
    row = sfm.calendar_task_to_sf(fields, fields.keys(), BERLIN, datetime(2026, 3, 1, tzinfo=UTC))
    assert row["ActivityDate"] == "2026-02-02" and row["Status"] == "Completed"
    assert "When: 2026-02-02 – 2026-02-04 (all day)" in row["Description"]
    back = sfm.calendar_task_from_sf({**row, "ActivityDate": "2026-02-09"}, BERLIN)
    assert (back["start"], back["end"], back["is_all_day"]) == ("2026-02-09", "2026-02-12", True)


def test_a_task_without_its_calendar_lines_is_an_all_day_item_on_its_date() -> None:
    back = sfm.calendar_task_from_sf(
        {"Subject": "Bare", "ActivityDate": "2026-04-01", "Description": "just text"}, BERLIN
    )
    assert (back["start"], back["end"], back["is_all_day"]) == ("2026-04-01", "2026-04-02", True)
    assert back["description"] == "just text" and back["location"] is None


def test_only_the_fields_a_change_touches_are_written() -> None:
    fields = _timed("2026-03-09T08:00:00Z", "2026-03-09T09:00:00Z")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert sfm.calendar_task_to_sf(fields, {"subject"}, BERLIN, now) == {"Subject": "Review"}
    assert "Status" in sfm.calendar_task_to_sf(fields, {"location"}, BERLIN, now)


def test_the_calendar_cursor_keeps_an_events_only_cursor_readable() -> None:
    assert _split_calendar_cursor(None) == (None, None)
    assert _split_calendar_cursor('{"scope":"x","feed":"y"}') == ('{"scope":"x","feed":"y"}', None)
    joined = _join_calendar_cursor("E", "T")
    assert _split_calendar_cursor(joined) == ("E", "T")
    assert _join_calendar_cursor("E", None) == "E"  # until Tasks join, the Events' own token


# --- attendee answers ------------------------------------------------------------------------


def _meeting(
    *attendees: tuple[str, ResponseStatus], categories: tuple[str, ...] = ()
) -> CalendarEvent:
    start = datetime(2026, 3, 9, 8, tzinfo=UTC)
    return CalendarEvent(
        id="e1",
        subject="Sync",
        start=start,
        end=start + timedelta(hours=1),
        attendees=tuple(Attendee(Address(email=a), response=r) for a, r in attendees),
        categories=categories,
    )


def test_answers_are_read_from_the_attendees_and_mapped_to_event_relation_statuses() -> None:
    event = _meeting(
        ("A@x.io", ResponseStatus.ACCEPTED),
        ("b@x.io", ResponseStatus.DECLINED),
        ("c@x.io", ResponseStatus.TENTATIVE),
        ("d@x.io", ResponseStatus.NOT_RESPONDED),
        ("e@x.io", ResponseStatus.NONE),
    )
    answers = event_fields(event)["responses"]
    assert answers == ("a@x.io:accepted", "b@x.io:declined", "c@x.io:tentative")
    parsed = sfm.parse_responses(answers)
    assert {a: sfm.RESPONSE_TO_SF[v] for a, v in parsed.items()} == {
        "a@x.io": ("Accepted", None),
        "b@x.io": ("Declined", None),
        "c@x.io": ("New", sfm.TENTATIVE_COMMENT),  # Salesforce has no tentative status
    }
    assert sfm.relation_answer("Accepted", None) == "accepted"
    assert sfm.relation_answer("New", sfm.TENTATIVE_COMMENT) == "tentative"
    assert sfm.relation_answer("New", "see you") is None


# --- Salesforce Tasks shown in the calendar: mapping and scope ---------------------------------


def test_a_shown_task_is_a_free_all_day_item_in_its_own_category_never_a_calendar_item() -> None:
    item = task_calendar_event(
        {"subject": "Call Jane", "due_date": "2026-03-12", "description": "terms"}, sync_key="k"
    )
    assert item.is_all_day and item.start_date == date(2026, 3, 12)
    assert item.end_date == date(2026, 3, 13) and item.show_as is ShowAs.FREE
    assert item.categories == (SALESFORCE_TASKS_CATEGORY,)
    assert task_calendar_fields(replace(item, id="x")) == {
        "subject": "Call Jane",
        "due_date": "2026-03-12",
        "description": "terms",
    }
    everything = EventScope(meetings=True, appointments=True, private=True)
    assert not event_in_scope(item, everything)  # auto-shared appointments leave it alone
    both = replace(item, categories=("Salesforce", SALESFORCE_TASKS_CATEGORY))
    assert not event_in_scope(both, everything)
    assert event_in_scope(_meeting(categories=("Salesforce",)), EventScope())


# --- the engine's mirror rules ----------------------------------------------------------------


@pytest.fixture
def mirror(make_harness: Callable[..., Harness]) -> Harness:
    h = make_harness(kind="task_calendar")
    h.options = replace(
        h.options,
        direction=Direction.SF_TO_MAILBOX,
        policy=Policy.SALESFORCE_WINS,
        mass_delete_min=10**9,
        mirror=True,
    )
    return h


def test_a_mirror_puts_back_mailbox_edits_and_deletions_without_conflicts(mirror: Harness) -> None:
    h = mirror
    s = h.sf.add({"subject": "Call", "due_date": "2026-03-12", "description": "x"})
    h.sync()
    ((m, _),) = h.pairs()
    h.mb.edit(m, {"subject": "mine"})
    result = h.sync()
    assert h.mb.values(m)["subject"] == "Call" and result.conflicts == 0
    assert h.state.open_issues("task_calendar") == []
    h.mb.remove(m)
    result = h.sync()
    assert result.counts["mailbox"].created == 1
    assert [h.sf.values(sf)["subject"] for _mb, sf in h.pairs()] == ["Call"]
    assert h.sf.writes_done == (0, 0, 0)  # Salesforce is never written
    assert s in h.sf.items
    h.assert_quiet()


def test_a_mirrored_record_leaving_the_scope_takes_its_copy_along(mirror: Harness) -> None:
    h = mirror
    tasks = [h.sf.add({"subject": f"T{i}", "due_date": "2026-03-12"}) for i in range(12)]
    h.sync()
    assert len(h.mb.items) == 12
    h.sf.scope = lambda f: f.get("subject") != "T0"  # closed in Salesforce
    h.sf.touch(tasks[0])
    result = h.sync()
    assert result.counts["mailbox"].deleted == 1 and len(h.mb.items) == 11
    assert len(h.state.links("task_calendar")) == 11
    for t in tasks[1:]:  # all of them at once: no mass-deletion prompt for copies
        h.sf.remove(t)
    result = h.sync()
    assert not result.stopped and h.mb.items == {}
    assert h.state.links("task_calendar") == []
    h.assert_quiet()
