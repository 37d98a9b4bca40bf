"""Applying the user's "keep this one" on a conflict kept in Sync Issues.

The kept values are written to both sides as ordinary conditional updates; the next read sees
both sides changed to the same values, and the planner relinks them without further writes. A
version that lost to a deletion is re-created (journalled like any create) and then syncs as new.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping

from scc_desktop.sync.fields import FieldValue, Kind, normalize, project
from scc_desktop.sync.ports import SIDES, ItemUpdate, NewItem, Side, SideRepository
from scc_desktop.sync.state import Issue, SyncState


def kept_side(issue: Issue) -> Side | None:
    """The side whose version the user chose, or None when the issue is not such a request."""
    if issue.category != "conflict" or not issue.resolution.startswith("keep_"):
        return None
    side = issue.resolution.removeprefix("keep_")
    for known in SIDES:
        if side == known:
            return known
    return None


def apply_kept_versions(
    kind: Kind, repos: Mapping[Side, SideRepository], state: SyncState, names: list[str]
) -> Counter[tuple[Side, str]]:
    """Write every pending "keep this one" of `kind`; counts writes by (side, 'created'|'updated').

    A request whose write fails stays pending and is tried again next session.
    """
    written: Counter[tuple[Side, str]] = Counter()
    for issue in state.open_issues(kind, "conflict"):
        side = kept_side(issue)
        if side is None:
            continue
        raw = issue.payload.get(side)
        if not isinstance(raw, dict):
            state.resolve_issue(issue.id, f"kept_{side}")  # nothing recorded to keep
            continue
        kept = normalize(kind, raw)
        listed = issue.payload.get("fields")
        conflicting = [str(n) for n in listed] if isinstance(listed, list) else []
        ids = issue.payload.get("ids")
        ids = ids if isinstance(ids, dict) else {}
        if conflicting:
            values = {n: kept.get(n) for n in conflicting}
            done = _overlay(kind, repos, ids, values, names=names, written=written)
        else:
            done = _recreate(kind, repos[side], side, kept, state=state, written=written)
        if done:
            state.resolve_issue(issue.id, f"kept_{side}")
    return written


def _overlay(
    kind: Kind,
    repos: Mapping[Side, SideRepository],
    ids: Mapping[str, object],
    values: dict[str, FieldValue],
    *,
    names: list[str],
    written: Counter[tuple[Side, str]],
) -> bool:
    ok = True
    for side in SIDES:
        item_id = ids.get(side)
        if not isinstance(item_id, str):
            continue
        found = repos[side].get([item_id])
        if not found or not found[0].in_scope:
            continue  # gone or out of scope since: nothing to overwrite there
        item = found[0]
        current = project(kind, item.fields, names)
        merged = {**current, **{k: v for k, v in values.items() if k in current}}
        if merged == current:
            continue
        changed = frozenset(k for k in merged if merged[k] != current.get(k))
        (result,) = repos[side].update([ItemUpdate(item.id, item.version, merged, changed)])
        ok = ok and result.ok
        written[(side, "updated")] += int(result.ok)
    return ok


def _recreate(
    kind: Kind,
    repo: SideRepository,
    side: Side,
    kept: dict[str, FieldValue],
    *,
    state: SyncState,
    written: Counter[tuple[Side, str]],
) -> bool:
    key = uuid.uuid4().hex
    state.add_intents(kind, side, [(key, {"source": None, "source_id": None, "fields": {}})])
    (result,) = repo.create([NewItem(key, kept)])
    if result.ok:
        state.finish_intents([key])
        written[(side, "created")] += 1
    return result.ok
