"""A change feed per object kind: what changed and what was deleted since the last session.

An incremental read is ONE paged `queryAll` per object kind, so a quiet session costs one call
per kind: it selects `IsDeleted` with the needed fields, filters on `SystemModstamp >= mark` (the
high-water mark) and the caller's scope, and orders by SystemModstamp. Rows with IsDeleted = true
are deletions (deleting a record bumps its SystemModstamp; their deleted date is that stamp), the
others are changed records; the mark advances over both. Salesforce keeps deleted rows queryable
by `queryAll` only while they are in the Recycle Bin (15 days, sooner when the bin overflows or is
emptied), so a full re-read replaces the incremental one when there is no previous sync point or
the last one is more than 14 days old (a day of margin for clock skew). A full read is a plain
`query`: it yields every record in scope across its pages and the caller treats linked records
missing from it as gone.

The cursor is opaque JSON (`FeedCursor.to_token()`) for the cursors table; tokens written before
the feed used `queryAll` are still read (their `deleted_since` serves as the sync point). Each
page carries the cursor to save once that page's actions are saved. The sync point only moves on
the last page of a read: the pages of a full read carry the old cursor until the last one, so an
interrupted full read starts again; the pages of an incremental read advance the mark but keep the
old sync point, so deletions not yet reached are never left to age out of the Recycle Bin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scc_desktop.salesforce.client import SalesforceClient
from scc_desktop.salesforce.records import DeletedRecord, SfRecord
from scc_desktop.salesforce.soql import select, soql_datetime, soql_name

RECYCLE_BIN_DAYS = 15  # how long Salesforce keeps deleted rows for queryAll
FULL_READ_AFTER = timedelta(days=RECYCLE_BIN_DAYS - 1)  # a day of margin for clock skew


def utcnow() -> datetime:
    return datetime.now(UTC)


def needs_full_read(since: datetime | None, now: datetime) -> bool:
    """True when an incremental read could miss something: there is no previous sync point, or it
    is old enough that deletions made after it may have left the Recycle Bin (and so `queryAll`)."""
    return since is None or now - since > FULL_READ_AFTER


@dataclass(frozen=True)
class FeedCursor:
    """Where one object kind's feed stands."""

    mark: datetime | None = None  # highest SystemModstamp delivered (changes and deletions)
    ids_at_mark: tuple[str, ...] = ()  # delivered rows whose SystemModstamp == mark
    synced_at: datetime | None = None  # when the last completed read started (the sync point)

    def to_token(self) -> str:
        return json.dumps(
            {
                "v": 2,
                "mark": self.mark.isoformat() if self.mark else None,
                "ids": list(self.ids_at_mark),
                "synced_at": self.synced_at.isoformat() if self.synced_at else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_token(cls, token: str | None) -> FeedCursor | None:
        if not token:
            return None
        try:
            data = json.loads(token)
            # v1 tokens named the sync point `deleted_since` (the next start for deleted/)
            synced = data.get("synced_at") or data.get("deleted_since")
            return cls(
                mark=datetime.fromisoformat(data["mark"]) if data.get("mark") else None,
                ids_at_mark=tuple(str(i) for i in data.get("ids") or ()),
                synced_at=datetime.fromisoformat(synced) if synced else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # an unreadable cursor means a full re-read, never a crash


@dataclass
class ChangePage:
    """One page of changes; save `cursor` after applying it."""

    sobject: str
    records: list[SfRecord]
    deleted: list[DeletedRecord]
    full: bool
    last: bool
    cursor: FeedCursor
    reason: str = ""  # why a full read happened


def _delivered(record: SfRecord, mark: datetime | None, seen_at_mark: set[str]) -> bool:
    """True for a row an earlier read already delivered.

    SOQL datetime literals have whole seconds, so `SystemModstamp >= mark` also returns rows
    from earlier in the mark's second; those, and the ones at the mark itself, were delivered.
    """
    stamp = record.system_modstamp
    if mark is None or stamp is None:
        return False
    return stamp < mark or (stamp == mark and record.id in seen_at_mark)


def _advance(
    mark: datetime | None, ids: tuple[str, ...], records: Sequence[SfRecord]
) -> tuple[datetime | None, tuple[str, ...]]:
    """Move the high-water mark over records sorted by SystemModstamp."""
    current_ids = list(ids)
    for record in records:
        stamp = record.system_modstamp
        if stamp is None:
            continue
        if mark is None or stamp > mark:
            mark, current_ids = stamp, [record.id]
        elif stamp == mark and record.id not in current_ids:
            current_ids.append(record.id)
    return mark, tuple(current_ids)


def _is_deleted(record: SfRecord) -> bool:
    value = record.get("IsDeleted")
    return value is True or (isinstance(value, str) and value.lower() == "true")


@dataclass
class ChangeFeed:
    """Reads one object kind's changes; `clock` is injectable for tests."""

    client: SalesforceClient
    clock: Callable[[], datetime] = utcnow
    batch_size: int = 2000

    def read(
        self,
        sobject: str,
        fields: Sequence[str],
        *,
        cursor: FeedCursor | None,
        where: str | None = None,
    ) -> Iterator[ChangePage]:
        soql_name(sobject)
        names = [n for n in dict.fromkeys(["Id", "SystemModstamp", *fields]) if n != "IsDeleted"]
        now = self.clock()
        since = cursor.synced_at if cursor else None
        if cursor is None or since is None:
            yield from self._full(sobject, names, where, cursor, now, "first read")
        elif needs_full_read(since, now):
            days = FULL_READ_AFTER.days
            reason = f"last sync more than {days} days ago (deletions leave the Recycle Bin)"
            yield from self._full(sobject, names, where, cursor, now, reason)
        else:
            yield from self._incremental(sobject, names, where, cursor, now)

    def _incremental(
        self,
        sobject: str,
        names: list[str],
        where: str | None,
        cursor: FeedCursor,
        now: datetime,
    ) -> Iterator[ChangePage]:
        clauses = []
        if cursor.mark is not None:
            clauses.append(f"SystemModstamp >= {soql_datetime(cursor.mark)}")
        if where:
            clauses.append(f"({where})")
        soql = select(
            sobject,
            [*names, "IsDeleted"],
            " AND ".join(clauses) or None,
            order_by="SystemModstamp ASC, Id ASC",
        )
        mark, ids = cursor.mark, cursor.ids_at_mark
        seen_at_mark = set(ids)
        for page, last in self._pages(soql, sobject, include_deleted=True):
            fresh = [r for r in page if not _delivered(r, cursor.mark, seen_at_mark)]
            mark, ids = _advance(mark, ids, fresh)
            yield ChangePage(
                sobject=sobject,
                records=[r for r in fresh if not _is_deleted(r)],
                deleted=[DeletedRecord(r.id, r.system_modstamp) for r in fresh if _is_deleted(r)],
                full=False,
                last=last,
                cursor=FeedCursor(mark, ids, now if last else cursor.synced_at),
            )

    def _full(  # noqa: PLR0917
        self,
        sobject: str,
        names: list[str],
        where: str | None,
        cursor: FeedCursor | None,
        now: datetime,
        reason: str,
    ) -> Iterator[ChangePage]:
        soql = select(sobject, names, where or None, order_by="SystemModstamp ASC, Id ASC")
        old = cursor or FeedCursor()
        mark: datetime | None = None
        ids: tuple[str, ...] = ()
        for page, last in self._pages(soql, sobject):
            mark, ids = _advance(mark, ids, page)
            yield ChangePage(
                sobject=sobject,
                records=page,
                deleted=[],
                full=True,
                last=last,
                cursor=FeedCursor(mark, ids, now) if last else old,
                reason=reason,
            )

    def _pages(
        self, soql: str, sobject: str, *, include_deleted: bool = False
    ) -> Iterator[tuple[list[SfRecord], bool]]:
        """Each page with a flag telling whether it is the last (the next one is prefetched)."""
        pages = self.client.query_records(
            soql, sobject=sobject, batch_size=self.batch_size, include_deleted=include_deleted
        )
        page: list[SfRecord] = next(pages, [])
        while True:
            following = next(pages, None)
            yield page, following is None
            if following is None:
                return
            page = following
