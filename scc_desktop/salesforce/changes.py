"""A change feed per object kind: what changed and what was deleted since the last session.

Changes come from a SystemModstamp high-water mark (one paged query that selects only the needed
fields and applies the caller's scope filter; a quiet session costs one call), deletions from
`sobjects/{T}/deleted/` (one call). A full re-read replaces both when the windows are exceeded:
no previous sync point, the last one more than 30 days ago (the replication window), or
`earliestDateAvailable` after it (deleted records already purged, 15 days). A full read yields
every record in scope across its pages; the caller treats linked records missing from it as gone.

The cursor is opaque JSON (`FeedCursor.to_token()`) for the cursors table. Each page carries the
cursor to save once that page's actions are saved; the pages of a full read carry the old cursor
until the last one, so an interrupted full read starts again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scc_desktop.salesforce.client import SalesforceClient
from scc_desktop.salesforce.errors import RequestRefused
from scc_desktop.salesforce.records import DeletedRecord, SfRecord, parse_sf_datetime
from scc_desktop.salesforce.soql import select, soql_datetime, soql_name

UPDATED_WINDOW = timedelta(days=30)
MIN_DELETED_SPAN = timedelta(minutes=1)
CLOCK_MARGIN = timedelta(minutes=10)  # re-ask deletions this far back: tolerates clock skew


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    """The replication API's datetime format (seconds are truncated by Salesforce anyway)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def needs_full_read(
    since: datetime | None, now: datetime, earliest_available: datetime | None = None
) -> bool:
    """True when an incremental read could miss something."""
    if since is None:
        return True
    if now - since > UPDATED_WINDOW:
        return True
    return earliest_available is not None and earliest_available > since


@dataclass(frozen=True)
class FeedCursor:
    """Where one object kind's feed stands."""

    mark: datetime | None = None  # highest SystemModstamp delivered
    ids_at_mark: tuple[str, ...] = ()  # delivered records whose SystemModstamp == mark
    deleted_since: datetime | None = None  # next start for deleted/

    def to_token(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "mark": self.mark.isoformat() if self.mark else None,
                "ids": list(self.ids_at_mark),
                "deleted_since": self.deleted_since.isoformat() if self.deleted_since else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_token(cls, token: str | None) -> FeedCursor | None:
        if not token:
            return None
        try:
            data = json.loads(token)
            return cls(
                mark=datetime.fromisoformat(data["mark"]) if data.get("mark") else None,
                ids_at_mark=tuple(str(i) for i in data.get("ids") or ()),
                deleted_since=(
                    datetime.fromisoformat(data["deleted_since"])
                    if data.get("deleted_since")
                    else None
                ),
            )
        except (ValueError, KeyError, TypeError):
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
    """True for a record an earlier read already delivered.

    SOQL datetime literals have whole seconds, so `SystemModstamp >= mark` also returns records
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
        names = list(dict.fromkeys(["Id", "SystemModstamp", *fields]))
        now = self.clock()
        since = cursor.deleted_since if cursor else None
        reason = ""
        if cursor is None or since is None:
            reason = "first read"
        elif now - since > UPDATED_WINDOW:
            reason = "last sync more than 30 days ago"
        deleted: list[DeletedRecord] = []
        deleted_next = since
        if not reason and since is not None and now - since >= MIN_DELETED_SPAN:
            try:
                answer = (
                    self.client.restful(
                        f"sobjects/{sobject}/deleted/",
                        params={"start": _iso(since), "end": _iso(now)},
                    )
                    or {}
                )
            except RequestRefused as exc:
                if exc.error_code != "INVALID_REPLICATION_DATE":
                    raise
                answer = {"earliestDateAvailable": _iso(now)}  # the window has passed
            earliest = parse_sf_datetime(answer.get("earliestDateAvailable"))
            if needs_full_read(since, now, earliest):
                reason = "deleted records purged since the last sync"
            else:
                deleted = [
                    DeletedRecord(str(d.get("id")), parse_sf_datetime(d.get("deletedDate")))
                    for d in answer.get("deletedRecords") or ()
                ]
                covered = parse_sf_datetime(answer.get("latestDateCovered"))
                deleted_next = max(since, (covered or now) - CLOCK_MARGIN)
        if reason:
            yield from self._full(sobject, names, where, cursor, now, reason)
            return
        assert cursor is not None
        yield from self._incremental(sobject, names, where, cursor, deleted, deleted_next)

    def _incremental(  # noqa: PLR0917
        self,
        sobject: str,
        names: list[str],
        where: str | None,
        cursor: FeedCursor,
        deleted: list[DeletedRecord],
        deleted_next: datetime | None,
    ) -> Iterator[ChangePage]:
        clauses = []
        if cursor.mark is not None:
            clauses.append(f"SystemModstamp >= {soql_datetime(cursor.mark)}")
        if where:
            clauses.append(f"({where})")
        soql = select(
            sobject, names, " AND ".join(clauses) or None, order_by="SystemModstamp ASC, Id ASC"
        )
        mark, ids = cursor.mark, cursor.ids_at_mark
        seen_at_mark = set(ids)
        first = True
        for page, last in self._pages(soql, sobject):
            fresh = [r for r in page if not _delivered(r, cursor.mark, seen_at_mark)]
            mark, ids = _advance(mark, ids, fresh)
            yield ChangePage(
                sobject=sobject,
                records=fresh,
                deleted=deleted if first else [],
                full=False,
                last=last,
                cursor=FeedCursor(mark, ids, deleted_next),
            )
            first = False

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
                cursor=FeedCursor(mark, ids, now - CLOCK_MARGIN) if last else old,
                reason=reason,
            )

    def _pages(self, soql: str, sobject: str) -> Iterator[tuple[list[SfRecord], bool]]:
        """Each page with a flag telling whether it is the last (the next one is prefetched)."""
        pages = self.client.query_records(soql, sobject=sobject, batch_size=self.batch_size)
        page: list[SfRecord] = next(pages, [])
        while True:
            following = next(pages, None)
            yield page, following is None
            if following is None:
                return
            page = following
