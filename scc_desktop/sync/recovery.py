"""Crash recovery: settle the writes a killed session journalled but never recorded.

Three kinds of intent are written (committed) before their remote call:
- `create`: the new item carries the intent's correlation key; found -> linked, not created again;
- `update`: a linked pair's merged values; if every written side now holds them, the link is saved
  as if the session had finished, so our own writes are not mistaken for user edits (which could
  otherwise overwrite an edit the user made after the crash);
- `match`: a first-run pair; it is linked again, so the pair cannot split into two records.
Intents are settled before anything is read, so a replay starts from a state that describes
every write that reached a server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from scc_desktop.sync.fields import FieldValue, Kind, fields_hash, normalize, project
from scc_desktop.sync.ports import SIDES, Side, SideItem, SideRepository, other_side
from scc_desktop.sync.state import Intent, Link, SyncState


def recover(
    kind: Kind, repos: Mapping[Side, SideRepository], state: SyncState, names: list[str]
) -> Counter[Side]:
    """Settle every pending intent of `kind`; returns recovered creates per side."""
    return _Recovery(kind, repos, state, names).run()


class _Recovery:
    def __init__(
        self, kind: Kind, repos: Mapping[Side, SideRepository], state: SyncState, names: list[str]
    ) -> None:
        self.kind = kind
        self.repos = repos
        self.state = state
        self.names = names
        self.created: Counter[Side] = Counter()

    def run(self) -> Counter[Side]:
        intents = [i for side in SIDES for i in self.state.pending_intents(self.kind, side)]
        if not intents:
            return self.created
        creates = [i for i in intents if i.payload.get("op", "create") == "create"]
        pairs = [i for i in intents if i.payload.get("op") in ("update", "match")]
        found: dict[str, SideItem] = {}
        for side in SIDES:
            keys = [i.correlation_key for i in creates if i.side == side]
            if keys:
                found.update(self.repos[side].find_by_correlation_key(keys))
        current = self._fetch(pairs)
        with self.state.transaction():
            for intent in creates:
                item = found.get(intent.correlation_key)
                if item is not None:
                    self._created(intent, item)
            for intent in pairs:
                self._paired(intent, current)
            self.state.finish_intents([i.correlation_key for i in intents])
        return self.created

    # --- creates ------------------------------------------------------------------------------

    def _created(self, intent: Intent, item: SideItem) -> None:
        self.created[intent.side] += 1
        source_id = intent.payload.get("source_id")
        if not isinstance(source_id, str):
            return  # a re-created kept version: it syncs as a new item
        if self.state.links_for(self.kind, intent.side, [item.id]):
            return
        source = other_side(intent.side)
        merged = self._merged(intent)
        digest = fields_hash(merged, self.names)
        existing = self.state.links_for(self.kind, source, [source_id]).get(source_id)
        # the hashes describe what we wrote, not what is there now: a later edit must still
        # count; so no version either (the engine takes an item still at the version of our
        # write as holding what we wrote), and a lossy side's coarser value comes back once
        ends: dict[Side, tuple[str, str]] = {
            intent.side: (item.id, ""),
            source: (source_id, str(intent.payload.get("source_version") or "")),
        }
        self.state.save_link(self._link(existing.id if existing else None, ends, digest, merged))

    # --- updates and first-run matches ------------------------------------------------------

    def _fetch(self, pairs: list[Intent]) -> dict[Side, dict[str, SideItem]]:
        wanted: dict[Side, set[str]] = {side: set() for side in SIDES}
        for intent in pairs:
            for side, item_id in self._ids(intent).items():
                if item_id is not None:
                    wanted[side].add(item_id)
        return {
            side: {item.id: item for item in self.repos[side].get(sorted(wanted[side]))}
            if wanted[side]
            else {}
            for side in SIDES
        }

    def _ids(self, intent: Intent) -> dict[Side, str | None]:
        raw = intent.payload.get("ids")
        ids = raw if isinstance(raw, dict) else {}
        return {side: ids.get(side) if isinstance(ids.get(side), str) else None for side in SIDES}

    def _paired(self, intent: Intent, current: dict[Side, dict[str, SideItem]]) -> None:
        ids = self._ids(intent)
        items = {side: current[side].get(ids[side] or "") for side in SIDES}
        merged = self._merged(intent)
        digest = fields_hash(merged, self.names)
        written = intent.payload.get("written")
        written_sides = [s for s in SIDES if isinstance(written, list) and s in written]
        landed = all(self._holds(items[s], digest) for s in written_sides)
        if intent.payload.get("op") == "update":
            link_id = intent.payload.get("link_id")
            link = self.state.link(link_id) if isinstance(link_id, int) else None
            if link is None or not landed:
                return  # not every write landed: the old link lets the merge run again
            ends = {s: (link.side_id(s) or "", self._held_version(items[s], digest)) for s in SIDES}
            self.state.save_link(self._link(link.id, ends, digest, merged))
            return
        mb_item, sf_item = items["mailbox"], items["salesforce"]
        if mb_item is None or sf_item is None:
            return
        if self.state.links_for(self.kind, "mailbox", [mb_item.id]) or self.state.links_for(
            self.kind, "salesforce", [sf_item.id]
        ):
            return
        ends = {
            "mailbox": (mb_item.id, self._held_version(mb_item, digest)),
            "salesforce": (sf_item.id, self._held_version(sf_item, digest)),
        }
        if landed:
            self.state.save_link(self._link(None, ends, digest, merged))
            return
        # Not all of the match reached both sides: link with no history, so the next session
        # merges the two as on a first run (both re-read through the retry list).
        self.state.save_link(self._link(None, ends, "", {}))
        for side in SIDES:
            self.state.add_retries(self.kind, side, [ends[side][0]])

    # --- helpers ------------------------------------------------------------------------------

    def _merged(self, intent: Intent) -> dict[str, FieldValue]:
        raw = intent.payload.get("fields")
        values = normalize(self.kind, raw if isinstance(raw, dict) else {})
        return project(self.kind, values, self.names)

    def _holds(self, item: SideItem | None, digest: str) -> bool:
        """Whether `item` holds exactly the values we meant to write."""
        if item is None:
            return False
        return fields_hash(project(self.kind, item.fields, self.names), self.names) == digest

    def _held_version(self, item: SideItem | None, digest: str) -> str:
        """The item's version when it holds exactly `digest`'s values, else none: the engine
        takes an item still at its link's version as holding what the link describes."""
        return item.version if item is not None and self._holds(item, digest) else ""

    def _link(
        self,
        link_id: int | None,
        ends: Mapping[Side, tuple[str, str]],
        digest: str,
        base: Mapping[str, FieldValue],
    ) -> Link:
        return Link(
            id=link_id,
            kind=self.kind,
            mailbox_id=ends["mailbox"][0],
            mailbox_version=ends["mailbox"][1],
            mailbox_hash=digest,
            salesforce_id=ends["salesforce"][0],
            salesforce_version=ends["salesforce"][1],
            salesforce_hash=digest,
            base=dict(base),
        )
