"""The decision matrix: one pure function from both sides' state to the action for one pair.

Everything the engine does to a record is decided here, so every combination of side states,
direction, conflict policy and deletion propagation can be enumerated and tested as a table.
Rules that are not obvious:
- a mailbox deletion of a synced item only detaches the link unless deletion propagation is on, so
  Salesforce keeps its record and the mailbox copy is not re-created;
- a Salesforce deletion removes the mailbox copy (two-way, Salesforce -> mailbox); in
  mailbox -> Salesforce it only detaches;
- an edit beats a deletion unless the policy says the deleting side wins (we cannot know when the
  deletion happened, and keeping data is the safe side);
- one-way directions mirror the source, so edits made on the target are overwritten;
- whenever a side's own edit is overwritten or deleted, the action carries it as a `Conflict` so the
  losing version is kept in Sync Issues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from scc_desktop.sync.fields import FieldValue
from scc_desktop.sync.ports import Side


class Status(StrEnum):
    NEW = "new"  # exists on this side, no link
    CHANGED = "changed"  # linked, hash differs from the last sync
    UNCHANGED = "unchanged"  # linked, same hash (or not reported by the delta)
    DELETED = "deleted"  # linked, gone
    ABSENT = "absent"  # no item and no link on this side


LINKED = frozenset({Status.CHANGED, Status.UNCHANGED, Status.DELETED})
UNLINKED = frozenset({Status.NEW, Status.ABSENT})


class Direction(StrEnum):
    OFF = "off"
    TWO_WAY = "two_way"
    SF_TO_MAILBOX = "sf_to_mailbox"
    MAILBOX_TO_SF = "mailbox_to_sf"


class Policy(StrEnum):
    NEWEST_WINS = "newest_wins"
    SALESFORCE_WINS = "salesforce_wins"
    MAILBOX_WINS = "mailbox_wins"


class Op(StrEnum):
    NONE = "-"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class LinkChange(StrEnum):
    NONE = "none"  # no link before or after
    KEEP = "keep"  # nothing to save
    CREATE = "create"  # a new link (after a create or a first-run match)
    UPDATE = "update"  # save new versions, hashes and base values
    DETACH_MAILBOX = "detach_mailbox"  # mailbox copy gone; keep a tombstone so it isn't re-created
    DETACH_SALESFORCE = "detach_salesforce"
    DROP = "drop"  # forget the link


@dataclass(frozen=True)
class Rules:
    direction: Direction = Direction.TWO_WAY
    policy: Policy = Policy.NEWEST_WINS
    propagate_mailbox_deletes: bool = False


@dataclass(frozen=True)
class SideState:
    """One side of a pair; `fields` are the projected synced fields (None when deleted/absent)."""

    status: Status
    fields: Mapping[str, FieldValue] | None = None
    modified_at: datetime | None = None


@dataclass(frozen=True)
class Conflict:
    """A side's own edit that loses; both versions go to Sync Issues with "keep this one"."""

    winner: Side
    fields: tuple[str, ...]  # the losing side's edited fields; empty when a deletion won
    mailbox: Mapping[str, FieldValue] | None
    salesforce: Mapping[str, FieldValue] | None

    @property
    def loser(self) -> Side:
        return "salesforce" if self.winner == "mailbox" else "mailbox"


@dataclass(frozen=True)
class Action:
    """What to do: an operation per side, what happens to the link, and the values both sides
    hold afterwards (`merged`, the next base for three-way merges)."""

    mailbox: Op
    salesforce: Op
    link: LinkChange
    merged: Mapping[str, FieldValue] | None = None
    conflict: Conflict | None = None

    def op(self, side: Side) -> Op:
        return self.mailbox if side == "mailbox" else self.salesforce

    @property
    def is_first_run_match(self) -> bool:
        return self.link is LinkChange.CREATE and Op.CREATE not in (self.mailbox, self.salesforce)

    @property
    def writes(self) -> bool:
        return self.mailbox is not Op.NONE or self.salesforce is not Op.NONE


class InvalidCell(ValueError):
    """A combination that cannot occur: one side linked and the other not."""


NOTHING = Action(Op.NONE, Op.NONE, LinkChange.NONE)
KEEP = Action(Op.NONE, Op.NONE, LinkChange.KEEP)


def plan(
    mailbox: SideState, salesforce: SideState, base: Mapping[str, FieldValue] | None, rules: Rules
) -> Action:
    """Decide the action for one pair. `base` is the last synced values (None when unlinked)."""
    states = {mailbox.status, salesforce.status}
    if states <= UNLINKED:
        if rules.direction is Direction.OFF:
            return NOTHING
        return _plan_unlinked(mailbox, salesforce, rules)
    if states <= LINKED:
        if rules.direction is Direction.OFF:
            return KEEP
        return _plan_linked(mailbox, salesforce, base or {}, rules)
    raise InvalidCell(f"mailbox {mailbox.status} with salesforce {salesforce.status}")


def _sends_to_salesforce(direction: Direction) -> bool:
    return direction in (Direction.TWO_WAY, Direction.MAILBOX_TO_SF)


def _sends_to_mailbox(direction: Direction) -> bool:
    return direction in (Direction.TWO_WAY, Direction.SF_TO_MAILBOX)


def _fields(state: SideState) -> Mapping[str, FieldValue]:
    if state.fields is None:
        raise ValueError(f"a {state.status} side needs its fields")
    return state.fields


def _plan_unlinked(mb: SideState, sf: SideState, rules: Rules) -> Action:
    if mb.status is Status.NEW and sf.status is Status.NEW:
        return _plan_match(mb, sf, rules)
    if mb.status is Status.NEW and _sends_to_salesforce(rules.direction):
        return Action(Op.NONE, Op.CREATE, LinkChange.CREATE, dict(_fields(mb)))
    if sf.status is Status.NEW and _sends_to_mailbox(rules.direction):
        return Action(Op.CREATE, Op.NONE, LinkChange.CREATE, dict(_fields(sf)))
    return NOTHING


def winner_of(mb: SideState, sf: SideState, policy: Policy) -> Side:
    """The side whose edit wins a same-field conflict; newest wins falls back to Salesforce."""
    if policy is Policy.MAILBOX_WINS:
        return "mailbox"
    if policy is Policy.SALESFORCE_WINS:
        return "salesforce"
    if (
        mb.modified_at is not None
        and sf.modified_at is not None
        and mb.modified_at > sf.modified_at
    ):
        return "mailbox"
    return "salesforce"


def _source(direction: Direction) -> Side | None:
    if direction is Direction.SF_TO_MAILBOX:
        return "salesforce"
    if direction is Direction.MAILBOX_TO_SF:
        return "mailbox"
    return None


def _plan_match(mb: SideState, sf: SideState, rules: Rules) -> Action:
    """A first-run pair: equal fields link as they are; a value only one side has fills the gap;
    different values go to the source (one-way) or the policy's winner, the loser kept."""
    a, b = _fields(mb), _fields(sf)
    winner = _source(rules.direction) or winner_of(mb, sf, rules.policy)
    one_way = rules.direction is not Direction.TWO_WAY
    merged: dict[str, FieldValue] = {}
    lost: list[str] = []
    for name in sorted(set(a) | set(b)):
        av, bv = a.get(name), b.get(name)
        win, lose = (av, bv) if winner == "mailbox" else (bv, av)
        if av == bv or _blank(lose):
            merged[name] = win
        elif _blank(win) and not one_way:
            merged[name] = lose
        else:
            merged[name] = win
            lost.append(name)
    conflict = Conflict(winner, tuple(lost), dict(a), dict(b)) if lost else None
    return Action(_write(a, merged), _write(b, merged), LinkChange.CREATE, merged, conflict)


def _blank(value: FieldValue) -> bool:
    return value is None or value in ("", ())


def _write(current: Mapping[str, FieldValue], merged: Mapping[str, FieldValue]) -> Op:
    return Op.NONE if dict(current) == dict(merged) else Op.UPDATE


def _plan_linked(
    mb: SideState, sf: SideState, base: Mapping[str, FieldValue], rules: Rules
) -> Action:
    if mb.status is Status.UNCHANGED and sf.status is Status.UNCHANGED:
        return KEEP
    if mb.status is Status.DELETED and sf.status is Status.DELETED:
        return Action(Op.NONE, Op.NONE, LinkChange.DROP)
    if mb.status is Status.DELETED:
        return _mailbox_deleted(sf, rules)
    if sf.status is Status.DELETED:
        return _salesforce_deleted(mb, rules)
    return _plan_edits(mb, sf, base, rules)


def _mailbox_deleted(sf: SideState, rules: Rules) -> Action:
    if rules.direction is Direction.SF_TO_MAILBOX or not rules.propagate_mailbox_deletes:
        return Action(Op.NONE, Op.NONE, LinkChange.DETACH_MAILBOX)
    edited = sf.status is Status.CHANGED
    deletion_wins = (
        rules.direction is Direction.MAILBOX_TO_SF or rules.policy is Policy.MAILBOX_WINS
    )
    if edited and not deletion_wins:
        return Action(Op.CREATE, Op.NONE, LinkChange.UPDATE, dict(_fields(sf)))
    conflict = Conflict("mailbox", (), None, dict(_fields(sf))) if edited else None
    return Action(Op.NONE, Op.DELETE, LinkChange.DROP, None, conflict)


def _salesforce_deleted(mb: SideState, rules: Rules) -> Action:
    if rules.direction is Direction.MAILBOX_TO_SF:
        return Action(Op.NONE, Op.NONE, LinkChange.DETACH_SALESFORCE)
    edited = mb.status is Status.CHANGED
    deletion_wins = (
        rules.direction is Direction.SF_TO_MAILBOX or rules.policy is Policy.SALESFORCE_WINS
    )
    if edited and not deletion_wins:
        return Action(Op.NONE, Op.CREATE, LinkChange.UPDATE, dict(_fields(mb)))
    conflict = Conflict("salesforce", (), dict(_fields(mb)), None) if edited else None
    return Action(Op.DELETE, Op.NONE, LinkChange.DROP, None, conflict)


def three_way(
    base: Mapping[str, FieldValue],
    a: Mapping[str, FieldValue],
    b: Mapping[str, FieldValue],
    winner: Side,
) -> tuple[dict[str, FieldValue], list[str]]:
    """Merge per field against `base`; returns the merged values and the fields both sides changed
    to different values (decided for `winner`, where `a` is the mailbox)."""
    merged: dict[str, FieldValue] = {}
    clashes: list[str] = []
    for name in sorted(set(a) | set(b) | set(base)):
        av, bv, ov = a.get(name), b.get(name), base.get(name)
        if av == bv:
            merged[name] = av
        elif av == ov:
            merged[name] = bv
        elif bv == ov:
            merged[name] = av
        else:
            merged[name] = av if winner == "mailbox" else bv
            clashes.append(name)
    return merged, clashes


def _plan_edits(
    mb: SideState, sf: SideState, base: Mapping[str, FieldValue], rules: Rules
) -> Action:
    a, b = _fields(mb), _fields(sf)
    source = _source(rules.direction)
    if source is None:
        winner = winner_of(mb, sf, rules.policy)
        merged, clashes = three_way(base, a, b, winner)
        conflict = Conflict(winner, tuple(clashes), dict(a), dict(b)) if clashes else None
    else:
        winner = source
        merged = dict(a if source == "mailbox" else b)
        target = b if source == "mailbox" else a
        lost = tuple(
            name
            for name in sorted(target)
            if target.get(name) != base.get(name) and target.get(name) != merged.get(name)
        )
        conflict = Conflict(winner, lost, dict(a), dict(b)) if lost else None
    return Action(_write(a, merged), _write(b, merged), LinkChange.UPDATE, merged, conflict)
