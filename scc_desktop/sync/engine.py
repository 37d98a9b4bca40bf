"""One kind's session: read both sides since their cursors, pair, plan, guard, apply, save.

Order matters for crash safety: journalled writes of a killed session are settled first
(`recovery`); every create, merge and first-run match is journalled (committed) before it is
sent; a batch's links are saved in one commit after its writes; cursors move only after every
batch is saved. A crash anywhere therefore replays from the old cursors against links that
describe what reached the servers, and the hashes turn the replay into no-ops, not duplicates.
A write that fails leaves its pair's old link and puts both ids on the retry list, so the next
session re-reads them and merges again from their real state.

Lossy sides and per-side base values. A side may not keep what it is sent (Salesforce has no
"tentative" show-as and stores Busy; a task without priority comes back "normal"; a company with
no matching Account comes back empty). Each write returns what the side stored
(`WriteResult.fields`), and the link keeps, besides `base` (the merged values, the richest each
field was synced with), each side's own values where they differ (`Link.stored`); each side's
hash covers what that side holds. Before planning, a side's current value that still equals its
own stored value counts as not edited and stands in the plan as the `base` value; only a value
that moved away from what the side stored is an edit. So the planner's three-way merge is
unchanged, a lossy side keeps its coarser value while the other keeps its richer one, and a
real edit of that field on either side still syncs. A side is then written only for fields
whose merged value it does not already hold (`_trim`), so a lossy field never causes a write.

Read-only fields. A repository may declare `read_only` fields (`ports.read_only_fields`): it
stores them but never accepts them from the other side (the mailbox's attendees: writing them
would send invitations). They sync only away from that side: the other side's value of such a
field never counts as an edit (it stands in the plan as `base`, or on a first-run match as the
read-only side's value), the read-only side is never written for it (an update carries its
current value, a create leaves it out), and whatever the other side keeps of it (Salesforce
keeps only the attendees it knows) is remembered as that side's stored value.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from scc_desktop.sync.fields import FIELDS, FieldValue, Kind, fields_hash, normalize, project
from scc_desktop.sync.guard import GuardVerdict, check_mass_delete, restore_deletions
from scc_desktop.sync.matching import match_items
from scc_desktop.sync.planner import (
    Action,
    Direction,
    LinkChange,
    Op,
    Policy,
    Rules,
    SideState,
    Status,
    plan,
)
from scc_desktop.sync.ports import (
    SIDES,
    ItemDelete,
    ItemUpdate,
    NewItem,
    Side,
    SideItem,
    SideRepository,
    WriteResult,
    other_side,
    read_only_fields,
)
from scc_desktop.sync.recovery import recover
from scc_desktop.sync.resolutions import apply_kept_versions
from scc_desktop.sync.state import Link, SyncState

log = logging.getLogger(__name__)

KIND_LABEL: Mapping[Kind, str] = {
    "contact": "contact",
    "event": "calendar item",
    "task": "task",
    "task_calendar": "Salesforce task in the calendar",
}


@dataclass(frozen=True)
class KindOptions:
    """Per-kind settings, snapshotted at the start of a session."""

    direction: Direction = Direction.TWO_WAY
    policy: Policy = Policy.NEWEST_WINS
    propagate_mailbox_deletes: bool = False
    mass_delete_min: int = 10
    mass_delete_ratio: float = 0.2
    # Calendar: links set aside (or tombstones) whose item ended before this moment are pruned,
    # as such an item can no longer come back into the window (see `SyncState.prune_detached`).
    expire_before: datetime | None = None
    # A read-only mirror of Salesforce (Tasks shown in the calendar): a record that leaves the
    # Salesforce scope takes its mailbox copy with it, a copy deleted in the mailbox comes back,
    # and mailbox edits are overwritten without a conflict to ask about.
    mirror: bool = False

    @property
    def rules(self) -> Rules:
        return Rules(self.direction, self.policy, self.propagate_mailbox_deletes)


@dataclass
class SideCounts:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted}

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass(frozen=True)
class Progress:
    """A progress tick for the tooltip; `phase` is 'reading', 'applying' or 'done'."""

    kind: Kind
    phase: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


@dataclass
class KindResult:
    kind: Kind
    counts: dict[Side, SideCounts] = field(
        default_factory=lambda: {"mailbox": SideCounts(), "salesforce": SideCounts()}
    )
    issues: list[dict[str, object]] = field(default_factory=list)
    failed_items: int = 0
    conflicts: int = 0
    stopped: bool = False  # held by the mass-deletion guard
    pruned: int = 0  # set-aside links forgotten because their item left the window for good

    @property
    def changes(self) -> int:
        return sum(c.total for c in self.counts.values())

    def counts_dict(self) -> dict[str, dict[str, int]]:
        return {side: c.as_dict() for side, c in self.counts.items()}


@dataclass
class _Changes:
    upserted: dict[str, SideItem] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    departed: set[str] = field(default_factory=set)
    full: bool = False
    cursor: str | None = None
    retried: set[str] = field(default_factory=set)
    aside: dict[str, SideItem] = field(default_factory=dict)  # departed items, when known


@dataclass
class _Work:
    """One pair and its planned action, with what the writes returned."""

    action: Action
    link: Link | None
    ids: dict[Side, str | None]
    items: dict[Side, SideItem | None]
    states: dict[Side, SideState]
    replaces: Link | None = None
    key: str | None = None  # the create's correlation key
    pair_key: str | None = None  # the journalled merge or match
    dirty: bool = False  # the link row must be saved even if nothing else changed
    results: dict[Side, WriteResult] = field(default_factory=dict)
    # what each side holds now (`states` holds the values as planned, see the module docstring)
    actual: dict[Side, Mapping[str, FieldValue] | None] = field(default_factory=dict)
    changed: dict[Side, frozenset[str]] = field(default_factory=dict)  # fields an update sends

    def item_key(self) -> str:
        for side in SIDES:
            item_id = self.ids[side]
            if item_id is not None:
                return f"{side}:{item_id}"
        return "-"

    def label(self) -> str:
        for side in SIDES:
            fields = self.states[side].fields
            if fields:
                for name in ("subject", "last_name", "email", "first_name"):
                    value = fields.get(name)
                    if isinstance(value, str) and value:
                        return value
        return self.item_key()


def stream_name(kind: Kind, side: Side) -> str:
    return f"sync:{kind}:{side}"


class KindSession:
    """Runs one session for one kind; `run()` once."""

    def __init__(
        self,
        kind: Kind,
        mailbox: SideRepository,
        salesforce: SideRepository,
        state: SyncState,
        options: KindOptions,
        *,
        run_id: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.kind = kind
        self.repos: dict[Side, SideRepository] = {"mailbox": mailbox, "salesforce": salesforce}
        self.state = state
        self.options = options
        self.rules = options.rules
        self.run_id = run_id
        self.progress = progress
        self.names = sorted(mailbox.fields & salesforce.fields & set(FIELDS[kind]))
        self.read_only: dict[Side, frozenset[str]] = {
            side: read_only_fields(repo) & set(self.names) for side, repo in self.repos.items()
        }
        self.result = KindResult(kind)
        self._failed_ids: dict[Side, set[str]] = {"mailbox": set(), "salesforce": set()}

    # --- the session ------------------------------------------------------------------------

    def run(self) -> KindResult:
        if self.rules.direction is Direction.OFF:
            return self.result
        self._emit("reading", 0, 0)
        recovered = recover(self.kind, self.repos, self.state, self.names)
        for side in SIDES:
            self.result.counts[side].created += recovered[side]
        kept = apply_kept_versions(self.kind, self.repos, self.state, self.names)
        for side in SIDES:
            self.result.counts[side].created += kept[(side, "created")]
            self.result.counts[side].updated += kept[(side, "updated")]
        # Another direction changes which items are in play (one-way leaves items unlinked), so
        # the first session after a switch lists both sides in full.
        relist = self.state.cursor(self._direction_stream) != self.rules.direction.value
        changes = {side: self._read(side, relist) for side in SIDES}
        work = self._pair(changes)
        verdict = check_mass_delete(
            [w.action for w in work],
            self.state.count_active_links(self.kind),
            minimum=self.options.mass_delete_min,
            ratio=self.options.mass_delete_ratio,
        )
        if verdict is GuardVerdict.TRIPPED:
            answer = self.state.take_mass_delete_answer(self.kind)
            if answer == "restore":
                work = self._restore(work)
            elif answer != "allow":
                self._hold(work)
                return self.result
        else:
            self._close_mass_delete_prompts()
        self._apply(work)
        with self.state.transaction():
            self.state.set_cursor(self._direction_stream, self.rules.direction.value)
            for side in SIDES:
                cursor = changes[side].cursor
                if cursor is not None:
                    self.state.set_cursor(stream_name(self.kind, side), cursor)
                self.state.clear_retries(
                    self.kind, side, changes[side].retried - self._failed_ids[side]
                )
            if self.options.expire_before is not None:
                self.result.pruned = self.state.prune_detached(
                    self.kind, _moment_text(self.options.expire_before)
                )
        if self.result.pruned:
            log.info("%d set-aside %s link(s) pruned", self.result.pruned, self.kind)
        self._emit("done", len(work), len(work))
        return self.result

    # --- reading and pairing ----------------------------------------------------------------

    @property
    def _direction_stream(self) -> str:
        return f"sync:{self.kind}:direction"

    def _read(self, side: Side, relist: bool) -> _Changes:
        repo = self.repos[side]
        changes = _Changes()
        cursor = None if relist else self.state.cursor(stream_name(self.kind, side))
        for page in repo.read_changes(cursor):
            changes.full = changes.full or page.full
            for item in page.upserted:
                self._note(changes, item.id, item)
            for item_id in page.removed:
                self._note(changes, item_id, None, changes.removed)
            for item_id in page.departed:
                self._note(changes, item_id, None, changes.departed)
            changes.cursor = page.cursor
        retry = self.state.retry_ids(self.kind, side)
        if retry:
            changes.retried = retry
            self._confirm(side, changes, retry)
        if self.options.expire_before is not None:
            # where the departed items now lie decides when their links may be pruned; the
            # mailbox answers from what it just read (no call)
            unknown = sorted(changes.departed - set(changes.aside))
            if unknown:
                changes.aside.update((i.id, i) for i in repo.get(unknown))
        return changes

    @staticmethod
    def _note(
        changes: _Changes, item_id: str, item: SideItem | None, into: set[str] | None = None
    ) -> None:
        """Record the latest news about one id (a later page overrides an earlier one)."""
        changes.upserted.pop(item_id, None)
        changes.removed.discard(item_id)
        changes.departed.discard(item_id)
        if item is not None:
            changes.upserted[item_id] = item
        elif into is not None:
            into.add(item_id)

    def _confirm(self, side: Side, changes: _Changes, ids: set[str]) -> None:
        """Fetch ids the change feed said nothing about: present, out of scope, or gone."""
        wanted = sorted(ids - set(changes.upserted) - changes.removed - changes.departed)
        if not wanted:
            return
        got = {item.id: item for item in self.repos[side].get(wanted)}
        for item_id in wanted:
            item = got.get(item_id)
            if item is None:
                self._note(changes, item_id, None, changes.removed)
            elif item.in_scope:
                self._note(changes, item_id, item)
            else:
                self._note(changes, item_id, None, changes.departed)
                changes.aside[item_id] = item

    def _project(self, item: SideItem) -> dict[str, FieldValue]:
        return project(self.kind, item.fields, self.names)

    def _side_state(
        self, link: Link, side: Side, changes: _Changes
    ) -> tuple[SideState, SideItem | None]:
        item_id = link.side_id(side)
        item = changes.upserted.get(item_id) if item_id is not None else None
        if item is not None:
            fields = self._project(item)
            same = fields_hash(fields, self.names) == link.side_hash(side)
            status = Status.UNCHANGED if same else Status.CHANGED
            return SideState(status, fields, item.modified_at), item
        if item_id is None or item_id in changes.removed or changes.full:
            return SideState(Status.DELETED), None
        return SideState(Status.UNCHANGED, self._held(link, side)), None

    def _held(self, link: Link, side: Side) -> dict[str, FieldValue]:
        """What `side` held after the last sync."""
        return project(self.kind, link.side_base(side), self.names)

    def _as_planned(self, link: Link | None, side: Side, state: SideState) -> SideState:
        """`side`'s values as the planner sees them: a value the side still holds as it stored
        it, and any value of a field the other side keeps read-only, stand as `base`."""
        if state.fields is None or link is None:
            return state
        held = self._held(link, side)
        base = project(self.kind, link.base, self.names)
        theirs = self.read_only[other_side(side)]
        fields = {
            name: base[name]
            if name in theirs or state.fields.get(name) == held[name]
            else state.fields.get(name)
            for name in self.names
        }
        return replace(state, fields=fields)

    def _planned_work(
        self,
        link: Link | None,
        states: dict[Side, SideState],
        items: dict[Side, SideItem | None],
        ids: dict[Side, str | None],
        *,
        dirty: bool = False,
        replaces: Link | None = None,
    ) -> _Work:
        """Plan one pair from both sides' current states (see the module docstring)."""
        actual = {side: states[side].fields for side in SIDES}
        if link is not None:
            planned = {side: self._as_planned(link, side, states[side]) for side in SIDES}
            base: Mapping[str, FieldValue] | None = project(self.kind, link.base, self.names)
        else:
            planned = dict(states)
            for side in SIDES:  # a first-run match takes a read-only field from its owner
                mine, theirs = states[side].fields, states[other_side(side)].fields
                if mine is not None and theirs is not None and self.read_only[side]:
                    keep = {n: mine.get(n) for n in self.read_only[side]}
                    other = other_side(side)
                    planned[other] = replace(planned[other], fields={**theirs, **keep})
            base = None
        action = plan(planned["mailbox"], planned["salesforce"], base, self.rules)
        source = planned["salesforce"].fields
        if self.options.mirror and action.link is LinkChange.DETACH_MAILBOX and source:
            # a mirrored copy deleted in the mailbox is put back, as any edit there is
            action = Action(Op.CREATE, Op.NONE, LinkChange.UPDATE, dict(source))
        w = _Work(action, link, ids, items, planned, replaces=replaces, dirty=dirty, actual=actual)
        self._trim(w)
        return w

    def _trim(self, w: _Work) -> None:
        """Write a side only for the fields whose merged value it does not hold already; an
        update left with none is dropped (the link still records the merge)."""
        merged = w.action.merged
        if merged is None:
            return
        ops = {side: w.action.op(side) for side in SIDES}
        for side in SIDES:
            # a first match may also owe a side the read-only field the other side owns
            matched = w.link is None and w.actual.get(side) is not None and ops[side] is Op.NONE
            if ops[side] is not Op.UPDATE and not matched:
                continue
            planned = dict(w.states[side].fields or {})
            actual = w.actual.get(side) or {}
            if w.link is None:  # a first match: a field it never accepts from itself stood in
                planned.update({n: actual.get(n) for n in self.read_only[other_side(side)]})
            changed = frozenset(
                name
                for name in merged
                if name not in self.read_only[side]
                and merged.get(name) != planned.get(name)
                and merged.get(name) != actual.get(name)
            )
            w.changed[side] = changed
            ops[side] = Op.UPDATE if changed else Op.NONE
        if ops["mailbox"] is not w.action.mailbox or ops["salesforce"] is not w.action.salesforce:
            w.action = replace(w.action, mailbox=ops["mailbox"], salesforce=ops["salesforce"])

    def _pair(self, changes: dict[Side, _Changes]) -> list[_Work]:
        links: dict[int, Link] = {}
        if any(c.full for c in changes.values()):
            links = {link.id: link for link in self.state.links(self.kind) if link.id is not None}
            for side in SIDES:  # a full listing shows the scope: check what it left out
                if changes[side].full:
                    listed = {link.side_id(side) for link in links.values()} - {None}
                    self._confirm(side, changes[side], {i for i in listed if i is not None})
        else:
            for side in SIDES:
                ids = set(changes[side].upserted) | changes[side].removed | changes[side].departed
                for link in self.state.links_for(self.kind, side, ids).values():
                    if link.id is not None:
                        links[link.id] = link
        self._confirm_returning(links.values(), changes)
        work: list[_Work] = []
        linked: dict[Side, set[str]] = {"mailbox": set(), "salesforce": set()}
        for link in links.values():
            for side in SIDES:
                item_id = link.side_id(side)
                if item_id is not None:
                    linked[side].add(item_id)
            pair = self._pair_link(link, changes)
            if pair is not None:
                work.append(pair)
        new = {
            side: [
                replace(item, fields=normalize(self.kind, item.fields))
                for item_id, item in sorted(changes[side].upserted.items())
                if item_id not in linked[side]
            ]
            for side in SIDES
        }
        work.extend(self._match_and_plan(new["mailbox"], new["salesforce"], changes))
        return work

    @staticmethod
    def _out_side(link: Link) -> Side | None:
        if link.state == "mailbox_detached":
            return "mailbox"
        if link.state == "salesforce_detached":
            return "salesforce"
        return None

    def _confirm_returning(self, links: Iterable[Link], changes: dict[Side, _Changes]) -> None:
        """Items back in scope are merged with their partner's current state: fetch it."""
        wanted: dict[Side, set[str]] = {"mailbox": set(), "salesforce": set()}
        for link in links:
            out = self._out_side(link)
            out_id = link.side_id(out) if out is not None else None
            if out is not None and out_id is not None and out_id in changes[out].upserted:
                present_id = link.side_id(other_side(out))
                if present_id is not None:
                    wanted[other_side(out)].add(present_id)
        for side in SIDES:
            if wanted[side]:
                self._confirm(side, changes[side], wanted[side])

    def _pair_link(self, link: Link, changes: dict[Side, _Changes]) -> _Work | None:
        ids: dict[Side, str | None] = {side: link.side_id(side) for side in SIDES}
        departed = [s for s in SIDES if ids[s] is not None and ids[s] in changes[s].departed]
        out = self._out_side(link)
        if out is not None:
            return self._pair_detached(link, out, ids, changes)
        if departed and self.options.mirror and "salesforce" in departed:
            return self._withdrawn(link, ids, changes)
        if departed:
            return self._set_aside(link, ids, departed, changes)
        return self._returning(link, ids, changes, dirty=False)

    def _withdrawn(
        self, link: Link, ids: dict[Side, str | None], changes: dict[Side, _Changes]
    ) -> _Work:
        """A mirrored record left the Salesforce scope (closed, moved out of the window): its
        mailbox copy goes and the link is dropped."""
        item = changes["mailbox"].upserted.get(ids["mailbox"] or "")
        gone = SideState(Status.DELETED)
        op = Op.DELETE if ids["mailbox"] is not None else Op.NONE
        return _Work(
            Action(op, Op.NONE, LinkChange.DROP),
            link,
            ids,
            {"mailbox": item, "salesforce": None},
            {"mailbox": gone, "salesforce": gone},
        )

    def _pair_detached(
        self, link: Link, out: Side, ids: dict[Side, str | None], changes: dict[Side, _Changes]
    ) -> _Work | None:
        """A link whose `out` side is not synced: deleted (id None) or out of scope (id kept)."""
        present = other_side(out)
        out_id, present_id = ids[out], ids[present]
        if out_id is not None and out_id in changes[out].upserted:  # back in scope
            if present_id is not None and present_id in changes[present].departed:
                return self._relinked(  # the partner is out now
                    self._aside_until(link.detached(present), [changes[present].aside]), ids
                )
            return self._returning(replace(link, state="active", aside_until=None), ids, changes)
        if out_id is not None and out_id in changes[out].removed:  # deleted while out of scope
            return (
                self._dropped(link, ids)
                if present_id is None
                else (self._relinked(link.cleared(out), ids))
            )
        # an item that moved again while out of scope: its link lives until its new end
        known = [
            changes[side].aside
            for side in SIDES
            if ids[side] is not None and ids[side] in changes[side].aside
        ]
        later = self._aside_until(link, known) if known else link
        moved = later.aside_until != link.aside_until
        if present_id is None or present_id in changes[present].departed:
            return self._relinked(later, ids) if moved else None
        state, _ = self._side_state(link, present, changes[present])
        if state.status is not Status.DELETED:
            # a tombstone keeps the present item from being re-created over there
            return self._relinked(later, ids) if moved else None
        if out_id is None:
            return self._dropped(link, ids)
        return self._relinked(later.cleared(present), ids)  # out of scope and its partner gone

    def _relinked(self, link: Link, ids: dict[Side, str | None]) -> _Work:
        """Save a changed link row; no item is written."""
        gone = SideState(Status.DELETED)
        return _Work(
            Action(Op.NONE, Op.NONE, LinkChange.KEEP),
            link,
            ids,
            {"mailbox": None, "salesforce": None},
            {"mailbox": gone, "salesforce": gone},
            dirty=True,
        )

    def _dropped(self, link: Link, ids: dict[Side, str | None]) -> _Work:
        gone = SideState(Status.DELETED)
        return _Work(
            Action(Op.NONE, Op.NONE, LinkChange.DROP),
            link,
            ids,
            {"mailbox": None, "salesforce": None},
            {"mailbox": gone, "salesforce": gone},
        )

    def _returning(
        self,
        link: Link,
        ids: dict[Side, str | None],
        changes: dict[Side, _Changes],
        *,
        dirty: bool = True,
    ) -> _Work:
        """Plan an active link (`dirty` when it was just re-activated)."""
        link, adopted = self._adopt(link, changes)
        mb, mb_item = self._side_state(link, "mailbox", changes["mailbox"])
        sf, sf_item = self._side_state(link, "salesforce", changes["salesforce"])
        return self._planned_work(
            link,
            {"mailbox": mb, "salesforce": sf},
            {"mailbox": mb_item, "salesforce": sf_item},
            ids,
            dirty=dirty or adopted,
        )

    def _adopt(self, link: Link, changes: dict[Side, _Changes]) -> tuple[Link, bool]:
        """An item still at the version our write left it at holds what we wrote, as that side
        stored it: a difference from what we recorded (an adapter with no read-back, a side
        that rewrote a value) is its own coarser value, not a user edit. Record it as held."""
        adopted = False
        for side in SIDES:
            item_id = link.side_id(side)
            item = changes[side].upserted.get(item_id) if item_id is not None else None
            if (
                item is None
                or not item.version
                or item.version != link.side_version(side)
                or not link.side_hash(side)
            ):
                continue
            held = self._project(item)
            digest = fields_hash(held, self.names)
            if digest == link.side_hash(side):
                continue
            base = project(self.kind, link.base, self.names)
            own = {n: v for n, v in held.items() if v != base.get(n)}
            stored = {s: v for s, v in link.stored.items() if s != side}
            if own:
                stored[side] = own
            if side == "mailbox":
                link = replace(link, mailbox_hash=digest, stored=stored)
            else:
                link = replace(link, salesforce_hash=digest, stored=stored)
            adopted = True
        return link, adopted

    def _set_aside(
        self,
        link: Link,
        ids: dict[Side, str | None],
        departed: list[Side],
        changes: dict[Side, _Changes],
    ) -> _Work:
        """A side left the scope: nothing is deleted anywhere, and the link keeps the ids, so the
        item re-attaches (and merges) when it comes back instead of being created again."""
        link = self._aside_until(link, [changes[side].aside for side in departed])
        if len(departed) == 2:
            return self._relinked(link.detached("mailbox"), ids)
        out = departed[0]
        other = other_side(out)
        state, _ = self._side_state(link, other, changes[other])
        kept = link.cleared(other) if state.status is Status.DELETED else link
        return self._relinked(kept.detached(out), ids)

    def _aside_until(self, link: Link, known: Sequence[Mapping[str, SideItem]]) -> Link:
        """The link with `aside_until`: the latest end of its item, as last synced or as the
        side that left holds it now (a meeting moved far ahead keeps its link until then)."""
        if self.options.expire_before is None:
            return link
        ends = [link.base.get("end"), link.base.get("start"), link.aside_until]
        for items in known:
            for side in SIDES:
                item_id = link.side_id(side)
                item = items.get(item_id) if item_id is not None else None
                if item is not None:
                    ends.extend((item.fields.get("end"), item.fields.get("start")))
        moments = [_moment_text(e) for e in ends if isinstance(e, str) and e]
        return replace(link, aside_until=max(moments)) if moments else link

    def _match_and_plan(
        self, new_mb: list[SideItem], new_sf: list[SideItem], changes: dict[Side, _Changes]
    ) -> list[_Work]:
        pairs, rest_mb, rest_sf = match_items(self.kind, new_mb, new_sf)
        matched: list[tuple[SideItem, SideItem, Link | None]] = [(a, b, None) for a, b in pairs]
        creates_sf = self.rules.direction in (Direction.TWO_WAY, Direction.MAILBOX_TO_SF)
        creates_mb = self.rules.direction in (Direction.TWO_WAY, Direction.SF_TO_MAILBOX)
        # A side listed in full this session was seen whole: no lookup can find more there.
        if creates_sf and rest_mb and not changes["salesforce"].full:
            found, rest_mb = self._lookup("salesforce", rest_mb, changes)
            matched.extend((mine, theirs, old) for mine, theirs, old in found)
        if creates_mb and rest_sf and not changes["mailbox"].full:
            found, rest_sf = self._lookup("mailbox", rest_sf, changes)
            matched.extend((theirs, mine, old) for mine, theirs, old in found)
        work: list[_Work] = []
        for mb_item, sf_item, old in matched:
            mb = SideState(Status.NEW, self._project(mb_item), mb_item.modified_at)
            sf = SideState(Status.NEW, self._project(sf_item), sf_item.modified_at)
            work.append(self._unlinked_work(mb, sf, mb_item, sf_item, old))
        absent = SideState(Status.ABSENT)
        for item in rest_mb:
            mb = SideState(Status.NEW, self._project(item), item.modified_at)
            work.append(self._unlinked_work(mb, absent, item, None, None))
        for item in rest_sf:
            sf = SideState(Status.NEW, self._project(item), item.modified_at)
            work.append(self._unlinked_work(absent, sf, None, item, None))
        return work

    def _unlinked_work(
        self,
        mb: SideState,
        sf: SideState,
        mb_item: SideItem | None,
        sf_item: SideItem | None,
        replaces: Link | None,
    ) -> _Work:
        return self._planned_work(
            None,
            {"mailbox": mb, "salesforce": sf},
            {"mailbox": mb_item, "salesforce": sf_item},
            {
                "mailbox": mb_item.id if mb_item else None,
                "salesforce": sf_item.id if sf_item else None,
            },
            replaces=replaces,
        )

    def _lookup(
        self, side: Side, probes: list[SideItem], changes: dict[Side, _Changes]
    ) -> tuple[list[tuple[SideItem, SideItem, Link | None]], list[SideItem]]:
        """Match items about to be created on `side` against what `side` already holds."""
        seen = set(changes[side].upserted) | changes[side].removed | changes[side].departed
        candidates = [
            replace(c, fields=normalize(self.kind, c.fields))
            for c in self.repos[side].find_candidates([p.fields for p in probes])
            if c.id not in seen
        ]
        if not candidates:
            return [], probes
        links = self.state.links_for(self.kind, side, [c.id for c in candidates])
        # Free: unlinked, or left behind by a partner that was deleted. A partner that is only
        # out of scope keeps its claim, so it re-attaches when it comes back.
        free = [
            c
            for c in candidates
            if c.id not in links
            or (links[c.id].state != "active" and links[c.id].side_id(other_side(side)) is None)
        ]
        if side == "salesforce":
            pairs, rest, _ = match_items(self.kind, probes, free)
            return [(a, b, links.get(b.id)) for a, b in pairs], rest
        pairs_rev, _, rest = match_items(self.kind, free, probes)
        return [(b, a, links.get(a.id)) for a, b in pairs_rev], rest

    # --- the guard --------------------------------------------------------------------------

    def _hold(self, work: list[_Work]) -> None:
        deletes = [
            {"side": side, "id": w.ids[side], "label": w.label()}
            for w in work
            for side in SIDES
            if w.action.op(side) is Op.DELETE
        ]
        label = KIND_LABEL[self.kind]
        issue_id = self.state.record_issue(
            run_id=self.run_id,
            kind=self.kind,
            category="mass_delete",
            title=f"{len(deletes)} {label}s would be deleted",
            message=(
                f"This session would delete {len(deletes)} {label}s, more than the safety "
                "threshold. Nothing was deleted. Allow the deletions, or Restore the items."
            ),
            item_key=self.kind,
            payload={"deletes": deletes, "linked": self.state.count_active_links(self.kind)},
        )
        self.result.stopped = True
        self.result.issues.append(
            {
                "id": issue_id,
                "kind": self.kind,
                "category": "mass_delete",
                "title": f"{len(deletes)} {label}s would be deleted",
                "item_key": self.kind,
            }
        )

    def _close_mass_delete_prompts(self) -> None:
        """Nothing to hold back: open prompts and unused answers no longer apply."""
        for issue in self.state.open_issues(self.kind, "mass_delete"):
            self.state.resolve_issue(issue.id, "obsolete")
        self.state.take_mass_delete_answer(self.kind)

    def _restore(self, work: list[_Work]) -> list[_Work]:
        restored = restore_deletions([(w.action, w.states) for w in work])
        return [replace(w, action=action) for w, action in zip(work, restored, strict=True)]

    # --- applying ---------------------------------------------------------------------------

    def _apply(self, work: Sequence[_Work]) -> None:
        todo = [w for w in work if self._has_work(w)]
        # Each side writes in its own largest batches (200 per Salesforce Collections call, 20
        # per Graph $batch): a chunk is the larger size, split per side below.
        size = max(1, *(repo.max_batch for repo in self.repos.values()))
        writers = ((Op.CREATE, self._create), (Op.UPDATE, self._update), (Op.DELETE, self._delete))
        self._prepare_writes(todo)
        for start in range(0, len(todo), size):
            chunk = todo[start : start + size]
            self._journal_pairs(
                [w for w in chunk if Op.UPDATE in (w.action.mailbox, w.action.salesforce)]
            )
            for side in SIDES:
                limit = max(1, self.repos[side].max_batch)
                for op, write in writers:
                    items = [w for w in chunk if w.action.op(side) is op]
                    for first in range(0, len(items), limit):
                        write(side, items[first : first + limit])
            with self.state.transaction():
                for w in chunk:
                    self._settle(w)
            self._emit("applying", min(start + size, len(todo)), len(todo))

    def _prepare_writes(self, todo: Sequence[_Work]) -> None:
        """Let a side look up what all of the session's writes need at once (Salesforce: the
        Accounts of the contacts' companies), instead of once per batch."""
        for side in SIDES:
            prepare = getattr(self.repos[side], "prepare_writes", None)
            if prepare is None:
                continue
            sent: list[Mapping[str, FieldValue]] = []
            for w in todo:
                op = w.action.op(side)
                if op is Op.CREATE:
                    sent.append(self._sent(side, w))
                elif op is Op.UPDATE:  # the fields it changes (None: not trimmed, all of them)
                    values, changed = self._sent(side, w), w.changed.get(side)
                    sent.append(values if changed is None else {n: values.get(n) for n in changed})
            if sent:
                prepare(sent)

    def _has_work(self, w: _Work) -> bool:
        """Writes, a link change, or at least a version to refresh (a server-side touch)."""
        if w.dirty or w.action.writes or w.action.link not in (LinkChange.NONE, LinkChange.KEEP):
            return True
        link = w.link
        return (
            w.action.link is LinkChange.KEEP
            and link is not None
            and any(self._version(w, s) != link.side_version(s) for s in SIDES)
        )

    def _journal_pairs(self, work: list[_Work]) -> None:
        """Record merges and first-run matches before their writes (see `recovery`)."""
        intents: dict[Side, list[tuple[str, Mapping[str, object]]]] = {s: [] for s in SIDES}
        for w in work:
            w.pair_key = uuid.uuid4().hex
            written = [s for s in SIDES if w.action.op(s) is Op.UPDATE]
            payload = {
                "op": "update" if w.link is not None else "match",
                "link_id": w.link.id if w.link is not None else None,
                "ids": dict(w.ids),
                "written": written,
                "fields": _jsonable(w.action.merged or {}),
            }
            intents[written[0]].append((w.pair_key, payload))
        for side in SIDES:
            if intents[side]:
                self.state.add_intents(self.kind, side, intents[side])

    def _create(self, side: Side, work: list[_Work]) -> None:
        if not work:
            return
        source = other_side(side)
        intents: list[tuple[str, Mapping[str, object]]] = []
        for w in work:
            w.key = uuid.uuid4().hex
            source_item = w.items[source]
            intents.append(
                (
                    w.key,
                    {
                        "op": "create",
                        "source": source,
                        "source_id": w.ids[source],
                        "source_version": source_item.version if source_item else "",
                        "fields": _jsonable(w.action.merged or {}),
                    },
                )
            )
        self.state.add_intents(self.kind, side, intents)
        results = self.repos[side].create([NewItem(w.key or "", self._sent(side, w)) for w in work])
        self._assign(side, work, results)

    def _update(self, side: Side, work: list[_Work]) -> None:
        if not work:
            return
        updates = []
        for w in work:
            changed = w.changed.get(side)
            if changed is None:  # not trimmed (a restore): every field that differs
                current = w.states[side].fields or {}
                merged = w.action.merged or {}
                changed = frozenset(
                    n
                    for n in merged
                    if current.get(n) != merged.get(n) and n not in self.read_only[side]
                )
            updates.append(
                ItemUpdate(w.ids[side] or "", self._version(w, side), self._sent(side, w), changed)
            )
        self._assign(side, work, self.repos[side].update(updates))

    def _sent(self, side: Side, w: _Work) -> dict[str, FieldValue]:
        """The values written to `side`: merged, with its read-only fields as it holds them
        (an update) or left out (a create)."""
        values = dict(w.action.merged or {})
        if self.read_only[side]:
            actual = w.actual.get(side)
            for name in self.read_only[side]:
                if actual is not None and w.action.op(side) is Op.UPDATE:
                    values[name] = actual.get(name)
                else:
                    values.pop(name, None)
        return values

    def _stored(
        self, side: Side, w: _Work, merged: Mapping[str, FieldValue]
    ) -> dict[str, FieldValue]:
        """What `side` holds after this pair's writes: the adapter's read-back when it gave one,
        else what was sent over what it held."""
        result = w.results.get(side)
        op = w.action.op(side)
        if result is not None and result.ok and op in (Op.CREATE, Op.UPDATE):
            if result.fields is not None:
                return project(self.kind, result.fields, self.names)
            if op is Op.CREATE:
                return project(self.kind, self._sent(side, w), self.names)
            actual = w.actual.get(side) or {}
            changed = w.changed.get(side)
            return {
                name: merged.get(name)
                if (name in changed if changed is not None else name not in self.read_only[side])
                else actual.get(name)
                for name in self.names
            }
        held = w.actual.get(side)
        if held is not None:
            return project(self.kind, held, self.names)
        if w.link is not None and w.link.side_id(side) is not None:
            return self._held(w.link, side)
        return dict(merged)

    def _delete(self, side: Side, work: list[_Work]) -> None:
        if not work:
            return
        deletes = [ItemDelete(w.ids[side] or "", self._version(w, side)) for w in work]
        self._assign(side, work, self.repos[side].delete(deletes))

    def _version(self, w: _Work, side: Side) -> str:
        item = w.items[side]
        if item is not None:
            return item.version
        return w.link.side_version(side) if w.link is not None else ""

    def _assign(self, side: Side, work: list[_Work], results: list[WriteResult]) -> None:
        if len(results) != len(work):
            raise RuntimeError(
                f"{self.repos[side].__class__.__name__} returned {len(results)} results "
                f"for {len(work)} items"
            )
        for w, outcome in zip(work, results, strict=True):
            result = outcome
            if result.ok and w.action.op(side) is Op.CREATE and not result.id:
                result = WriteResult.failure(
                    "The server did not return the new item.", transient=True
                )
            w.results[side] = result

    def _settle(self, w: _Work) -> None:
        """Save what a pair's writes achieved; a partly failed pair keeps its old link and is
        re-read next session, so the merge runs again from both sides' real state."""
        failures = [(side, r) for side, r in w.results.items() if not r.ok]
        if w.pair_key is not None:  # the outcome is known either way
            self.state.finish_intents([w.pair_key])
        if failures:
            self._fail(w, failures)
            return
        action = w.action
        for side in w.results:
            counts = self.result.counts[side]
            op = action.op(side)
            if op is Op.CREATE:
                counts.created += 1
            elif op is Op.UPDATE:
                counts.updated += 1
            elif op is Op.DELETE:
                counts.deleted += 1
        self._save_link(w)
        if w.key is not None:
            self.state.finish_intents([w.key])
        if action.conflict is not None and not self.options.mirror:
            self._record_conflict(w)
        self.state.resolve_item_issues(self.kind, [w.item_key()], "synced")

    def _save_link(self, w: _Work) -> None:
        action, link = w.action, w.link
        if action.link is LinkChange.DROP:
            if link is not None and link.id is not None:
                self.state.delete_link(link.id)
            return
        if action.link in (LinkChange.DETACH_MAILBOX, LinkChange.DETACH_SALESFORCE):
            gone: Side = "mailbox" if action.link is LinkChange.DETACH_MAILBOX else "salesforce"
            if link is not None:
                self.state.save_link(link.cleared(gone).detached(gone))
            return
        if action.link is LinkChange.KEEP:
            if link is not None:
                fresh = {s: self._version(w, s) for s in SIDES}
                if w.dirty or any(fresh[s] != link.side_version(s) for s in SIDES):
                    self.state.save_link(
                        replace(
                            link,
                            mailbox_version=fresh["mailbox"],
                            salesforce_version=fresh["salesforce"],
                        )
                    )
            return
        if action.link is LinkChange.NONE or action.merged is None:
            return
        merged = project(self.kind, action.merged, self.names)
        held = {side: self._stored(side, w, merged) for side in SIDES}
        stored = {
            side: {n: v for n, v in held[side].items() if v != merged.get(n)} for side in SIDES
        }
        sides: dict[Side, tuple[str | None, str]] = {}
        for side in SIDES:
            result = w.results.get(side)
            if result is not None and result.id:
                sides[side] = (result.id, result.version or "")
            else:
                item = w.items[side]
                sides[side] = (w.ids[side], item.version if item else self._version(w, side))
        if w.replaces is not None and w.replaces.id is not None:
            self.state.delete_link(w.replaces.id)
        self.state.save_link(
            Link(
                id=link.id if link is not None else None,
                kind=self.kind,
                mailbox_id=sides["mailbox"][0],
                mailbox_version=sides["mailbox"][1],
                mailbox_hash=fields_hash(held["mailbox"], self.names),
                salesforce_id=sides["salesforce"][0],
                salesforce_version=sides["salesforce"][1],
                salesforce_hash=fields_hash(held["salesforce"], self.names),
                base=merged,
                stored={side: values for side, values in stored.items() if values},
            )
        )

    def _fail(self, w: _Work, failures: list[tuple[Side, WriteResult]]) -> None:
        self.result.failed_items += 1
        for side in SIDES:
            item_id = w.ids[side]
            if item_id is not None:
                self._failed_ids[side].add(item_id)
                self.state.add_retries(self.kind, side, [item_id])
        side, first = failures[0]
        label = KIND_LABEL[self.kind]
        where = "Salesforce" if side == "salesforce" else "the mailbox"
        title = f"Couldn't save {label} '{w.label()}' in {where}"
        issue_id = self.state.record_issue(
            run_id=self.run_id,
            kind=self.kind,
            category="error",
            title=title,
            message=first.error + (" It will be retried." if first.transient else ""),
            item_key=w.item_key(),
            payload={"side": side, "transient": first.transient, "ids": dict(w.ids)},
        )
        self.result.issues.append(
            {
                "id": issue_id,
                "kind": self.kind,
                "category": "error",
                "title": title,
                "item_key": w.item_key(),
            }
        )

    def _record_conflict(self, w: _Work) -> None:
        conflict = w.action.conflict
        if conflict is None:
            return
        label = KIND_LABEL[self.kind]
        loser = "Salesforce" if conflict.loser == "salesforce" else "mailbox"
        title = f"Conflict on {label} '{w.label()}': the {loser} version was kept aside"
        names = ", ".join(conflict.fields) or "deleted on one side, edited on the other"
        issue_id = self.state.record_issue(
            run_id=self.run_id,
            kind=self.kind,
            category="conflict",
            title=title,
            message=f"Both sides changed it ({names}); the {conflict.winner} version won.",
            item_key=w.item_key(),
            payload={
                "winner": conflict.winner,
                "fields": list(conflict.fields),
                "mailbox": _jsonable(conflict.mailbox) if conflict.mailbox else None,
                "salesforce": _jsonable(conflict.salesforce) if conflict.salesforce else None,
                "ids": dict(w.ids),
            },
        )
        self.result.conflicts += 1
        self.result.issues.append(
            {
                "id": issue_id,
                "kind": self.kind,
                "category": "conflict",
                "title": title,
                "item_key": w.item_key(),
            }
        )

    def _emit(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(Progress(self.kind, phase, done, total))


def _moment_text(value: datetime | str) -> str:
    """A moment as sortable UTC text ('...Z'); a bare date is its midnight."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = value.strip()
    if len(text) == 10:
        return f"{text}T00:00:00Z"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return _moment_text(parsed)


def _jsonable(fields: Mapping[str, FieldValue]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


def sync_kind(
    kind: Kind,
    mailbox: SideRepository,
    salesforce: SideRepository,
    state: SyncState,
    options: KindOptions,
    *,
    run_id: int | None = None,
    progress: ProgressCallback | None = None,
) -> KindResult:
    """One session for one kind; raises when a side cannot be read (the kind failed this time)."""
    return KindSession(
        kind, mailbox, salesforce, state, options, run_id=run_id, progress=progress
    ).run()
