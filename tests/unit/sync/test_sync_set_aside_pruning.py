"""Calendar links set aside (an item out of the window or out of scope) are pruned once their
item can no longer come back: it ended before the calendar window on both sides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from sync_harness import Harness

from scc_desktop.sync.state import Link


def _event(subject: str, start: str, end: str, uid: str) -> dict[str, object]:
    return {"subject": subject, "start": start, "end": end, "ical_uid": uid}


def _aside(h: Harness) -> list[Link]:
    return [link for link in h.state.links("event") if link.state != "active"]


def test_a_set_aside_past_event_is_pruned_once_before_the_window(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(kind="event")
    h.options = replace(h.options, expire_before=datetime(2026, 1, 1, tzinfo=UTC))
    old = h.mb.add(_event("Old", "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", "U1"))
    h.mb.add(_event("New", "2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z", "U2"))
    h.sync()
    assert len(h.pairs()) == 2
    h.mb.scope = lambda f: str(f.get("start")) >= "2026-02-01"  # the window moved on
    h.sf.scope = lambda f: str(f.get("start")) >= "2026-02-01"
    h.mb.touch(old)
    assert h.sync().changes == 0
    (aside,) = _aside(h)  # set aside: kept while its item may still come back
    assert aside.aside_until == "2026-01-05T10:00:00Z"
    # the window start passes the event's end: the link can never re-attach anything
    h.options = replace(h.options, expire_before=datetime(2026, 1, 6, tzinfo=UTC))
    result = h.sync()
    assert result.pruned == 1 and result.changes == 0
    assert _aside(h) == [] and len(h.state.links("event")) == 1
    assert old in h.mb.items and len(h.sf.items) == 2  # nothing deleted on either side
    h.assert_quiet()


def test_a_meeting_moved_far_ahead_keeps_its_link_until_it_is_over(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(kind="event")
    h.options = replace(h.options, expire_before=datetime(2026, 1, 1, tzinfo=UTC))
    m = h.mb.add(_event("Review", "2026-01-10T09:00:00Z", "2026-01-10T10:00:00Z", "U1"))
    h.sync()
    ((_, s),) = h.pairs()
    h.mb.scope = lambda f: str(f.get("start")) < "2026-04-01"  # the window's far end
    h.mb.edit(m, {"start": "2026-06-01T09:00:00Z", "end": "2026-06-01T10:00:00Z"})
    assert h.sync().changes == 0  # moved beyond the window: set aside, nothing deleted
    (aside,) = _aside(h)
    assert aside.aside_until == "2026-06-01T10:00:00Z"  # where the meeting lies now
    h.options = replace(h.options, expire_before=datetime(2026, 2, 1, tzinfo=UTC))
    assert h.sync().pruned == 0  # its old date is past, but the meeting is still ahead
    h.mb.scope = lambda f: True  # the window reaches it: it re-attaches to its partner
    h.mb.touch(m)
    result = h.sync()
    assert result.counts["salesforce"].created == 0
    assert h.pairs() == [(m, s)]
    assert h.sf.values(s)["start"] == "2026-06-01T09:00:00Z"
    h.assert_quiet()


def test_tombstones_and_links_without_a_window_are_kept(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(kind="event")  # no expire_before: contacts and tasks never prune
    old = h.mb.add(_event("Old", "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", "U1"))
    h.sync()
    h.mb.scope = lambda f: False
    h.mb.touch(old)
    h.sync()
    assert len(_aside(h)) == 1
    assert h.state.prune_detached("contact", "2030-01-01T00:00:00Z") == 0
    assert h.state.prune_detached("event", "2026-01-05T10:00:00Z") == 0  # ends exactly then
    assert h.state.prune_detached("event", "2026-01-05T10:00:01Z") == 1
