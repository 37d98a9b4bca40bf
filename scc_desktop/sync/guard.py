"""The mass-deletion guard: a session about to delete a large share of a kind stops and asks.

An emptied folder, a changed Salesforce scope or a broken filter looks exactly like the user
deleting everything; the guard makes that a question in Sync Issues, not an irreversible session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum

from scc_desktop.sync.planner import Action, LinkChange, Op, SideState
from scc_desktop.sync.ports import SIDES, Side, other_side


class GuardVerdict(Enum):
    CLEAR = "clear"
    TRIPPED = "tripped"


def count_deletes(actions: Sequence[Action]) -> int:
    return sum(1 for a in actions for side in SIDES if a.op(side) is Op.DELETE)


def check_mass_delete(
    actions: Sequence[Action], linked: int, *, minimum: int = 10, ratio: float = 0.2
) -> GuardVerdict:
    """Tripped when deletes exceed both `minimum` and `ratio` of the kind's linked items."""
    deletes = count_deletes(actions)
    if deletes > minimum and deletes > ratio * linked:
        return GuardVerdict.TRIPPED
    return GuardVerdict.CLEAR


def restore_deletions(pairs: Sequence[tuple[Action, Mapping[Side, SideState]]]) -> list[Action]:
    """The user's "Restore": instead of deleting the surviving copy, re-create the deleted one."""
    restored: list[Action] = []
    for action, states in pairs:
        target = next((s for s in SIDES if action.op(s) is Op.DELETE), None)
        fields = states[target].fields if target is not None else None
        if target is None or fields is None:
            restored.append(action)
            continue
        gone = other_side(target)
        ops = {gone: Op.CREATE, target: Op.NONE}
        restored.append(Action(ops["mailbox"], ops["salesforce"], LinkChange.UPDATE, dict(fields)))
    return restored
