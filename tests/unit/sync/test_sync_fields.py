"""Normalization: values a server rewrites hash the same; real edits don't."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from scc_desktop.sync.fields import (
    FIELDS,
    KINDS,
    fields_hash,
    from_json,
    match_keys,
    normalize,
    project,
    to_json,
)


def test_every_kind_has_its_fields() -> None:
    assert set(KINDS) == {"contact", "event", "task"}
    assert {"first_name", "email", "email2", "postal_code", "notes"} <= set(FIELDS["contact"])
    assert {"subject", "start", "end", "is_all_day", "attendees", "show_as"} <= set(FIELDS["event"])
    assert set(FIELDS["task"]) == {"subject", "due_date", "status", "priority", "description"}


def test_contact_normalization() -> None:
    got = normalize(
        "contact",
        {
            "first_name": "  Ada ",
            "email": " ADA@Example.COM ",
            "phone": "+44  20\t7946",
            "notes": "line 1  \r\nline 2\r\n\r\n",
            "title": "",
            "unknown": "dropped",
        },
    )
    assert got == {
        "first_name": "Ada",
        "email": "ada@example.com",
        "phone": "+44 20 7946",
        "notes": "line 1\nline 2",
        "title": None,
    }


def test_datetimes_become_utc_whatever_the_zone() -> None:
    berlin = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # after the switch
    new_york = datetime(2026, 3, 28, 21, 30, tzinfo=ZoneInfo("America/New_York"))
    assert normalize("event", {"start": berlin})["start"] == "2026-03-29T01:30:00Z"
    assert normalize("event", {"start": new_york})["start"] == "2026-03-29T01:30:00Z"
    assert normalize("event", {"start": "2026-03-29T03:30:00+02:00"})["start"] == (
        "2026-03-29T01:30:00Z"
    )
    assert normalize("event", {"start": "2026-03-29T01:30:00.123Z"})["start"] == (
        "2026-03-29T01:30:00Z"
    )
    assert normalize("event", {"start": datetime(2026, 3, 29, 1, 30)})["start"] == (
        "2026-03-29T01:30:00Z"
    )  # naive means UTC


def test_all_day_dates_stay_dates() -> None:
    got = normalize("event", {"start": date(2026, 12, 24), "end": "2026-12-25", "is_all_day": 1})
    assert got == {"start": "2026-12-24", "end": "2026-12-25", "is_all_day": True}


def test_attendees_are_a_sorted_set_of_addresses() -> None:
    got = normalize("event", {"attendees": ["B@x.io", "a@x.io", "b@x.io ", ""]})
    assert got["attendees"] == ("a@x.io", "b@x.io")
    assert normalize("event", {"attendees": None})["attendees"] == ()


def test_task_vocabulary() -> None:
    got = normalize(
        "task",
        {
            "status": "In Progress",
            "priority": "HIGH",
            "due_date": datetime(2026, 1, 2, 23, 0, tzinfo=UTC),
        },
    )
    assert got == {"status": "in_progress", "priority": "high", "due_date": "2026-01-02"}
    assert normalize("task", {"status": "in-progress"})["status"] == "in_progress"


def test_bad_dates_raise() -> None:
    with pytest.raises(ValueError):
        normalize("event", {"start": "next tuesday"})
    with pytest.raises(TypeError):
        normalize("event", {"start": 12})


def test_normalization_is_idempotent() -> None:
    raw = {
        "subject": " Review ",
        "start": datetime(2026, 5, 1, 9, tzinfo=timezone(timedelta(hours=-4))),
        "attendees": ["X@y.io"],
        "is_private": "true",
        "show_as": "Busy",
    }
    once = normalize("event", raw)
    assert normalize("event", once) == once


def test_hash_ignores_order_missing_versus_empty_and_sees_edits() -> None:
    names = ["email", "phone", "title"]
    a = project("contact", {"email": "a@x.io", "title": ""}, names)
    b = project("contact", {"title": None, "email": "A@X.IO ", "phone": None}, names)
    assert fields_hash(a, names) == fields_hash(b, names)
    c = project("contact", {"email": "a@x.io", "title": "CEO"}, names)
    assert fields_hash(a, names) != fields_hash(c, names)


def test_json_round_trip_keeps_tuples() -> None:
    values = normalize("event", {"attendees": ["a@x.io"], "subject": "S", "is_all_day": False})
    assert from_json("event", to_json(values)) == values


def test_match_keys_skip_incomplete_keys() -> None:
    assert match_keys("contact", {"email": None, "first_name": "A", "last_name": "B"}) == []
    keys = match_keys(
        "contact", {"email": "a@x.io", "first_name": "A", "last_name": "B", "company": "C"}
    )
    assert [tier for tier, _ in keys] == [0, 1]
