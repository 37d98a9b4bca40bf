"""The decision matrix, cell by cell: 5 x 5 side states x 4 directions x 3 policies x 2 deletion
propagation settings = 600 cells, each asserted against the table below (written from the rules
in DESIGN.md and issue 5, not from the code)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from scc_desktop.sync.planner import (
    Action,
    Direction,
    InvalidCell,
    LinkChange,
    Op,
    Policy,
    Rules,
    SideState,
    Status,
    plan,
    three_way,
    winner_of,
)

S = Status
D = Direction
P = Policy

EARLY = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

BASE = {"title": "Base title", "phone": "111"}
# Both sides edit the same field in the "changed"/"new" states, so two-way cells are conflicts;
# the mailbox edit is the newer one, so newest-wins picks the mailbox.
MAILBOX_FIELDS = {
    S.NEW: {"title": "Mailbox title", "phone": "111"},
    S.CHANGED: {"title": "Mailbox title", "phone": "111"},
    S.UNCHANGED: dict(BASE),
}
SALESFORCE_FIELDS = {
    S.NEW: {"title": "Salesforce title", "phone": "111"},
    S.CHANGED: {"title": "Salesforce title", "phone": "111"},
    S.UNCHANGED: dict(BASE),
}


def side(status: Status, fields: dict[str, dict[str, str]], when: datetime) -> SideState:
    values = fields.get(status)
    return SideState(status, dict(values) if values is not None else None, when)


Outcome = tuple[
    str, str, str, str | None
]  # mailbox op, salesforce op, link change, conflict winner
Rule = Outcome | Callable[[Policy, bool], Outcome]

NOTHING: Outcome = ("-", "-", "none", None)
KEEP: Outcome = ("-", "-", "keep", None)
DROP: Outcome = ("-", "-", "drop", None)
DETACH_MB: Outcome = ("-", "-", "detach_mailbox", None)
DETACH_SF: Outcome = ("-", "-", "detach_salesforce", None)
CREATE_SF: Outcome = ("-", "create", "create", None)
CREATE_MB: Outcome = ("create", "-", "create", None)


def two_way_winner(policy: Policy) -> str:
    return "salesforce" if policy is P.SALESFORCE_WINS else "mailbox"  # mailbox edit is newer


def both_edited(link: str) -> Callable[[Policy, bool], Outcome]:
    """The loser's side is overwritten with the winner's title; the loser is kept aside."""

    def rule(policy: Policy, _propagate: bool) -> Outcome:
        if two_way_winner(policy) == "mailbox":
            return ("-", "update", link, "mailbox")
        return ("update", "-", link, "salesforce")

    return rule


def mailbox_deleted_sf_unchanged(policy: Policy, propagate: bool) -> Outcome:
    return ("-", "delete", "drop", None) if propagate else DETACH_MB


def mailbox_deleted_sf_changed_two_way(policy: Policy, propagate: bool) -> Outcome:
    if not propagate:
        return DETACH_MB
    if policy is P.MAILBOX_WINS:
        return ("-", "delete", "drop", "mailbox")
    return ("create", "-", "update", None)  # the Salesforce edit beats the deletion


def mailbox_deleted_sf_changed_to_sf(policy: Policy, propagate: bool) -> Outcome:
    return ("-", "delete", "drop", "mailbox") if propagate else DETACH_MB


def sf_deleted_mailbox_changed_two_way(policy: Policy, propagate: bool) -> Outcome:
    if policy is P.SALESFORCE_WINS:
        return ("delete", "-", "drop", "salesforce")
    return ("-", "create", "update", None)  # the mailbox edit beats the deletion


TABLE: dict[tuple[Status, Status], dict[Direction, Rule]] = {
    # --- unlinked: new or absent on each side ---
    (S.ABSENT, S.ABSENT): {D.TWO_WAY: NOTHING, D.SF_TO_MAILBOX: NOTHING, D.MAILBOX_TO_SF: NOTHING},
    (S.NEW, S.ABSENT): {D.TWO_WAY: CREATE_SF, D.SF_TO_MAILBOX: NOTHING, D.MAILBOX_TO_SF: CREATE_SF},
    (S.ABSENT, S.NEW): {D.TWO_WAY: CREATE_MB, D.SF_TO_MAILBOX: CREATE_MB, D.MAILBOX_TO_SF: NOTHING},
    (S.NEW, S.NEW): {  # a first-run match with different titles
        D.TWO_WAY: both_edited("create"),
        D.SF_TO_MAILBOX: ("update", "-", "create", "salesforce"),
        D.MAILBOX_TO_SF: ("-", "update", "create", "mailbox"),
    },
    # --- linked ---
    (S.UNCHANGED, S.UNCHANGED): {D.TWO_WAY: KEEP, D.SF_TO_MAILBOX: KEEP, D.MAILBOX_TO_SF: KEEP},
    (S.CHANGED, S.UNCHANGED): {
        D.TWO_WAY: ("-", "update", "update", None),
        D.SF_TO_MAILBOX: ("update", "-", "update", "salesforce"),  # target edit reverted, kept
        D.MAILBOX_TO_SF: ("-", "update", "update", None),
    },
    (S.UNCHANGED, S.CHANGED): {
        D.TWO_WAY: ("update", "-", "update", None),
        D.SF_TO_MAILBOX: ("update", "-", "update", None),
        D.MAILBOX_TO_SF: ("-", "update", "update", "mailbox"),
    },
    (S.CHANGED, S.CHANGED): {
        D.TWO_WAY: both_edited("update"),
        D.SF_TO_MAILBOX: ("update", "-", "update", "salesforce"),
        D.MAILBOX_TO_SF: ("-", "update", "update", "mailbox"),
    },
    (S.DELETED, S.UNCHANGED): {
        D.TWO_WAY: mailbox_deleted_sf_unchanged,
        D.SF_TO_MAILBOX: DETACH_MB,
        D.MAILBOX_TO_SF: mailbox_deleted_sf_unchanged,
    },
    (S.DELETED, S.CHANGED): {
        D.TWO_WAY: mailbox_deleted_sf_changed_two_way,
        D.SF_TO_MAILBOX: DETACH_MB,
        D.MAILBOX_TO_SF: mailbox_deleted_sf_changed_to_sf,
    },
    (S.UNCHANGED, S.DELETED): {
        D.TWO_WAY: ("delete", "-", "drop", None),
        D.SF_TO_MAILBOX: ("delete", "-", "drop", None),
        D.MAILBOX_TO_SF: DETACH_SF,
    },
    (S.CHANGED, S.DELETED): {
        D.TWO_WAY: sf_deleted_mailbox_changed_two_way,
        D.SF_TO_MAILBOX: ("delete", "-", "drop", "salesforce"),
        D.MAILBOX_TO_SF: DETACH_SF,
    },
    (S.DELETED, S.DELETED): {D.TWO_WAY: DROP, D.SF_TO_MAILBOX: DROP, D.MAILBOX_TO_SF: DROP},
}

LINKED = {S.CHANGED, S.UNCHANGED, S.DELETED}
CELLS = list(itertools.product(Status, Status, Direction, Policy, (False, True)))


def expected(
    mb: Status, sf: Status, direction: Direction, policy: Policy, propagate: bool
) -> Outcome | None:
    """None for the impossible cells (one side linked, the other not)."""
    if (mb, sf) not in TABLE:
        return None
    if direction is D.OFF:
        return KEEP if mb in LINKED else NOTHING
    rule = TABLE[(mb, sf)][direction]
    return rule(policy, propagate) if callable(rule) else rule


def outcome(action: Action) -> Outcome:
    winner = action.conflict.winner if action.conflict else None
    return (action.mailbox.value, action.salesforce.value, action.link.value, winner)


def test_the_table_covers_every_possible_cell() -> None:
    assert len(CELLS) == 600
    possible = [
        (a, b)
        for a, b in itertools.product(Status, Status)
        if {a, b} <= LINKED or {a, b} <= {S.NEW, S.ABSENT}
    ]
    assert sorted(possible) == sorted(TABLE)


@pytest.mark.parametrize(
    ("mb", "sf", "direction", "policy", "propagate"),
    CELLS,
    ids=[f"{a}-{b}-{d}-{p}-{'prop' if x else 'noprop'}" for a, b, d, p, x in CELLS],
)
def test_cell(
    mb: Status, sf: Status, direction: Direction, policy: Policy, propagate: bool
) -> None:
    rules = Rules(direction, policy, propagate)
    mb_state = side(mb, MAILBOX_FIELDS, LATE)
    sf_state = side(sf, SALESFORCE_FIELDS, EARLY)
    base = dict(BASE) if mb in LINKED else None
    want = expected(mb, sf, direction, policy, propagate)
    if want is None:
        with pytest.raises(InvalidCell):
            plan(mb_state, sf_state, base, rules)
        return
    action = plan(mb_state, sf_state, base, rules)
    assert outcome(action) == want
    _check_consistency(action, mb_state, sf_state)


def _check_consistency(action: Action, mb: SideState, sf: SideState) -> None:
    """Whatever the cell, a kept or new link means both sides end with `merged`, and a conflict
    keeps the loser's real version."""
    if action.link in (LinkChange.CREATE, LinkChange.UPDATE):
        assert action.merged is not None
        for state, op in ((mb, action.mailbox), (sf, action.salesforce)):
            if op is Op.NONE:
                assert state.fields == action.merged
            else:
                assert op in (Op.UPDATE, Op.CREATE)
    if action.conflict is not None:
        loser = mb if action.conflict.loser == "mailbox" else sf
        kept = (
            action.conflict.mailbox
            if action.conflict.loser == "mailbox"
            else (action.conflict.salesforce)
        )
        assert kept == loser.fields
        if action.merged is not None:
            for name in action.conflict.fields:
                assert action.merged[name] != (loser.fields or {}).get(name)


# --- merges ---------------------------------------------------------------------------------


def linked(
    status: Status, fields: dict[str, str | None], when: datetime | None = None
) -> SideState:
    return SideState(status, fields, when)


def test_different_fields_edited_on_each_side_both_survive() -> None:
    base = {"title": "CTO", "phone": "1", "city": "Berlin"}
    mb = linked(S.CHANGED, {"title": "CEO", "phone": "1", "city": "Berlin"}, LATE)
    sf = linked(S.CHANGED, {"title": "CTO", "phone": "2", "city": "Berlin"}, EARLY)
    for policy in Policy:
        action = plan(mb, sf, base, Rules(D.TWO_WAY, policy))
        assert action.merged == {"title": "CEO", "phone": "2", "city": "Berlin"}
        assert (action.mailbox, action.salesforce) == (Op.UPDATE, Op.UPDATE)
        assert action.conflict is None


def test_same_field_changed_to_the_same_value_is_no_conflict_and_no_write() -> None:
    base = {"title": "CTO"}
    mb = linked(S.CHANGED, {"title": "CEO"})
    sf = linked(S.CHANGED, {"title": "CEO"})
    action = plan(mb, sf, base, Rules())
    assert outcome(action) == ("-", "-", "update", None)
    assert action.merged == {"title": "CEO"}


def test_conflict_and_merge_together() -> None:
    base = {"title": "CTO", "phone": "1", "city": "Berlin"}
    mb = linked(S.CHANGED, {"title": "CEO", "phone": "1", "city": "Paris"}, EARLY)
    sf = linked(S.CHANGED, {"title": "VP", "phone": "2", "city": "Berlin"}, LATE)
    action = plan(mb, sf, base, Rules(D.TWO_WAY, P.NEWEST_WINS))
    assert action.merged == {"title": "VP", "phone": "2", "city": "Paris"}
    assert action.conflict is not None
    assert action.conflict.winner == "salesforce"
    assert action.conflict.fields == ("title",)
    assert action.conflict.mailbox == mb.fields  # the losing version, whole
    assert action.conflict.salesforce == sf.fields


def test_policy_decides_the_same_field_and_keeps_the_loser() -> None:
    base = {"title": "CTO"}
    mb = linked(S.CHANGED, {"title": "CEO"}, LATE)
    sf = linked(S.CHANGED, {"title": "VP"}, EARLY)
    wins = {P.MAILBOX_WINS: "CEO", P.SALESFORCE_WINS: "VP", P.NEWEST_WINS: "CEO"}
    for policy, title in wins.items():
        action = plan(mb, sf, base, Rules(D.TWO_WAY, policy))
        assert action.merged == {"title": title}
        assert action.conflict is not None and action.conflict.fields == ("title",)


def test_newest_wins_falls_back_to_salesforce_on_ties_and_unknown_times() -> None:
    def st(when: datetime | None) -> SideState:
        return SideState(S.CHANGED, {}, when)

    assert winner_of(st(LATE), st(EARLY), P.NEWEST_WINS) == "mailbox"
    assert winner_of(st(EARLY), st(LATE), P.NEWEST_WINS) == "salesforce"
    assert winner_of(st(LATE), st(LATE), P.NEWEST_WINS) == "salesforce"
    assert winner_of(st(None), st(EARLY), P.NEWEST_WINS) == "salesforce"
    assert winner_of(st(LATE), st(None), P.NEWEST_WINS) == "salesforce"


def test_three_way_with_a_field_cleared_on_one_side() -> None:
    merged, clashes = three_way(
        {"phone": "1", "title": "A"},
        {"phone": None, "title": "A"},
        {"phone": "1", "title": "B"},
        "mailbox",
    )
    assert merged == {"phone": None, "title": "B"}
    assert clashes == []


def test_first_run_match_fills_gaps_without_conflict() -> None:
    mb = SideState(S.NEW, {"email": "a@x.io", "phone": None, "title": "CEO"}, LATE)
    sf = SideState(S.NEW, {"email": "a@x.io", "phone": "555", "title": None}, EARLY)
    action = plan(mb, sf, None, Rules())
    assert action.is_first_run_match
    assert action.merged == {"email": "a@x.io", "phone": "555", "title": "CEO"}
    assert (action.mailbox, action.salesforce) == (Op.UPDATE, Op.UPDATE)
    assert action.conflict is None


def test_first_run_match_of_equal_items_only_links() -> None:
    fields = {"email": "a@x.io", "phone": "1"}
    action = plan(SideState(S.NEW, fields), SideState(S.NEW, dict(fields)), None, Rules())
    assert outcome(action) == ("-", "-", "create", None)
    assert action.is_first_run_match


def test_one_way_first_run_match_mirrors_the_source() -> None:
    mb = SideState(S.NEW, {"email": "a@x.io", "phone": "1", "title": None})
    sf = SideState(S.NEW, {"email": "a@x.io", "phone": "2", "title": "CEO"})
    action = plan(mb, sf, None, Rules(D.MAILBOX_TO_SF))
    assert action.merged == mb.fields
    assert action.conflict is not None
    assert action.conflict.fields == ("phone", "title")  # the target's own values, kept aside


def test_one_sided_linked_cells_raise() -> None:
    with pytest.raises(InvalidCell):
        plan(SideState(S.NEW, {}), SideState(S.CHANGED, {}), {}, Rules())
    with pytest.raises(ValueError, match="needs its fields"):
        plan(SideState(S.CHANGED, None), SideState(S.UNCHANGED, {}), {}, Rules())
