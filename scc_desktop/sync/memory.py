"""An in-memory side repository with fault injection, for tests and benchmarks.

It behaves like a delta-capable server: every change appends to a log, a cursor is a log position,
writes are conditional on versions. Faults reproduce what the engine must survive: a failing Nth
write, a process killed right after the Nth create reached the server, and versions that move
without any content change (servers that touch records after a write).

It can also be a lossy side: `keeps` rewrites every value stored (a show-as it has no word for
becomes busy, a missing priority normal, an unknown company empty), and `read_only` names fields
it stores but never accepts from a write (mailbox attendees). Writes return the stored fields,
as a real adapter's read-back would, unless `returns_fields` is off.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from scc_desktop.sync.fields import FIELDS, FieldValue, Kind, match_keys, normalize, project
from scc_desktop.sync.ports import (
    ChangePage,
    ItemDelete,
    ItemUpdate,
    NewItem,
    Side,
    SideItem,
    WriteResult,
)


class SimulatedCrash(BaseException):
    """The process 'died' here; BaseException so no engine error handler swallows it."""


class Clock:
    """A shared logical clock, so edits on both sides are strictly ordered (newest wins)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now


@dataclass
class Faults:
    """Which writes fail. Positions count items (1-based) over the repository's lifetime."""

    fail_create_at: set[int] = field(default_factory=set)
    fail_update_at: set[int] = field(default_factory=set)
    fail_delete_at: set[int] = field(default_factory=set)
    permanent: bool = False
    crash_after_creates: int | None = None  # crash once this many creates reached the store
    crash_after_updates: int | None = None
    flaky_versions: bool = False
    fail_reads: bool = False


@dataclass
class _Record:
    version: str
    fields: dict[str, FieldValue]
    correlation_key: str | None
    modified_at: datetime


class MemoryRepository:
    """Implements `SideRepository` over a dict.

    `scope` says which items are in the sync scope (all by default); an item outside it is left
    out of listings and lookups, reported as departed by the change feed once it changes (or is
    touched), and returned by `get` with `in_scope=False`.
    """

    def __init__(
        self,
        side: Side,
        kind: Kind,
        *,
        fields: frozenset[str] | None = None,
        page_size: int = 100,
        max_batch: int = 50,
        clock: Clock | None = None,
        service: str | None = None,
    ) -> None:
        self._side = side
        self._kind = kind
        self._fields = fields if fields is not None else frozenset(FIELDS[kind])
        self._page_size = page_size
        self._max_batch = max_batch
        self.clock = clock or Clock()
        self.service = service or f"memory-{side}"
        self.faults = Faults()
        self.scope: Callable[[Mapping[str, FieldValue]], bool] = lambda _fields: True
        self.keeps: Callable[[dict[str, FieldValue]], dict[str, FieldValue]] | None = None
        self.read_only: frozenset[str] = frozenset()
        self.returns_fields = True
        self.items: dict[str, _Record] = {}
        self.calls: Counter[str] = Counter()
        self._log: list[tuple[int, str]] = []
        self._seq = 0
        self._ids = itertools.count(1)
        self._versions = itertools.count(1)
        self._creates = 0
        self._updates = 0
        self._deletes = 0

    # --- SideRepository ---------------------------------------------------------------------

    @property
    def side(self) -> Side:
        return self._side

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def fields(self) -> frozenset[str]:
        return self._fields

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def api_calls(self) -> Mapping[str, int]:
        return {self.service: sum(self.calls.values())}

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        if self.faults.fail_reads:
            self.calls["read"] += 1
            raise ConnectionError(f"{self.service} is unreachable")
        if cursor is None or int(cursor) > self._seq:
            yield from self._full_listing()
            return
        since = int(cursor)
        last: dict[str, int] = {}
        for seq, item_id in self._log:
            if seq > since:
                last[item_id] = seq
        ordered = sorted(last.items(), key=lambda pair: pair[1])
        if not ordered:
            self.calls["read"] += 1
            yield ChangePage((), (), str(self._seq))
            return
        for start in range(0, len(ordered), self._page_size):
            self.calls["read"] += 1
            chunk = ordered[start : start + self._page_size]
            upserted = [self._item(i) for i, _ in chunk if self._visible(i)]
            removed = [i for i, _ in chunk if i not in self.items]
            departed = [i for i, _ in chunk if i in self.items and not self._visible(i)]
            end = start + self._page_size >= len(ordered)
            cursor = str(self._seq if end else chunk[-1][1])
            yield ChangePage(upserted, removed, cursor, departed=departed)

    def _full_listing(self) -> Iterator[ChangePage]:
        snapshot = self._seq
        ids = sorted(i for i in self.items if self._visible(i))
        for start in range(0, max(len(ids), 1), self._page_size):
            self.calls["read"] += 1
            chunk = ids[start : start + self._page_size]
            yield ChangePage([self._item(i) for i in chunk], (), str(snapshot), full=True)

    def get(self, ids: Sequence[str]) -> list[SideItem]:
        self.calls["get"] += 1
        return [self._item(i) for i in ids if i in self.items]

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]:
        self._check_batch(items)
        self.calls["create"] += 1
        results: list[WriteResult] = []
        for new in items:
            self._creates += 1
            if self._creates in self.faults.fail_create_at:
                results.append(self._failure("create"))
                continue
            item_id = f"{self._side[:2]}{next(self._ids)}"
            self.items[item_id] = _Record(
                self._next_version(),
                self._store_fields(new.fields),
                new.correlation_key,
                self.clock.now(),
            )
            self._logged(item_id)
            results.append(self._success(item_id))
            self._after_write(item_id)
            if self._creates == self.faults.crash_after_creates:
                raise SimulatedCrash(f"crashed after {self._creates} creates")
        return results

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        self._check_batch(items)
        self.calls["update"] += 1
        results: list[WriteResult] = []
        for change in items:
            self._updates += 1
            record = self.items.get(change.id)
            if self._updates in self.faults.fail_update_at:
                results.append(self._failure("update"))
            elif record is None:
                results.append(WriteResult.failure("The item no longer exists.", transient=False))
            elif record.version != change.expected_version:
                results.append(
                    WriteResult.failure("The item changed while syncing.", transient=True)
                )
            else:
                kept = {n: record.fields.get(n) for n in self.read_only}
                record.fields = self._store_fields({**change.fields, **kept})
                record.version = self._next_version()
                record.modified_at = self.clock.now()
                self._logged(change.id)
                results.append(self._success(change.id))
                self._after_write(change.id)
            if self._updates == self.faults.crash_after_updates:
                raise SimulatedCrash(f"crashed after {self._updates} updates")
        return results

    def delete(self, items: Sequence[ItemDelete]) -> list[WriteResult]:
        self._check_batch(items)
        self.calls["delete"] += 1
        results: list[WriteResult] = []
        for gone in items:
            self._deletes += 1
            record = self.items.get(gone.id)
            if self._deletes in self.faults.fail_delete_at:
                results.append(self._failure("delete"))
            elif record is None:
                results.append(WriteResult.success(gone.id, ""))
            elif record.version != gone.expected_version:
                results.append(
                    WriteResult.failure("The item changed while syncing.", transient=True)
                )
            else:
                del self.items[gone.id]
                self._logged(gone.id)
                results.append(WriteResult.success(gone.id, ""))
        return results

    def find_by_correlation_key(self, keys: Sequence[str]) -> dict[str, SideItem]:
        self.calls["find"] += 1
        wanted = set(keys)
        return {
            r.correlation_key: self._item(i)
            for i, r in self.items.items()
            if r.correlation_key is not None and r.correlation_key in wanted
        }

    def find_candidates(self, probes: Sequence[Mapping[str, FieldValue]]) -> list[SideItem]:
        self.calls["find"] += 1
        wanted = {key for probe in probes for key in match_keys(self._kind, probe)}
        return [
            self._item(i)
            for i, r in sorted(self.items.items())
            if self._visible(i) and wanted.intersection(match_keys(self._kind, r.fields))
        ]

    # --- what a user (or the server) does, not counted as API calls -------------------------

    def add(self, fields: Mapping[str, object], *, correlation_key: str | None = None) -> str:
        item_id = f"{self._side[:2]}{next(self._ids)}"
        self.items[item_id] = _Record(
            self._next_version(),
            self._store_fields(normalize(self._kind, fields)),
            correlation_key,
            self.clock.now(),
        )
        self._logged(item_id)
        return item_id

    def edit(self, item_id: str, fields: Mapping[str, object]) -> None:
        record = self.items[item_id]
        changes = normalize(self._kind, fields)
        record.fields = self._kept(
            {**record.fields, **{k: v for k, v in changes.items() if k in self._fields}}
        )
        record.version = self._next_version()
        record.modified_at = self.clock.now()
        self._logged(item_id)

    def remove(self, item_id: str) -> None:
        del self.items[item_id]
        self._logged(item_id)

    def touch(self, item_id: str) -> None:
        """A new version with the same content (a server-side rewrite)."""
        self.items[item_id].version = self._next_version()
        self._logged(item_id)

    @property
    def writes_done(self) -> tuple[int, int, int]:
        """Creates, updates and deletes attempted so far: fault positions count from these."""
        return self._creates, self._updates, self._deletes

    def values(self, item_id: str) -> dict[str, FieldValue]:
        return dict(self.items[item_id].fields)

    def total_calls(self) -> int:
        return sum(self.calls.values())

    # --- internals --------------------------------------------------------------------------

    def _item(self, item_id: str) -> SideItem:
        r = self.items[item_id]
        return SideItem(
            item_id,
            r.version,
            dict(r.fields),
            r.correlation_key,
            r.modified_at,
            in_scope=self.scope(r.fields),
        )

    def _visible(self, item_id: str) -> bool:
        return item_id in self.items and self.scope(self.items[item_id].fields)

    def _store_fields(self, fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
        known = {k: v for k, v in fields.items() if k in self._fields}
        return self._kept(project(self._kind, known, sorted(self._fields)))

    def _kept(self, fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
        """What a lossy side makes of `fields` (see `keeps`)."""
        if self.keeps is None:
            return fields
        return project(self._kind, self.keeps(dict(fields)), sorted(self._fields))

    def _success(self, item_id: str) -> WriteResult:
        record = self.items[item_id]
        stored = dict(record.fields) if self.returns_fields else None
        return WriteResult.success(item_id, record.version, stored)

    def _next_version(self) -> str:
        return f"v{next(self._versions)}"

    def _logged(self, item_id: str) -> None:
        self._seq += 1
        self._log.append((self._seq, item_id))

    def _after_write(self, item_id: str) -> None:
        if self.faults.flaky_versions:
            self.touch(item_id)

    def _failure(self, what: str) -> WriteResult:
        if self.faults.permanent:
            return WriteResult.failure(f"The server refused the {what}.", transient=False)
        return WriteResult.failure(
            f"The server is busy; the {what} will be retried.", transient=True
        )

    def _check_batch(self, items: Sequence[object]) -> None:
        if len(items) > self._max_batch:
            raise ValueError(f"batch of {len(items)} exceeds {self._max_batch}")
