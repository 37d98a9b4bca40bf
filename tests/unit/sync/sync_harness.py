"""The sync tests' harness: two in-memory sides of one kind over one state file."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

from scc_desktop.sync.engine import KindOptions, KindResult, sync_kind
from scc_desktop.sync.fields import FIELDS, Kind
from scc_desktop.sync.memory import Clock, MemoryRepository
from scc_desktop.sync.planner import Direction, Policy
from scc_desktop.sync.session import KindJob, run_session
from scc_desktop.sync.state import SyncState

# Bounded so the unit suite stays fast on two cores; SCC_SYNC_THOROUGH=1 runs ten times as many.
# Applied to the sync tests only, never loaded globally. Two shapes: many short histories (a
# crash right after a create) and fewer long ones (drift across many sessions).
_SCALE = 10 if os.environ.get("SCC_SYNC_THOROUGH") == "1" else 1
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
short_histories = settings(max_examples=250 * _SCALE, stateful_step_count=12, **_COMMON)
long_histories = settings(max_examples=40 * _SCALE, stateful_step_count=50, **_COMMON)


class Harness:
    """Two in-memory sides of one kind over one state file, with helpers to sync and inspect."""

    def __init__(
        self,
        state: SyncState,
        kind: Kind = "contact",
        sf_fields: frozenset[str] | None = None,
        page_size: int = 100,
        max_batch: int = 50,
    ) -> None:
        self.state = state
        self.kind = kind
        self.clock = Clock()
        self.mb = MemoryRepository(
            "mailbox",
            kind,
            clock=self.clock,
            page_size=page_size,
            max_batch=max_batch,
            service="graph",
        )
        self.sf = MemoryRepository(
            "salesforce",
            kind,
            clock=self.clock,
            page_size=page_size,
            max_batch=max_batch,
            fields=sf_fields,
            service="salesforce",
        )
        self.options = KindOptions()

    def set(self, **changes: Any) -> None:
        values = {
            "direction": self.options.direction,
            "policy": self.options.policy,
            "propagate_mailbox_deletes": self.options.propagate_mailbox_deletes,
            "mass_delete_min": self.options.mass_delete_min,
            "mass_delete_ratio": self.options.mass_delete_ratio,
        }
        values.update(changes)
        self.options = KindOptions(
            direction=Direction(values["direction"]),
            policy=Policy(values["policy"]),
            propagate_mailbox_deletes=bool(values["propagate_mailbox_deletes"]),
            mass_delete_min=int(values["mass_delete_min"]),
            mass_delete_ratio=float(values["mass_delete_ratio"]),
        )

    def sync(self) -> KindResult:
        return sync_kind(self.kind, self.mb, self.sf, self.state, self.options)

    def session(self) -> dict[str, object]:
        return run_session([KindJob(self.kind, self.mb, self.sf, self.options)], self.state)

    def assert_quiet(self) -> None:
        """A repeated session changes nothing and writes nothing."""
        writes_before = self._writes()
        result = self.sync()
        assert result.changes == 0, result.counts_dict()
        assert result.failed_items == 0
        assert self._writes() == writes_before

    def _writes(self) -> int:
        return sum(r.calls[k] for r in (self.mb, self.sf) for k in ("create", "update", "delete"))

    def common(self) -> list[str]:
        return sorted(self.mb.fields & self.sf.fields & set(FIELDS[self.kind]))

    def pairs(self) -> list[tuple[str, str]]:
        return [
            (link.mailbox_id, link.salesforce_id)
            for link in self.state.links(self.kind)
            if link.state == "active" and link.mailbox_id and link.salesforce_id
        ]

    def assert_converged(self) -> None:
        """Every active link joins two live items holding the same synced values."""
        names = self.common()
        seen_mb: set[str] = set()
        seen_sf: set[str] = set()
        for mb_id, sf_id in self.pairs():
            assert mb_id not in seen_mb and sf_id not in seen_sf
            seen_mb.add(mb_id)
            seen_sf.add(sf_id)
            a = {n: self.mb.values(mb_id).get(n) for n in names}
            b = {n: self.sf.values(sf_id).get(n) for n in names}
            assert a == b, (mb_id, sf_id)

    def sf_by(self, name: str, value: object) -> list[str]:
        return [i for i, r in self.sf.items.items() if r.fields.get(name) == value]

    def mb_by(self, name: str, value: object) -> list[str]:
        return [i for i, r in self.mb.items.items() if r.fields.get(name) == value]
