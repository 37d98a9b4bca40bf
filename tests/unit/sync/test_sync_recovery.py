"""Crash safety: a session killed after any number of creates or updates, then rerun, converges
with no duplicates; cursors never move past unsaved work."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sync_harness import Harness

from scc_desktop.sync.engine import stream_name
from scc_desktop.sync.memory import SimulatedCrash

N_ITEMS = 7


def seed(h: Harness, matchable: bool = False) -> None:
    """Keyless contacts (no email, no company) by default: first-run matching cannot rescue a
    duplicate, only the intent journal can. `notes` identifies each contact."""
    for n in range(N_ITEMS):
        h.mb.add(
            {
                "first_name": "M",
                "last_name": f"{n}",
                "notes": f"m{n}",
                "email": f"m{n}@example.com" if matchable else None,
            }
        )
        h.sf.add(
            {
                "first_name": "S",
                "last_name": f"{n}",
                "notes": f"s{n}",
                "email": f"s{n}@example.com" if matchable else None,
            }
        )


def assert_no_duplicates(h: Harness) -> None:
    for repo in (h.mb, h.sf):
        tokens = [r.fields["notes"] for r in repo.items.values()]
        assert len(tokens) == len(set(tokens)), sorted(map(str, tokens))
    assert len(h.mb.items) == len(h.sf.items) == len(h.pairs()) == 2 * N_ITEMS


@pytest.mark.parametrize("matchable", [False, True], ids=["keyless", "by-email"])
@pytest.mark.parametrize("crash_side", ["mailbox", "salesforce"])
@pytest.mark.parametrize("after", range(1, N_ITEMS + 1))
def test_crash_after_each_create_then_rerun(
    make_harness: Callable[..., Harness], crash_side: str, after: int, matchable: bool
) -> None:
    h = make_harness(max_batch=3)
    seed(h, matchable)
    repo = h.mb if crash_side == "mailbox" else h.sf
    repo.faults.crash_after_creates = after
    cursor_before = h.state.cursor(stream_name("contact", "mailbox"))
    with pytest.raises(SimulatedCrash):
        h.sync()
    assert h.state.cursor(stream_name("contact", "mailbox")) == cursor_before
    assert h.state.pending_intents("contact", crash_side)  # type: ignore[arg-type]
    repo.faults.crash_after_creates = None
    h.sync()
    assert_no_duplicates(h)
    h.assert_converged()
    assert not h.state.pending_intents("contact", "mailbox")
    assert not h.state.pending_intents("contact", "salesforce")
    h.assert_quiet()


@pytest.mark.parametrize("after", range(1, 5))
def test_crash_after_each_update_then_rerun(
    make_harness: Callable[..., Harness], after: int
) -> None:
    h = make_harness(max_batch=2)
    seed(h)
    h.sync()
    pairs = h.pairs()
    for n, (m, s) in enumerate(pairs[:4]):
        h.mb.edit(m, {"title": f"T{n}"})
        h.sf.edit(s, {"phone": f"{n}"})
    h.sf.faults.crash_after_updates = after
    with pytest.raises(SimulatedCrash):
        h.sync()
    h.sf.faults.crash_after_updates = None
    h.sync()
    assert_no_duplicates(h)
    h.assert_converged()
    for n, (m, _s) in enumerate(pairs[:4]):
        assert h.mb.values(m)["title"] == f"T{n}" and h.mb.values(m)["phone"] == f"{n}"
    h.assert_quiet()


def test_repeated_crashes_at_growing_points_still_converge(
    make_harness: Callable[..., Harness],
) -> None:
    h = make_harness(max_batch=2)
    seed(h)
    for after in (1, 2, 3):
        h.sf.faults.crash_after_creates = h.sf.writes_done[0] + after
        with pytest.raises(SimulatedCrash):
            h.sync()
    h.sf.faults.crash_after_creates = None
    h.sync()
    assert_no_duplicates(h)
    h.assert_quiet()


def test_an_intent_whose_create_never_arrived_is_dropped_and_the_item_created(
    harness: Harness,
) -> None:
    h = harness
    h.mb.add({"first_name": "A", "last_name": "B", "email": "ab@example.com"})
    original = h.sf.create

    def die_before_sending(items):  # type: ignore[no-untyped-def]
        raise SimulatedCrash("killed before the request left")

    h.sf.create = die_before_sending  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        h.sync()
    assert len(h.state.pending_intents("contact", "salesforce")) == 1
    h.sf.create = original  # type: ignore[method-assign]
    h.sync()
    assert len(h.sf.items) == 1
    assert h.state.pending_intents("contact", "salesforce") == []
    h.assert_quiet()


def test_recovered_creates_are_counted_and_not_repeated(harness: Harness) -> None:
    h = harness
    h.mb.add({"first_name": "A", "last_name": "B", "email": "ab@example.com"})
    h.sf.faults.crash_after_creates = 1
    with pytest.raises(SimulatedCrash):
        h.sync()
    h.sf.faults.crash_after_creates = None
    result = h.sync()
    assert result.counts["salesforce"].created == 1  # the recovered one, linked not re-created
    assert h.sf.calls["create"] == 1
    assert h.sf.calls["find"] >= 1


def test_an_edit_to_a_recovered_create_still_syncs(harness: Harness) -> None:
    h = harness
    m = h.mb.add({"first_name": "A", "last_name": "B", "notes": "t"})
    h.sf.faults.crash_after_creates = 1
    with pytest.raises(SimulatedCrash):
        h.sync()
    h.sf.faults.crash_after_creates = None
    (s,) = h.sf.items
    h.sf.edit(s, {"title": "edited after the crash"})
    h.sync()
    assert h.mb.values(m)["title"] == "edited after the crash"
    h.assert_quiet()


def test_a_first_run_match_interrupted_after_its_update_stays_one_record(
    harness: Harness,
) -> None:
    h = harness
    h.sf.add({"first_name": "A", "last_name": "B", "email": "ab@x.io", "notes": "sf"})
    m = h.mb.add({"first_name": "A", "last_name": "B", "email": "ab@x.io", "notes": "mb"})
    h.sf.faults.crash_after_updates = 1  # the match writes the merged notes, then dies
    with pytest.raises(SimulatedCrash):
        h.sync()
    h.sf.faults.crash_after_updates = None
    h.mb.edit(m, {"email": None})  # no key left to match them again by
    h.sync()
    assert len(h.mb.items) == len(h.sf.items) == len(h.pairs()) == 1
    h.assert_converged()
    h.assert_quiet()


def test_our_unrecorded_write_is_not_mistaken_for_a_user_edit(harness: Harness) -> None:
    h = harness
    m = h.mb.add({"first_name": "A", "last_name": "B", "title": "a"})
    h.sync()
    s = h.pairs()[0][1]
    h.sf.edit(s, {"title": None})
    h.mb.faults.crash_after_updates = 1  # the mailbox receives the change, the link does not
    with pytest.raises(SimulatedCrash):
        h.sync()
    h.mb.faults.crash_after_updates = None
    h.sf.edit(s, {"title": "a"})  # the user changes their mind in Salesforce
    h.sync()
    assert h.sf.values(s)["title"] == "a" == h.mb.values(m)["title"]
    h.assert_quiet()


@pytest.mark.parametrize("after", [1, 2])
def test_a_merge_interrupted_between_its_two_writes(harness: Harness, after: int) -> None:
    h = harness
    m = h.mb.add({"first_name": "A", "last_name": "B", "notes": "t"})
    h.sync()
    s = h.pairs()[0][1]
    h.mb.edit(m, {"title": "T"})
    h.sf.edit(s, {"phone": "9"})
    (h.mb if after == 1 else h.sf).faults.crash_after_updates = 1
    with pytest.raises(SimulatedCrash):
        h.sync()
    h.mb.faults.crash_after_updates = h.sf.faults.crash_after_updates = None
    h.sync()
    for values in (h.mb.values(m), h.sf.values(s)):
        assert (values["title"], values["phone"]) == ("T", "9")
    h.assert_quiet()
