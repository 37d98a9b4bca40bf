"""The mailbox side of the engine: one `SideRepository` per kind over the `Mailbox` protocol.

Provider-neutral (Graph today, Google later). The engine owns the cursors; each repository turns
the mailbox's delta pages into `ChangePage`s and keeps what it saw this session:
- `get` answers from that cache, and fetches the other ids by id (`Mailbox.get_*`, one $batch
  per 20 ids): an id the mailbox no longer has is left out (deleted); one it still has but that
  lies outside the stream (an event beyond the calendar window, a contact moved out of the
  folder without the category) is returned out of scope;
- updates start from the item as the mailbox holds it (cached, or fetched by id in one batch),
  so what is not synced (categories, extra emails, attendees) survives;
- `SideItem.modified_at` is the mailbox's last-modified time, for the newest-wins policy.

Scope rules (events): an item in the window syncs when it carries the "Salesforce" category, or is
a meeting with meetings auto-sharing on, or an appointment with appointments auto-sharing on;
private items only with "sync private items". An item seen out of scope is reported `departed`,
so the engine sets its link aside and deletes nothing: turning a switch off never deletes a
Salesforce event. Graph's calendarView/delta reports an event that left the window (rescheduled
beyond it) as `@removed` "deleted", so every removed event is checked by id: one that still
exists is `departed` (or upserted, if it is back in the window and in scope); only one the
calendar no longer has, or a cancelled meeting, is a removal. Contacts: the "Salesforce Contacts"
folder (delta) plus contacts categorized "Salesforce" elsewhere, listed each read (one more call)
and diffed against the versions kept in the cursor, so a quiet session reports nothing; one that
lost the category is `departed`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from scc_desktop.mailbox.protocol import SALESFORCE_CATEGORY, Mailbox
from scc_desktop.mailbox.types import (
    CalendarEvent,
    Contact,
    Delete,
    DeltaPage,
    TodoTask,
    Update,
)
from scc_desktop.mailbox.types import WriteResult as MailboxWriteResult
from scc_desktop.settings import SettingsSnapshot
from scc_desktop.sync.fields import FieldValue, Kind, match_keys
from scc_desktop.sync.mailbox_mapping import (
    CONTACT_FIELDS,
    EVENT_FIELDS,
    SALESFORCE_TASKS_CATEGORY,
    TASK_CALENDAR_FIELDS,
    TASK_FIELDS,
    EventScope,
    contact_fields,
    contact_from_fields,
    event_fields,
    event_from_fields,
    event_in_scope,
    has_category,
    task_calendar_event,
    task_calendar_fields,
    task_fields,
    task_from_fields,
)
from scc_desktop.sync.ports import (
    ChangePage,
    ItemDelete,
    ItemUpdate,
    NewItem,
    Side,
    SideItem,
    SideRepository,
    WriteResult,
)

log = logging.getLogger(__name__)

T = TypeVar("T", Contact, CalendarEvent, TodoTask)
T2 = TypeVar("T2")
R = TypeVar("R")

GRAPH_BATCH = 20  # Graph $batch takes 20 requests
GRAPH_IN_FLIGHT = 4  # and a mailbox takes 4 requests in flight


def _total(mailbox: Mailbox) -> int:
    counts = mailbox.call_counts()
    if "total" in counts:
        return int(counts["total"])
    return sum(counts.values())


def _write_result(result: MailboxWriteResult[T], item_id: str = "") -> WriteResult:
    if result.ok:
        item = result.item
        new_id = item.id if item is not None and item.id else result.id or item_id
        return WriteResult.success(new_id, item.version if item is not None else "")
    message = result.error_message or result.error_code or "The mailbox refused the change."
    if result.conflict:
        return WriteResult.failure("The item changed in the mailbox while syncing.", transient=True)
    if result.not_found:
        return WriteResult.failure("The item no longer exists in the mailbox.", transient=False)
    return WriteResult.failure(message, transient=result.retryable)


_CHANGED = WriteResult.failure("The item changed in the mailbox while syncing.", transient=True)


class _MailboxRepository(Generic[T]):
    """What the three kinds share: the session cache, call metering, writes and lookups."""

    _kind: Kind
    _fields: frozenset[str]

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self._native: dict[str, T] = {}
        self._seen: dict[str, SideItem] = {}
        self._listed = False  # a full pass of the stream was read this session (no key lookups)
        self._calls = 0

    # --- SideRepository properties ---------------------------------------------------------

    @property
    def side(self) -> Side:
        return "mailbox"

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def fields(self) -> frozenset[str]:
        return self._fields

    @property
    def max_batch(self) -> int:
        # four $batch calls' worth: the connector sends them at once (Graph's 4 per mailbox)
        return GRAPH_BATCH * GRAPH_IN_FLIGHT

    def api_calls(self) -> Mapping[str, int]:
        """Calls made through this repository only (the three share one mailbox client)."""
        return {"graph": self._calls}

    # --- what each kind provides ------------------------------------------------------------

    def _stream(self, cursor: str | None) -> Iterator[DeltaPage[T]]:
        raise NotImplementedError

    def _to_fields(self, item: T) -> dict[str, FieldValue]:
        raise NotImplementedError

    def _in_scope(self, item: T) -> bool:
        return True

    def _removed(self, item: T) -> bool:
        """An item the delta lists that counts as deleted (a cancelled meeting)."""
        return False

    def _skipped(self, item: T) -> bool:
        """An item that is no syncable record at all (a series master)."""
        return False

    def _new(self, new: NewItem) -> T:
        raise NotImplementedError

    def _changed(self, change: ItemUpdate, base: T | None) -> T:
        raise NotImplementedError

    def _create(self, items: Sequence[T]) -> list[MailboxWriteResult[T]]:
        raise NotImplementedError

    def _update(self, updates: Sequence[Update[T]]) -> list[MailboxWriteResult[T]]:
        raise NotImplementedError

    def _delete(self, deletes: Sequence[Delete]) -> list[MailboxWriteResult[T]]:
        raise NotImplementedError

    def _find(self, keys: Sequence[str]) -> Mapping[str, T]:
        raise NotImplementedError

    def _fetch(self, ids: Sequence[str]) -> Mapping[str, T]:
        """The items among `ids` that exist, by id (the mailbox's get-by-ids)."""
        raise NotImplementedError

    def _reachable(self, item: T) -> bool:
        """Whether an item fetched by id lies where the stream reads (window, folder); items
        from the delta always do."""
        return True

    def _needs_base(self) -> bool:
        return True

    # --- helpers ----------------------------------------------------------------------------

    def _metered(self, pages: Iterator[T2]) -> Iterator[T2]:
        """Count the calls each step of a lazy read makes (the engine consumes it page by page)."""
        while True:
            before = _total(self.mailbox)
            try:
                value = next(pages)
            except StopIteration:
                self._calls += _total(self.mailbox) - before
                return
            self._calls += _total(self.mailbox) - before
            yield value

    def _counted(self, call: Callable[[], R]) -> R:
        before = _total(self.mailbox)
        try:
            return call()
        finally:
            self._calls += _total(self.mailbox) - before

    def _item(self, item: T, *, fetched: bool = False) -> SideItem:
        in_scope = self._in_scope(item) and not self._skipped(item)
        return SideItem(
            id=item.id,
            version=item.version,
            fields=self._to_fields(item),
            correlation_key=item.sync_key,
            modified_at=item.modified_at,
            in_scope=in_scope and (not fetched or self._reachable(item)),
        )

    def _remember(self, item: T, *, fetched: bool = False) -> SideItem:
        side_item = self._item(item, fetched=fetched)
        self._native[item.id] = item
        self._seen[item.id] = side_item
        return side_item

    def _forget(self, item_id: str) -> None:
        self._native.pop(item_id, None)
        self._seen.pop(item_id, None)

    def _page(self, page: DeltaPage[T], cursor: str) -> ChangePage:
        upserted: list[SideItem] = []
        removed: list[str] = []
        departed: list[str] = []
        for change in page.changes:
            item = change.item
            if item is None or self._removed(item):
                self._forget(change.id)
                removed.append(change.id)
            elif not self._skipped(item):
                side_item = self._remember(item)
                if side_item.in_scope:
                    upserted.append(side_item)
                else:
                    departed.append(side_item.id)
        return ChangePage(upserted, removed, cursor, full=page.full_sync, departed=departed)

    def _lookup(self, ids: Sequence[str]) -> dict[str, T]:
        """The items among `ids` that exist: this session's copy, else fetched by id (one
        batched call for all the others; what is fetched is remembered)."""
        found = {i: self._native[i] for i in ids if i in self._native}
        missing = list(dict.fromkeys(i for i in ids if i not in found))
        if missing:
            fetched = self._counted(lambda: self._fetch(missing))
            for item_id, item in fetched.items():
                self._remember(item, fetched=True)
                found[item_id] = item
        return found

    # --- SideRepository ---------------------------------------------------------------------

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        for page in self._metered(self._stream(cursor)):
            if page.full_sync and page.done:
                self._listed = True
            yield self._page(page, page.cursor)

    def get(self, ids: Sequence[str]) -> list[SideItem]:
        """Cached or fetched by id; gone ones (and cancelled meetings) are left out, ones that
        exist outside the stream's reach come back out of scope."""
        found = self._lookup(ids)
        out: list[SideItem] = []
        for item_id in dict.fromkeys(ids):
            item = found.get(item_id)
            if item is None or self._removed(item):
                continue
            side_item = self._seen.get(item.id) or self._item(item, fetched=True)
            out.append(side_item if side_item.id == item_id else replace(side_item, id=item_id))
        gone = len(set(ids)) - len(out)
        if gone:
            log.info("%d %s(s) no longer in the mailbox", gone, self._kind)
        return out

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]:
        """Idempotent per correlation key: a key already stamped on an item (a create that
        reached the mailbox before a crash, or a repeated call) answers with that item."""
        if not items:
            return []
        existing = self._existing([new.correlation_key for new in items])
        out: list[WriteResult | None] = [None] * len(items)
        todo: list[tuple[int, T]] = []
        for index, new in enumerate(items):
            found = existing.get(new.correlation_key)
            if found is not None:
                out[index] = WriteResult.success(found.id, found.version, found.fields)
            else:
                todo.append((index, self._new(new)))
        natives = [native for _, native in todo]
        results = self._counted(lambda: self._create(natives)) if natives else []
        for (index, native), result in zip(todo, results, strict=True):
            if result.ok and result.item is not None:
                # the response may lack the stamp: keep the key we sent
                item = (
                    result.item
                    if result.item.sync_key
                    else replace(result.item, sync_key=native.sync_key)
                )
                self._remember(item)
            out[index] = self._stored(_write_result(result), result)
        return [r if r is not None else WriteResult.failure("", transient=True) for r in out]

    def _stored(self, port: WriteResult, result: MailboxWriteResult[T]) -> WriteResult:
        """With the fields of the item the mailbox returned (what it stored), when it did."""
        if port.ok and result.item is not None:
            return replace(port, fields=self._to_fields(result.item))
        return port

    def _existing(self, keys: Sequence[str]) -> dict[str, SideItem]:
        """Items already stamped with `keys`: from this session's cache once the stream was
        listed in full (no call), else one lookup."""
        wanted = set(keys)
        found = {
            item.correlation_key: item
            for item in self._seen.values()
            if item.correlation_key is not None and item.correlation_key in wanted
        }
        missing = sorted(wanted - set(found))
        if missing and not self._listed:
            found.update(self.find_by_correlation_key(missing))
        return found

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        if not items:
            return []
        out: list[WriteResult | None] = [None] * len(items)
        updates: list[Update[T]] = []
        positions: list[int] = []
        bases: Mapping[str, T] = (
            self._lookup([c.id for c in items]) if self._needs_base() else self._native
        )
        for index, change in enumerate(items):
            if self._moved_on(change.id, change.expected_version):
                out[index] = _CHANGED
                continue
            base = bases.get(change.id)
            if self._needs_base() and (base is None or self._removed(base)):
                out[index] = WriteResult.failure(
                    "The item no longer exists in the mailbox.", transient=False
                )
                continue
            native = self._changed(change, base)
            updates.append(Update(native, change.expected_version))
            positions.append(index)
        results = self._counted(lambda: self._update(updates)) if updates else []
        for index, result in zip(positions, results, strict=True):
            if result.ok and result.item is not None:
                self._remember(result.item)
            out[index] = self._stored(_write_result(result, items[index].id), result)
        return [r if r is not None else WriteResult.failure("", transient=True) for r in out]

    def delete(self, items: Sequence[ItemDelete]) -> list[WriteResult]:
        if not items:
            return []
        out: list[WriteResult | None] = [
            _CHANGED if self._moved_on(d.id, d.expected_version) else None for d in items
        ]
        todo = [d for d, r in zip(items, out, strict=True) if r is None]
        deletes = [Delete(d.id, d.expected_version) for d in todo]
        results = self._counted(lambda: self._delete(deletes)) if deletes else []
        done: dict[str, WriteResult] = {}
        for gone, result in zip(todo, results, strict=True):
            if result.ok or result.not_found:  # already gone counts as deleted
                self._forget(gone.id)
                done[gone.id] = WriteResult.success(gone.id, "")
            else:
                done[gone.id] = _write_result(result, gone.id)
        return [r if r is not None else done[d.id] for d, r in zip(items, out, strict=True)]

    def _moved_on(self, item_id: str, expected: str) -> bool:
        """This session saw a newer version than the engine expects: fail like If-Match would,
        without a call (and whether or not the server checks If-Match)."""
        current = self._native.get(item_id)
        return bool(expected) and current is not None and current.version != expected

    def find_by_correlation_key(self, keys: Sequence[str]) -> dict[str, SideItem]:
        if not keys:
            return {}
        found = self._counted(lambda: self._find(keys))
        return {key: self._remember(item) for key, item in found.items()}

    def find_candidates(self, probes: Sequence[Mapping[str, FieldValue]]) -> list[SideItem]:
        """From what this session has seen: the engine only asks when the mailbox side was read
        incrementally, and after the first run every in-scope item is linked already."""
        wanted = {key for probe in probes for key in match_keys(self._kind, probe)}
        if not wanted:
            return []
        return [
            item
            for _, item in sorted(self._seen.items())
            if item.in_scope and wanted.intersection(match_keys(self._kind, item.fields))
        ]


class MailboxContacts(_MailboxRepository[Contact]):
    """The "Salesforce Contacts" folder plus contacts categorized "Salesforce" elsewhere."""

    _kind: Kind = "contact"
    _fields = CONTACT_FIELDS

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(mailbox)
        self._folder_id: str | None = None

    def _stream(self, cursor: str | None) -> Iterator[DeltaPage[Contact]]:
        return self.mailbox.read_contacts(cursor)

    def _to_fields(self, item: Contact) -> dict[str, FieldValue]:
        return contact_fields(item)

    def _new(self, new: NewItem) -> Contact:
        return contact_from_fields(new.fields, sync_key=new.correlation_key)

    def _changed(self, change: ItemUpdate, base: Contact | None) -> Contact:
        return replace(contact_from_fields(change.fields, base), id=change.id)

    def _create(self, items: Sequence[Contact]) -> list[MailboxWriteResult[Contact]]:
        return self.mailbox.create_contacts(items)

    def _update(self, updates: Sequence[Update[Contact]]) -> list[MailboxWriteResult[Contact]]:
        return self.mailbox.update_contacts(updates)

    def _delete(self, deletes: Sequence[Delete]) -> list[MailboxWriteResult[Contact]]:
        return self.mailbox.delete_contacts(deletes)

    def _find(self, keys: Sequence[str]) -> Mapping[str, Contact]:
        return self.mailbox.find_contacts_by_key(keys)

    def _fetch(self, ids: Sequence[str]) -> Mapping[str, Contact]:
        return self.mailbox.get_contacts(ids)

    def _reachable(self, item: Contact) -> bool:
        """In the "Salesforce Contacts" folder, or categorized "Salesforce"."""
        if any(c.strip().lower() == SALESFORCE_CATEGORY.lower() for c in item.categories):
            return True
        if self._folder_id is None:
            self._folder_id = self._counted(self.mailbox.ensure_setup).contacts_folder_id
        return not item.folder or item.folder == self._folder_id

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        delta_cursor, known, default_cursor = _split_cursor(cursor)
        full = False
        last = delta_cursor
        seen: set[str] = set()
        for page in self._metered(self._stream(delta_cursor)):
            full = full or page.full_sync
            if page.full_sync and page.done:
                self._listed = True
            last = page.cursor
            out = self._page(page, _join_cursor(last, known, default_cursor))
            seen.update(i.id for i in out.upserted)
            yield out
        if self._counted(self.mailbox.default_contacts_folder):
            yield self._categorized_by_delta(last, known, default_cursor, full, seen)
        else:  # the default folder is unknown: the filtered list (one call per 1,000)
            yield self._categorized_by_list(last, known, full, seen)

    def _categorized(self, item: Contact) -> bool:
        return any(c.strip().lower() == SALESFORCE_CATEGORY.lower() for c in item.categories)

    def _categorized_by_delta(
        self,
        last: str | None,
        known: Mapping[str, str] | None,
        default_cursor: str | None,
        full: bool,
        seen: set[str],
    ) -> ChangePage:
        """Contacts of the default folder categorized "Salesforce", from a delta of that folder
        filtered here: a quiet session costs one call whatever the number of shared contacts.

        `known` (their versions at the last session) tells a contact that lost the category
        (departed) from one never shared. A full pass of our own folder lists the default
        folder in full too (the engine takes what a full pass does not list as deleted)."""
        relist = full or known is None or default_cursor is None
        versions: dict[str, str] = {} if relist or known is None else dict(known)
        upserted: list[SideItem] = []
        departed: list[str] = []
        removed_ids: list[str] = []
        listed_in_full = relist
        out_cursor = default_cursor
        latest: dict[str, Contact | None] = {}  # the last news of each id in this pass
        pages = self.mailbox.read_default_contacts(None if relist else default_cursor)
        for page in self._metered(pages):
            listed_in_full = listed_in_full or page.full_sync
            out_cursor = page.cursor
            for change in page.changes:
                latest[change.id] = change.item
        for item_id, item in latest.items():
            if item is not None and self._categorized(item):
                side_item = self._remember(item)
                if relist or known is None or known.get(item_id) != item.version:
                    upserted.append(side_item)
                versions[item_id] = item.version
            elif known is not None and item_id in known and item_id not in seen:
                versions.pop(item_id, None)
                if item is None:  # gone from the folder: deleted or moved away
                    removed_ids.append(item_id)
                else:  # still there, without the category
                    departed.append(item_id)
        listed = {i.id for i in upserted} | set(versions)
        if listed_in_full and known is not None:
            # a full pass lists every categorized contact: the known ones it did not list
            removed_ids += [i for i in known if i not in listed and i not in seen]
        missing = list(dict.fromkeys(removed_ids))
        # one get-by-ids call tells deleted (removed) from moved elsewhere (departed)
        still_there = self._counted(lambda: self._fetch(missing)) if missing else {}
        removed = [i for i in missing if i not in still_there]
        departed += [i for i in missing if i in still_there]
        return ChangePage(
            upserted,
            removed,
            _join_cursor(last or "", versions, out_cursor),
            full=full,
            departed=list(dict.fromkeys(departed)),
        )

    def _categorized_by_list(
        self,
        last: str | None,
        known: Mapping[str, str] | None,
        full: bool,
        seen: set[str],
    ) -> ChangePage:
        categorized = self._counted(lambda: list(self.mailbox.list_categorized_contacts()))
        versions = {c.id: c.version for c in categorized}
        relist = full or known is None
        upserted = [
            item
            for item in map(self._remember, categorized)
            if relist or known is None or known.get(item.id) != item.version
        ]
        missing = [] if known is None else [i for i in known if i not in versions and i not in seen]
        # A categorized contact that left the list was either deleted or lost its category:
        # one get-by-ids call tells them apart (gone = removed; still there = departed).
        still_there = self._counted(lambda: self._fetch(missing)) if missing else {}
        removed = [i for i in missing if i not in still_there]
        departed = [i for i in missing if i in still_there]
        return ChangePage(
            upserted, removed, _join_cursor(last or "", versions), full=full, departed=departed
        )


def _split_cursor(
    cursor: str | None,
) -> tuple[str | None, dict[str, str] | None, str | None]:
    """(delta cursor, categorized contacts' versions, default folder's delta cursor) of a
    contacts cursor; Nones to start over."""
    if not cursor:
        return None, None, None
    try:
        data = json.loads(cursor)
    except ValueError:
        return None, None, None
    if not isinstance(data, dict) or "d" not in data:
        return None, None, None
    delta = data.get("d")
    known = data.get("c")
    default = data.get("x")
    return (
        delta if isinstance(delta, str) and delta else None,
        {str(k): str(v) for k, v in known.items()} if isinstance(known, dict) else None,
        default if isinstance(default, str) and default else None,
    )


def _join_cursor(
    delta: str | None, known: Mapping[str, str] | None, default: str | None = None
) -> str:
    data: dict[str, object] = {"d": delta or "", "c": dict(known) if known is not None else None}
    if default:
        data["x"] = default
    return json.dumps(data)


def _scope_key(scope: EventScope) -> str:
    return f"m{int(scope.meetings)}a{int(scope.appointments)}p{int(scope.private)}"


def _split_scoped(cursor: str | None) -> tuple[str | None, str | None]:
    """(delta cursor, scope key) of an events cursor; an older, unscoped one has no scope."""
    if not cursor:
        return None, None
    try:
        data = json.loads(cursor)
    except ValueError:
        return cursor, None
    if isinstance(data, dict) and set(data) == {"s", "d"}:
        return (str(data["d"]) or None), str(data["s"])
    return cursor, None


class MailboxEvents(_MailboxRepository[CalendarEvent]):
    """The calendar window's occurrences that are in scope (see the module docstring)."""

    _kind: Kind = "event"
    _fields = EVENT_FIELDS
    # read from the mailbox, never written to it (that would send invitations, or answer for
    # someone else): see ports
    read_only = frozenset({"attendees", "responses"})

    def __init__(
        self, mailbox: Mailbox, scope: EventScope, window: tuple[datetime, datetime]
    ) -> None:
        super().__init__(mailbox)
        self.scope = scope
        self.window = window

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        """The delta cursor travels with the scope it was taken under: when a switch changes
        (meetings, appointments, private items) the calendar is listed again in full, or items
        that just came into scope would never be read until they were edited."""
        delta, scope = _split_scoped(cursor)
        current = _scope_key(self.scope)
        if scope != current:
            delta = None
        for page in super().read_changes(delta):
            yield replace(page, cursor=json.dumps({"s": current, "d": page.cursor}))

    def _stream(self, cursor: str | None) -> Iterator[DeltaPage[CalendarEvent]]:
        return self.mailbox.read_events(cursor, self.window[0], self.window[1])

    def _to_fields(self, item: CalendarEvent) -> dict[str, FieldValue]:
        return event_fields(item)

    def _in_scope(self, item: CalendarEvent) -> bool:
        return event_in_scope(item, self.scope)

    def _removed(self, item: CalendarEvent) -> bool:
        return item.is_cancelled

    def _skipped(self, item: CalendarEvent) -> bool:
        return item.occurrence_type.value == "seriesMaster"

    def _new(self, new: NewItem) -> CalendarEvent:
        return event_from_fields(new.fields, sync_key=new.correlation_key)

    def _changed(self, change: ItemUpdate, base: CalendarEvent | None) -> CalendarEvent:
        return replace(event_from_fields(change.fields, base), id=change.id)

    def _create(self, items: Sequence[CalendarEvent]) -> list[MailboxWriteResult[CalendarEvent]]:
        return self.mailbox.create_events(items)

    def _update(
        self, updates: Sequence[Update[CalendarEvent]]
    ) -> list[MailboxWriteResult[CalendarEvent]]:
        return self.mailbox.update_events(updates)

    def _delete(self, deletes: Sequence[Delete]) -> list[MailboxWriteResult[CalendarEvent]]:
        return self.mailbox.delete_events(deletes)

    def _find(self, keys: Sequence[str]) -> Mapping[str, CalendarEvent]:
        return self.mailbox.find_events_by_key(keys)

    def _fetch(self, ids: Sequence[str]) -> Mapping[str, CalendarEvent]:
        return self.mailbox.get_events(ids)

    def _reachable(self, item: CalendarEvent) -> bool:
        """Overlaps the window widened to whole UTC days (the delta's window)."""
        first, last = _whole_days(*self.window)
        return item.start < last and (item.end > first or item.start >= first)

    def _page(self, page: DeltaPage[CalendarEvent], cursor: str) -> ChangePage:
        """Check the events the delta reports removed: calendarView/delta also reports an event
        that left the window (moved beyond it) as removed, and deleting the Salesforce event
        for a rescheduled meeting would be wrong. One batched fetch per page that has any."""
        out = super()._page(page, cursor)
        reported = [c.id for c in page.changes if c.item is None]
        if not reported:
            return out
        found = self._counted(lambda: self.mailbox.get_events(reported))
        if not found:
            return out
        upserted = list(out.upserted)
        departed = list(out.departed)
        removed: list[str] = []
        for item_id in out.removed:
            item = found.get(item_id)
            if item is None or self._removed(item):
                removed.append(item_id)  # gone from the calendar, or a cancelled meeting
                continue
            side_item = self._remember(item, fetched=True)
            if side_item.in_scope:
                upserted.append(side_item)  # back in the window (a replay)
            else:
                departed.append(item_id)  # still exists: beyond the window or out of scope
        if len(removed) < len(out.removed):
            log.info(
                "%d event(s) reported removed still exist: set aside, not deleted",
                len(out.removed) - len(removed),
            )
        return replace(out, upserted=upserted, removed=removed, departed=departed)


class MailboxTaskCalendar(MailboxEvents):
    """The calendar items showing Salesforce Tasks (`show_sf_tasks_in_calendar`): the window's
    items in the "Salesforce Tasks" category, kind "task_calendar", written from Salesforce
    only. Its own delta cursor; the category is created once, like "Salesforce"."""

    _kind: Kind = "task_calendar"
    _fields = TASK_CALENDAR_FIELDS
    read_only: frozenset[str] = frozenset()

    def __init__(self, mailbox: Mailbox, window: tuple[datetime, datetime]) -> None:
        super().__init__(mailbox, EventScope(), window)

    def ensure_category(self) -> None:
        ensure = getattr(self.mailbox, "ensure_category", None)
        if callable(ensure):
            self._counted(lambda: ensure(SALESFORCE_TASKS_CATEGORY))

    def _to_fields(self, item: CalendarEvent) -> dict[str, FieldValue]:
        return task_calendar_fields(item)

    def _in_scope(self, item: CalendarEvent) -> bool:
        return not item.is_cancelled and has_category(item, SALESFORCE_TASKS_CATEGORY)

    def _new(self, new: NewItem) -> CalendarEvent:
        return task_calendar_event(new.fields, sync_key=new.correlation_key)

    def _changed(self, change: ItemUpdate, base: CalendarEvent | None) -> CalendarEvent:
        return replace(task_calendar_event(change.fields, base), id=change.id)


class MailboxTasks(_MailboxRepository[TodoTask]):
    """The "Salesforce Tasks" To Do list; every synced field is written, so no base is needed."""

    _kind: Kind = "task"
    _fields = TASK_FIELDS

    def _stream(self, cursor: str | None) -> Iterator[DeltaPage[TodoTask]]:
        return self.mailbox.read_tasks(cursor)

    def _to_fields(self, item: TodoTask) -> dict[str, FieldValue]:
        return task_fields(item)

    def _needs_base(self) -> bool:
        return False

    def _new(self, new: NewItem) -> TodoTask:
        return task_from_fields(new.fields, sync_key=new.correlation_key)

    def _changed(self, change: ItemUpdate, base: TodoTask | None) -> TodoTask:
        return replace(task_from_fields(change.fields, base), id=change.id)

    def _create(self, items: Sequence[TodoTask]) -> list[MailboxWriteResult[TodoTask]]:
        return self.mailbox.create_tasks(items)

    def _update(self, updates: Sequence[Update[TodoTask]]) -> list[MailboxWriteResult[TodoTask]]:
        return self.mailbox.update_tasks(updates)

    def _delete(self, deletes: Sequence[Delete]) -> list[MailboxWriteResult[TodoTask]]:
        return self.mailbox.delete_tasks(deletes)

    def _find(self, keys: Sequence[str]) -> Mapping[str, TodoTask]:
        return self.mailbox.find_tasks_by_key(keys)

    def _fetch(self, ids: Sequence[str]) -> Mapping[str, TodoTask]:
        return self.mailbox.get_tasks(ids)


def _whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window widened to whole UTC days, as the mailbox reads it."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last_utc = end.astimezone(UTC)
    last = last_utc.replace(hour=0, minute=0, second=0, microsecond=0)
    if last < last_utc:
        last += timedelta(days=1)
    return first, max(last, first + timedelta(days=1))


def calendar_window(settings: SettingsSnapshot, now: datetime) -> tuple[datetime, datetime]:
    return (
        now - timedelta(days=settings.number("calendar_days_back")),
        now + timedelta(days=settings.number("calendar_days_ahead")),
    )


def event_scope(settings: SettingsSnapshot) -> EventScope:
    return EventScope(
        meetings=settings.flag("meetings_autoshare"),
        appointments=settings.flag("appointments_autoshare"),
        private=settings.flag("sync_private_items"),
    )


def mailbox_repositories(
    mailbox: Mailbox, settings: SettingsSnapshot, *, now: datetime
) -> dict[Kind, SideRepository]:
    """The three mailbox repositories of one session (build them anew for each session: they
    cache what they read). Sets the mailbox up (folders, list, category) first."""
    contacts = MailboxContacts(mailbox)
    contacts._counted(mailbox.ensure_setup)
    return {
        "contact": contacts,
        "event": MailboxEvents(mailbox, event_scope(settings), calendar_window(settings, now)),
        "task": MailboxTasks(mailbox),
    }


def task_calendar_repository(
    mailbox: Mailbox, settings: SettingsSnapshot, *, now: datetime
) -> MailboxTaskCalendar:
    """The calendar items showing Salesforce Tasks, for a session that runs that kind."""
    return MailboxTaskCalendar(mailbox, calendar_window(settings, now))
