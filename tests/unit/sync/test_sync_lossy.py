"""Lossy sides and read-only fields: a side that keeps a coarser value than it was sent, and a
field that flows one way only. Every scenario ends with a quiet session (no writes)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sync_harness import Harness

from scc_desktop.store.db import open_database
from scc_desktop.sync.fields import FieldValue
from scc_desktop.sync.memory import MemoryRepository
from scc_desktop.sync.planner import Direction
from scc_desktop.sync.state import SyncState

Keeps = Callable[[dict[str, FieldValue]], dict[str, FieldValue]]

KNOWN_ACCOUNTS = {"Acme"}


def no_unknown_company(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """Salesforce: a company with no matching Account comes back empty."""
    if fields.get("company") not in KNOWN_ACCOUNTS:
        fields["company"] = None
    return fields


def no_tentative(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """Salesforce: no "tentative" show-as; stored as busy."""
    if fields.get("show_as") == "tentative":
        fields["show_as"] = "busy"
    return fields


def default_priority(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """A task with no priority comes back "normal"."""
    if fields.get("priority") is None:
        fields["priority"] = "normal"
    return fields


def known_attendees(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """Salesforce keeps only the attendees it knows (contacts, leads, users)."""
    value = fields.get("attendees") or ()
    assert isinstance(value, tuple)
    fields["attendees"] = tuple(a for a in value if a.endswith("@known.io"))
    return fields


def lossy(repo: MemoryRepository, keeps: Keeps, *, returns: bool = True) -> None:
    repo.keeps = keeps
    repo.returns_fields = returns


def test_a_company_salesforce_cannot_keep_is_not_erased_in_the_mailbox(harness: Harness) -> None:
    h = harness
    lossy(h.sf, no_unknown_company)
    m = h.mb.add({"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Ltd"})
    h.sync()
    ((_, s),) = h.pairs()
    assert h.sf.values(s)["company"] is None
    h.assert_quiet()
    assert h.mb.values(m)["company"] == "Analytical Ltd"
    # another field still syncs both ways, and the company stays as each side keeps it
    h.sf.edit(s, {"title": "Countess"})
    result = h.sync()
    assert result.counts["mailbox"].updated == 1 and result.counts["salesforce"].total == 0
    assert h.mb.values(m)["company"] == "Analytical Ltd"
    assert h.mb.values(m)["title"] == "Countess"
    h.assert_quiet()
    h.mb.edit(m, {"phone": "+44 1"})
    result = h.sync()
    assert result.counts["salesforce"].updated == 1 and result.counts["mailbox"].total == 0
    assert h.sf.values(s)["phone"] == "+44 1"
    assert h.mb.values(m)["company"] == "Analytical Ltd"
    h.assert_quiet()


def test_a_real_edit_of_the_lossy_field_still_syncs(harness: Harness) -> None:
    h = harness
    lossy(h.sf, no_unknown_company)
    m = h.mb.add({"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical Ltd"})
    h.sync()
    ((_, s),) = h.pairs()
    h.sf.edit(s, {"company": "Acme"})  # the user sets a company Salesforce knows
    h.sync()
    assert h.mb.values(m)["company"] == "Acme"
    h.assert_quiet()
    h.mb.edit(m, {"company": "Unknown Corp"})  # and back to one it cannot keep
    h.sync()
    assert h.mb.values(m)["company"] == "Unknown Corp"
    assert h.sf.values(s)["company"] is None
    h.assert_quiet()


def test_a_company_created_from_salesforce_side_unknown_stays_in_the_mailbox(
    harness: Harness,
) -> None:
    """The lossy side as the source: first-run match, then edits, never erase the richer value."""
    h = harness
    lossy(h.sf, no_unknown_company)
    m = h.mb.add({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io"})
    h.sf.add({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io"})
    h.sync()
    h.mb.edit(m, {"company": "Analytical Ltd"})
    h.sync()
    assert h.mb.values(m)["company"] == "Analytical Ltd"
    h.assert_quiet()


@pytest.mark.parametrize("returns", [True, False], ids=["read-back", "no-read-back"])
def test_tentative_stays_tentative_in_the_mailbox(
    make_harness: Callable[..., Harness], returns: bool
) -> None:
    h = make_harness(kind="event")
    lossy(h.sf, no_tentative, returns=returns)
    m = h.mb.add({"subject": "Review", "start": "2026-03-02T10:00:00Z", "show_as": "tentative"})
    h.sync()
    ((_, s),) = h.pairs()
    assert h.sf.values(s)["show_as"] == "busy"
    if returns:
        h.assert_quiet()
    else:  # without a read-back the first session cannot know; the next one learns it quietly
        result = h.sync()
        assert result.changes == 0
        h.assert_quiet()
    assert h.mb.values(m)["show_as"] == "tentative"
    h.sf.edit(s, {"location": "Room 1"})
    h.sync()
    assert h.mb.values(m)["show_as"] == "tentative" and h.mb.values(m)["location"] == "Room 1"
    h.assert_quiet()
    h.sf.edit(s, {"show_as": "free"})  # a real edit in Salesforce wins
    h.sync()
    assert h.mb.values(m)["show_as"] == "free"
    h.assert_quiet()
    h.mb.edit(m, {"show_as": "tentative"})
    h.sync()
    assert h.sf.values(s)["show_as"] == "busy" and h.mb.values(m)["show_as"] == "tentative"
    h.assert_quiet()


def test_busy_set_in_the_mailbox_over_tentative_needs_no_salesforce_write(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(kind="event")
    lossy(h.sf, no_tentative)
    m = h.mb.add({"subject": "Review", "start": "2026-03-02T10:00:00Z", "show_as": "tentative"})
    h.sync()
    h.mb.edit(m, {"show_as": "busy"})
    updates = h.sf.calls["update"]
    result = h.sync()
    assert result.changes == 0 and h.sf.calls["update"] == updates  # Salesforce holds busy
    h.assert_quiet()
    ((_, s),) = h.pairs()
    h.sf.edit(s, {"subject": "Review 2"})  # busy is now the synced value: nothing comes back
    h.sync()
    assert h.mb.values(m)["show_as"] == "busy" and h.mb.values(m)["subject"] == "Review 2"
    h.assert_quiet()


def test_a_default_priority_does_not_come_back(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(kind="task")
    lossy(h.sf, default_priority)
    m = h.mb.add({"subject": "Call Ada", "due_date": "2026-03-02"})
    h.sync()
    ((_, s),) = h.pairs()
    assert h.sf.values(s)["priority"] == "normal"
    assert h.mb.values(m)["priority"] is None
    h.assert_quiet()
    h.sf.edit(s, {"status": "completed"})
    h.sync()
    assert h.mb.values(m)["status"] == "completed" and h.mb.values(m)["priority"] is None
    h.assert_quiet()
    h.sf.edit(s, {"priority": "high"})
    h.sync()
    assert h.mb.values(m)["priority"] == "high"
    h.assert_quiet()


def test_a_lossy_mailbox_side_works_the_same(make_harness: Callable[..., Harness]) -> None:
    h = make_harness(kind="task")
    lossy(h.mb, default_priority)
    s = h.sf.add({"subject": "Call Ada", "due_date": "2026-03-02"})
    h.sync()
    ((m, _),) = h.pairs()
    assert h.mb.values(m)["priority"] == "normal" and h.sf.values(s)["priority"] is None
    h.assert_quiet()


# --- read-only fields ---------------------------------------------------------------------------


def meetings(make_harness: Callable[..., Harness]) -> Harness:
    h = make_harness(kind="event")
    h.mb.read_only = frozenset({"attendees"})
    h.sf.keeps = known_attendees
    return h


MEETING: dict[str, object] = {"subject": "Kick-off", "start": "2026-03-02T10:00:00Z"}


def test_attendees_flow_from_the_mailbox_to_salesforce_only(
    make_harness: Callable[..., Harness],
) -> None:
    h = meetings(make_harness)
    m = h.mb.add({**MEETING, "attendees": ["a@known.io", "b@elsewhere.io"]})
    h.sync()
    ((_, s),) = h.pairs()
    assert h.sf.values(s)["attendees"] == ("a@known.io",)  # Salesforce keeps fewer
    assert h.mb.values(m)["attendees"] == ("a@known.io", "b@elsewhere.io")
    h.assert_quiet()
    h.mb.edit(m, {"attendees": ["a@known.io", "b@elsewhere.io", "c@known.io"]})
    result = h.sync()
    assert result.counts["salesforce"].updated == 1 and result.counts["mailbox"].total == 0
    assert h.sf.values(s)["attendees"] == ("a@known.io", "c@known.io")
    h.assert_quiet()
    # an edit in Salesforce syncs, and never rewrites the meeting's attendees
    h.sf.edit(s, {"location": "Room 1"})
    mb_updates = h.mb.calls["update"]
    h.sync()
    assert h.mb.calls["update"] == mb_updates + 1
    assert h.mb.values(m)["location"] == "Room 1"
    assert h.mb.values(m)["attendees"] == ("a@known.io", "b@elsewhere.io", "c@known.io")
    h.assert_quiet()


def test_salesforce_attendee_edits_never_reach_the_mailbox(
    make_harness: Callable[..., Harness],
) -> None:
    h = meetings(make_harness)
    m = h.mb.add({**MEETING, "attendees": ["a@known.io", "c@known.io"]})
    h.sync()
    ((_, s),) = h.pairs()
    h.sf.edit(s, {"attendees": ["a@known.io"]})  # removed in Salesforce
    result = h.sync()
    assert result.counts["mailbox"].total == 0
    assert h.mb.values(m)["attendees"] == ("a@known.io", "c@known.io")
    h.assert_quiet()


def test_a_meeting_created_from_salesforce_gets_no_attendees_in_the_mailbox(
    make_harness: Callable[..., Harness],
) -> None:
    h = meetings(make_harness)
    s = h.sf.add({**MEETING, "attendees": ["a@known.io"]})
    h.sync()
    ((m, _),) = h.pairs()
    assert h.mb.values(m)["attendees"] == ()  # creating it with attendees would invite them
    assert h.sf.values(s)["attendees"] == ("a@known.io",)
    h.assert_quiet()
    h.mb.edit(m, {"attendees": ["z@known.io"]})  # the organizer invites: Salesforce follows
    h.sync()
    assert h.sf.values(s)["attendees"] == ("z@known.io",)
    h.assert_quiet()


def test_a_first_run_match_takes_the_attendees_from_the_mailbox(
    make_harness: Callable[..., Harness],
) -> None:
    h = meetings(make_harness)
    h.set(policy="salesforce_wins")
    m = h.mb.add({**MEETING, "attendees": ["a@known.io", "b@elsewhere.io"]})
    s = h.sf.add({**MEETING, "attendees": ["x@known.io"]})
    result = h.sync()
    assert h.pairs() == [(m, s)]
    assert result.counts["mailbox"].total == 0
    assert h.sf.values(s)["attendees"] == ("a@known.io",)
    assert h.mb.values(m)["attendees"] == ("a@known.io", "b@elsewhere.io")
    h.assert_quiet()


def test_attendees_one_way_to_the_mailbox_are_still_never_written(
    make_harness: Callable[..., Harness],
) -> None:
    h = meetings(make_harness)
    h.set(direction=Direction.SF_TO_MAILBOX.value)
    s = h.sf.add({**MEETING, "attendees": ["a@known.io"]})
    h.sync()
    ((m, _),) = h.pairs()
    h.sf.edit(s, {"attendees": ["a@known.io", "b@known.io"], "location": "Room 2"})
    h.sync()
    assert h.mb.values(m)["attendees"] == () and h.mb.values(m)["location"] == "Room 2"
    h.assert_quiet()


@pytest.mark.parametrize("direction", ["mailbox_to_sf", "sf_to_mailbox"])
def test_one_way_with_a_lossy_target_or_source_is_quiet(harness: Harness, direction: str) -> None:
    h = harness
    h.set(direction=direction)
    lossy(h.sf, no_unknown_company)
    source = h.mb if direction == "mailbox_to_sf" else h.sf
    item = source.add({"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical"})
    h.sync()
    h.assert_quiet()
    source.edit(item, {"title": "Countess"})
    h.sync()
    ((m, s),) = h.pairs()
    assert h.mb.values(m)["title"] == h.sf.values(s)["title"] == "Countess"
    assert h.sf.values(s)["company"] is None
    if direction == "mailbox_to_sf":
        assert h.mb.values(m)["company"] == "Analytical"
    h.assert_quiet()


def test_a_first_run_match_with_a_lossy_side_is_quiet_after(harness: Harness) -> None:
    h = harness
    lossy(h.sf, no_unknown_company)
    m = h.mb.add({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io"})
    h.mb.edit(m, {"company": "Analytical"})
    h.sf.add({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io", "phone": "1"})
    h.sync()
    assert h.pairs() and h.mb.values(m)["phone"] == "1"
    assert h.mb.values(m)["company"] == "Analytical"
    h.assert_quiet()


def test_a_server_that_touches_after_writing_still_reports_what_it_kept(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(kind="event")
    lossy(h.sf, no_tentative)
    h.sf.faults.flaky_versions = True  # the version moves after the write: only the read-back
    m = h.mb.add({"subject": "Review", "start": "2026-03-02T10:00:00Z", "show_as": "tentative"})
    h.sync()
    h.sync()  # the touched version is picked up (no content change)
    assert h.mb.values(m)["show_as"] == "tentative"
    h.assert_quiet()


def test_links_keep_each_sides_own_values(harness: Harness) -> None:
    h = harness
    lossy(h.sf, no_unknown_company)
    h.mb.add({"first_name": "Ada", "last_name": "Lovelace", "company": "Analytical"})
    h.sync()
    (link,) = h.state.links("contact")
    assert link.base["company"] == "Analytical"
    assert link.stored == {"salesforce": {"company": None}}
    assert link.side_base("salesforce")["company"] is None
    assert link.side_base("mailbox")["company"] == "Analytical"
    assert link.cleared("salesforce").stored == {}


# --- random histories ---------------------------------------------------------------------------

SHOW_AS = st.sampled_from(["free", "busy", "tentative", "oof", None])
PEOPLE = st.lists(
    st.sampled_from(["a@known.io", "b@known.io", "x@elsewhere.io", "y@elsewhere.io"]),
    max_size=3,
)
STEP = st.one_of(
    st.tuples(st.just("mailbox"), st.just("show_as"), SHOW_AS),
    st.tuples(st.just("salesforce"), st.just("show_as"), SHOW_AS),
    st.tuples(st.just("mailbox"), st.just("attendees"), PEOPLE),
    st.tuples(
        st.sampled_from(["mailbox", "salesforce"]), st.just("location"), st.text("ab", max_size=2)
    ),
    st.tuples(st.just("sync"), st.just(""), st.none()),
)


def salesforce_keeps(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    return known_attendees(no_tentative(fields))


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(STEP, max_size=14),
    policy=st.sampled_from(["newest_wins", "mailbox_wins", "salesforce_wins"]),
)
def test_random_histories_converge_as_each_side_can_hold(
    steps: list[tuple[str, str, object]], policy: str
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = open_database(Path(folder) / "state.sqlite3")
        try:
            h = Harness(SyncState(db), kind="event")
            h.set(policy=policy)
            h.mb.read_only = frozenset({"attendees"})
            h.sf.keeps = salesforce_keeps
            m = h.mb.add({**MEETING, "attendees": ["a@known.io", "x@elsewhere.io"]})
            h.sync()
            ((_, s),) = h.pairs()
            for side, name, value in [*steps, ("sync", "", None)]:
                if side == "sync":
                    mb_attendees = h.mb.values(m)["attendees"]
                    h.sync()
                    assert h.mb.values(m)["attendees"] == mb_attendees  # never written
                    expected = salesforce_keeps(dict(h.mb.values(m)))
                    assert h.sf.values(s) == expected
                    h.assert_quiet()
                else:
                    (h.mb if side == "mailbox" else h.sf).edit(
                        m if side == "mailbox" else s, {name: value}
                    )
        finally:
            db.close()
