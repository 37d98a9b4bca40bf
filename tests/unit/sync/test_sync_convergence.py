"""A Hypothesis state machine: random creates, edits and deletes on both sides, random session
boundaries, directions and policies, crashes and failing writes.

After every clean session a second session must change nothing, linked items must hold the same
values, no item may exist twice on a side, every item must be accounted for by a link, and every
edit no one contradicted must have reached both sides.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sync_harness import Harness, long_histories, short_histories

from scc_desktop.store.db import open_database
from scc_desktop.sync.memory import Faults, MemoryRepository, SimulatedCrash
from scc_desktop.sync.ports import Side
from scc_desktop.sync.state import SyncState

SIDE = st.sampled_from(["mailbox", "salesforce"])
EMAILS = st.sampled_from([None, None, "ada@x.io", "alan@x.io", "grace@x.io"])  # None: no match key
EDITABLE = st.sampled_from(["title", "phone", "city", "email", "mobile"])
VALUES = st.sampled_from([None, "a", "b", "c"])
DIRECTIONS = st.sampled_from(["two_way", "two_way", "sf_to_mailbox", "mailbox_to_sf"])
POLICIES = st.sampled_from(["newest_wins", "salesforce_wins", "mailbox_wins"])
SF_FIELDS = frozenset({"first_name", "last_name", "email", "phone", "title", "city", "notes"})


class Convergence(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.db = open_database(Path(self._dir.name) / "state.sqlite3")
        self.h = Harness(SyncState(self.db), sf_fields=SF_FIELDS, max_batch=3, page_size=4)
        self.h.set(mass_delete_min=10**6)  # the guard has its own tests
        self.tokens = itertools.count(1)
        self.pending: dict[tuple[Side, str, str], object] = {}
        # edited on both sides since the last clean session: the policy decides, not checked here
        self.contested: set[tuple[Side, str, str]] = set()
        # tokens of items moved out of their side's sync scope (a folder, a filter, a window)
        self.hidden: dict[str, set[object]] = {"mailbox": set(), "salesforce": set()}
        for side in ("mailbox", "salesforce"):
            hidden = self.hidden[side]
            self.repo(side).scope = lambda f, hidden=hidden: f.get("notes") not in hidden  # type: ignore[misc]

    def teardown(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def repo(self, side: str) -> MemoryRepository:
        return self.h.mb if side == "mailbox" else self.h.sf

    @initialize(direction=DIRECTIONS, policy=POLICIES, propagate=st.booleans())
    def configure_first(self, direction: str, policy: str, propagate: bool) -> None:
        self.h.set(direction=direction, policy=policy, propagate_mailbox_deletes=propagate)

    # --- what users do ------------------------------------------------------------------------

    @rule(side=SIDE, email=EMAILS, last=st.sampled_from(["Lovelace", "Turing"]), title=VALUES)
    def add(self, side: str, email: str | None, last: str, title: str | None) -> None:
        # `notes` carries a token no rule edits: two items with one token on a side = a duplicate
        self.repo(side).add(
            {
                "first_name": "X",
                "last_name": last,
                "email": email,
                "title": title,
                "notes": f"token-{next(self.tokens)}",
            }
        )

    @rule(side=SIDE, pick=st.integers(0, 50), name=EDITABLE, value=VALUES)
    def edit(self, side: Side, pick: int, name: str, value: str | None) -> None:
        repo = self.repo(side)
        if not repo.items:
            return
        item_id = sorted(repo.items)[pick % len(repo.items)]
        repo.edit(item_id, {name: value})
        partner = self._active_partner(side, item_id)
        if partner is not None and name in self.h.common():
            key = (side, item_id, name)
            self.pending[key] = repo.values(item_id)[name]
            other: Side = "salesforce" if side == "mailbox" else "mailbox"
            if (other, partner, name) in self.pending:  # both sides edited it: a conflict
                self.contested |= {key, (other, partner, name)}

    @rule(side=SIDE, pick=st.integers(0, 50))
    def delete(self, side: str, pick: int) -> None:
        repo = self.repo(side)
        if repo.items:
            repo.remove(sorted(repo.items)[pick % len(repo.items)])

    @rule(side=SIDE, pick=st.integers(0, 50))
    def server_touch(self, side: str, pick: int) -> None:
        repo = self.repo(side)
        if repo.items:
            repo.touch(sorted(repo.items)[pick % len(repo.items)])

    @rule(side=SIDE, pick=st.integers(0, 50), leave=st.booleans())
    def move_scope(self, side: str, pick: int, leave: bool) -> None:
        """An item leaves its side's scope (or comes back); the change feed reports it."""
        repo = self.repo(side)
        if not repo.items:
            return
        item_id = sorted(repo.items)[pick % len(repo.items)]
        token = repo.items[item_id].fields["notes"]
        if leave:
            self.hidden[side].add(token)
        else:
            self.hidden[side].discard(token)
        repo.touch(item_id)

    @rule(direction=DIRECTIONS, policy=POLICIES, propagate=st.booleans())
    def reconfigure(self, direction: str, policy: str, propagate: bool) -> None:
        self.h.set(direction=direction, policy=policy, propagate_mailbox_deletes=propagate)

    # --- sessions -----------------------------------------------------------------------------

    @rule(n=st.integers(1, 3))
    def crashing_session(self, n: int) -> None:
        """The process dies after the nth create or update on either side reached the server."""
        self._drop_overwritten_target_edits()
        for repo in (self.h.mb, self.h.sf):
            repo.faults.crash_after_creates = repo.writes_done[0] + n
            repo.faults.crash_after_updates = repo.writes_done[1] + n
        try:
            self.h.sync()
            event("crashing session: finished")
        except SimulatedCrash:
            event("crashing session: crashed")
        finally:
            for repo in (self.h.mb, self.h.sf):
                repo.faults = Faults()

    @rule(
        side=SIDE,
        fault=st.sampled_from(["fail_create", "fail_update", "fail_delete", "flaky"]),
        n=st.integers(1, 2),
    )
    def faulty_session(self, side: str, fault: str, n: int) -> None:
        """Some writes fail (or versions move by themselves); the next sessions must repair it."""
        self._drop_overwritten_target_edits()
        repo = self.repo(side)
        f = repo.faults
        f.permanent = n == 2
        if fault == "fail_create":
            f.fail_create_at = {repo.writes_done[0] + n}
        elif fault == "fail_update":
            f.fail_update_at = {repo.writes_done[1] + n}
        elif fault == "fail_delete":
            f.fail_delete_at = {repo.writes_done[2] + n}
        else:
            f.flaky_versions = True
        try:
            self.h.sync()
        finally:
            repo.faults = Faults()

    @rule()
    def session(self) -> None:
        expected = self._expected_edits()
        self.h.sync()
        self.h.assert_quiet()
        self.h.assert_converged()
        self._assert_accounted_for()
        for (side, item_id, name), value in expected.items():
            partner = self._active_partner(side, item_id)
            assert partner is not None, (side, item_id)
            other = self.h.sf if side == "mailbox" else self.h.mb
            assert self.repo(side).values(item_id)[name] == value, (side, item_id, name)
            assert other.values(partner)[name] == value, (side, item_id, name, partner)
        self.pending.clear()
        self.contested.clear()

    # --- checks ---------------------------------------------------------------------------------

    def _active_partner(self, side: Side, item_id: str) -> str | None:
        link = self.h.state.links_for("contact", side, [item_id]).get(item_id)
        if link is None or link.state != "active":
            return None
        other: Side = "salesforce" if side == "mailbox" else "mailbox"
        return link.side_id(other)

    def _drop_overwritten_target_edits(self) -> None:
        """One-way sessions revert edits made on the target: those edits are not expected back."""
        direction = self.h.options.direction.value
        target = {"sf_to_mailbox": "mailbox", "mailbox_to_sf": "salesforce"}.get(direction)
        self.pending = {k: v for k, v in self.pending.items() if k[0] != target}

    def _expected_edits(self) -> dict[tuple[Side, str, str], object]:
        """The edits that must survive this session: on a live linked pair, not contradicted by
        an edit of the same field on the partner, and made on the source in one-way mode."""
        self._drop_overwritten_target_edits()
        keep: dict[tuple[Side, str, str], object] = {}
        for (side, item_id, name), value in self.pending.items():
            if item_id not in self.repo(side).items:
                continue
            partner = self._active_partner(side, item_id)
            other_side: Side = "salesforce" if side == "mailbox" else "mailbox"
            if partner is None or partner not in self.repo(other_side).items:
                continue
            if not self._in_scope(side, item_id) or not self._in_scope(other_side, partner):
                continue
            if (side, item_id, name) in self.contested:
                continue
            keep[(side, item_id, name)] = value
        return keep

    def _in_scope(self, side: str, item_id: str) -> bool:
        return self.repo(side).items[item_id].fields["notes"] not in self.hidden[side]

    def _assert_accounted_for(self) -> None:
        """No unlinked item on a side the direction syncs from, and no duplicate on any side."""
        for repo in (self.h.mb, self.h.sf):
            tokens = [r.fields["notes"] for r in repo.items.values()]
            assert len(tokens) == len(set(tokens)), sorted(map(str, tokens))
        links = self.h.state.links("contact")
        linked_mb = {link.mailbox_id for link in links}
        linked_sf = {link.salesforce_id for link in links}
        direction = self.h.options.direction.value
        visible_mb = {i for i in self.h.mb.items if self._in_scope("mailbox", i)}
        visible_sf = {i for i in self.h.sf.items if self._in_scope("salesforce", i)}
        if direction in ("two_way", "mailbox_to_sf"):
            assert visible_mb <= linked_mb
        if direction in ("two_way", "sf_to_mailbox"):
            assert visible_sf <= linked_sf

    @invariant()
    def links_are_unique(self) -> None:
        links = self.h.state.links("contact")
        mb = [link.mailbox_id for link in links if link.mailbox_id]
        sf = [link.salesforce_id for link in links if link.salesforce_id]
        assert len(mb) == len(set(mb)) and len(sf) == len(set(sf))


class TestShortHistories(Convergence.TestCase):  # type: ignore[misc,name-defined]
    settings = short_histories


class TestLongHistories(Convergence.TestCase):  # type: ignore[misc,name-defined]
    settings = long_histories
