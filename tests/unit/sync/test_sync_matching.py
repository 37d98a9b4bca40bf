"""First-run matching before any create: contacts by email then name + company, events by
iCalUId then subject + start, tasks by subject + due date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from sync_harness import Harness

from scc_desktop.sync.fields import normalize
from scc_desktop.sync.matching import match_items
from scc_desktop.sync.ports import SideItem


def item(item_id: str, kind: str, **fields: object) -> SideItem:
    return SideItem(item_id, "v1", normalize(kind, fields))  # type: ignore[arg-type]


def ids(pairs: list[tuple[SideItem, SideItem]]) -> list[tuple[str, str]]:
    return [(a.id, b.id) for a, b in pairs]


def test_contacts_by_email_then_name_and_company() -> None:
    mb = [
        item("m1", "contact", email="ADA@example.com", last_name="Lovelace"),
        item("m2", "contact", first_name="Alan", last_name="Turing", company="Bletchley"),
        item("m3", "contact", first_name="Alan", last_name="Turing", company="Manchester"),
        item("m4", "contact", first_name="No", last_name="Company"),
    ]
    sf = [
        item("s1", "contact", first_name="Alan", last_name="Turing", company="bletchley"),
        item("s2", "contact", email="ada@example.com", last_name="King"),
        item("s3", "contact", first_name="No", last_name="Company"),
    ]
    pairs, rest_mb, rest_sf = match_items("contact", mb, sf)
    assert ids(pairs) == [("m1", "s2"), ("m2", "s1")]
    assert [i.id for i in rest_mb] == ["m3", "m4"]  # no company: no name + company key
    assert [i.id for i in rest_sf] == ["s3"]


def test_email_tier_wins_over_a_name_match() -> None:
    mb = [item("m1", "contact", email="x@example.com", first_name="A", last_name="B", company="C")]
    sf = [
        item(
            "s1", "contact", email="other@example.com", first_name="A", last_name="B", company="C"
        ),
        item("s2", "contact", email="x@example.com"),
    ]
    pairs, _, _ = match_items("contact", mb, sf)
    assert ids(pairs) == [("m1", "s2")]


def test_each_item_pairs_once() -> None:
    mb = [
        item("m1", "contact", email="x@example.com"),
        item("m2", "contact", email="x@example.com"),
    ]
    sf = [item("s1", "contact", email="x@example.com")]
    pairs, rest_mb, rest_sf = match_items("contact", mb, sf)
    assert ids(pairs) == [("m1", "s1")]
    assert [i.id for i in rest_mb] == ["m2"] and rest_sf == []


def test_events_by_ical_uid_then_subject_and_start() -> None:
    start = datetime(2026, 3, 29, 9, 0, tzinfo=timezone(timedelta(hours=2)))  # Berlin, CEST
    mb = [
        item("m1", "event", ical_uid="UID-1", subject="Moved", start=start),
        item("m2", "event", subject="Review", start=start),
    ]
    sf = [
        item("s1", "event", subject="Review", start=start.astimezone(UTC)),  # same instant
        item("s2", "event", ical_uid="UID-1", subject="Old subject", start=start),
    ]
    pairs, _, _ = match_items("event", mb, sf)
    assert ids(pairs) == [("m1", "s2"), ("m2", "s1")]


def test_tasks_by_subject_and_due_date() -> None:
    mb = [
        item("m1", "task", subject="Call Ada", due_date="2026-03-01"),
        item("m2", "task", subject="Call Ada", due_date="2026-03-02"),
    ]
    sf = [item("s1", "task", subject="call  ada", due_date=datetime(2026, 3, 2, tzinfo=UTC))]
    pairs, _, _ = match_items("task", mb, sf)
    assert ids(pairs) == [("m2", "s1")]


def test_first_session_matches_instead_of_creating(
    make_harness: Callable[..., Harness],
) -> None:
    cases = {
        "contact": ({"email": "a@x.io", "last_name": "A"}, {"email": "A@X.IO", "last_name": "A"}),
        "event": (
            {
                "subject": "Kickoff",
                "start": "2026-03-29T09:00:00+02:00",
                "end": "2026-03-29T10:00:00+02:00",
            },
            {"subject": "Kickoff", "start": "2026-03-29T07:00:00Z", "end": "2026-03-29T08:00:00Z"},
        ),
        "task": (
            {"subject": "Send deck", "due_date": "2026-04-01"},
            {"subject": "Send deck", "due_date": "2026-04-01"},
        ),
    }
    for kind, (mine, theirs) in cases.items():
        h = make_harness(kind=kind)
        h.mb.add(mine)
        h.sf.add(theirs)
        result = h.sync()
        assert result.counts["mailbox"].created == result.counts["salesforce"].created == 0, kind
        assert len(h.pairs()) == 1, kind
        h.assert_converged()
        h.assert_quiet()


def test_a_new_mailbox_contact_matches_a_salesforce_contact_outside_the_delta(
    harness: Harness,
) -> None:
    h = harness
    h.set(direction="mailbox_to_sf")
    h.sf.add({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
    h.sync()  # one-way: the Salesforce contact stays unlinked, and its change is consumed
    h.set(direction="two_way")
    h.mb.add(
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "title": "Countess",
        }
    )
    result = h.sync()
    assert result.counts["salesforce"].created == 0
    assert len(h.sf.items) == 1 and len(h.pairs()) == 1
    h.assert_converged()
    h.assert_quiet()
