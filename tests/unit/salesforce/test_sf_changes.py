"""The change feed's window logic against a fake client (no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from scc_desktop.salesforce.changes import (
    FULL_READ_AFTER,
    ChangeFeed,
    FeedCursor,
    needs_full_read,
)
from scc_desktop.salesforce.records import SfRecord

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeClient:
    """Serves `records` to any query; `deleted` rows (IsDeleted = true) only to queryAll."""

    def __init__(
        self,
        records: list[dict[str, Any]],
        deleted: list[dict[str, Any]] | None = None,
        page_size: int = 2,
    ) -> None:
        self.records = records
        self.deleted = deleted or []
        self.page_size = page_size
        self.queries: list[str] = []
        self.include_deleted: list[bool] = []

    def query_records(
        self,
        soql: str,
        *,
        sobject: str | None = None,
        batch_size: int = 2000,
        include_deleted: bool = False,
    ) -> Iterator[list[SfRecord]]:
        self.queries.append(soql)
        self.include_deleted.append(include_deleted)
        raw = [{**r, "IsDeleted": False} for r in self.records]
        if include_deleted:
            raw += [{**r, "IsDeleted": True} for r in self.deleted]
        rows = [SfRecord.from_api({"attributes": {"type": "Contact"}, **r}) for r in raw]
        if "SystemModstamp >= " in soql:
            mark = datetime.fromisoformat(
                soql.split("SystemModstamp >= ")[1].split(" ", maxsplit=1)[0]
            )
            rows = [r for r in rows if r.system_modstamp and r.system_modstamp >= mark]
        rows.sort(key=lambda r: (r.system_modstamp, r.id))
        if not rows:
            yield []
        for i in range(0, len(rows), self.page_size):
            yield rows[i : i + self.page_size]


def rec(i: int, at: datetime) -> dict[str, Any]:
    return {"Id": f"003{i:015d}", "SystemModstamp": stamp(at), "LastName": f"N{i}"}


def feed(client: FakeClient) -> ChangeFeed:
    return ChangeFeed(client, clock=lambda: NOW)  # type: ignore[arg-type]


def dele(i: int, at: datetime) -> dict[str, Any]:
    """A row in the Recycle Bin: deleting bumped its SystemModstamp to `at`."""
    return {"Id": f"003DEL{i:012d}", "SystemModstamp": stamp(at), "LastName": f"D{i}"}


def test_needs_full_read_rules() -> None:
    assert needs_full_read(None, NOW)
    assert timedelta(days=14) == FULL_READ_AFTER  # the Recycle Bin keeps deletions 15 days
    assert needs_full_read(NOW - timedelta(days=14, minutes=1), NOW)
    assert not needs_full_read(NOW - timedelta(days=14), NOW)
    assert not needs_full_read(NOW - timedelta(days=1), NOW)


def test_first_read_is_full_and_only_last_page_advances_cursor() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient([rec(i, t + timedelta(minutes=i)) for i in range(5)], deleted=[dele(1, t)])
    pages = list(feed(client).read("Contact", ["LastName"], cursor=None))
    assert [p.full for p in pages] == [True] * 3
    assert [p.last for p in pages] == [False, False, True]
    assert sum(len(p.records) for p in pages) == 5
    assert all(p.deleted == [] for p in pages)
    assert pages[0].cursor == FeedCursor()  # unchanged until the read completes
    final = pages[-1].cursor
    assert final.mark == t + timedelta(minutes=4)
    assert final.ids_at_mark == ("003000000000000004",)
    assert final.synced_at == NOW
    assert client.include_deleted == [False]  # a full read is a plain query
    assert client.queries[0].startswith("SELECT Id, SystemModstamp, LastName FROM Contact")


def test_incremental_read_is_one_query_all_with_changes_and_deletions() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient(
        [rec(1, t), rec(2, t), rec(3, t + timedelta(minutes=5))],
        deleted=[dele(1, NOW - timedelta(minutes=3)), dele(2, t - timedelta(minutes=1))],
    )
    cursor = FeedCursor(t, ("003000000000000001",), NOW - timedelta(hours=2))
    pages = list(feed(client).read("Contact", ["LastName"], cursor=cursor, where="OwnerId = 'x'"))
    got = [r.id for p in pages for r in p.records]
    assert got == ["003000000000000002", "003000000000000003"]
    # the deletion before the mark was delivered by an earlier read
    deleted = [d for p in pages for d in p.deleted]
    assert [d.id for d in deleted] == ["003DEL000000000001"]
    assert deleted[0].deleted_at == NOW - timedelta(minutes=3)
    assert not any(p.full for p in pages)
    assert pages[-1].cursor.mark == NOW - timedelta(minutes=3)  # advanced over the deletion
    assert pages[-1].cursor.ids_at_mark == ("003DEL000000000001",)
    assert pages[-1].cursor.synced_at == NOW
    assert client.include_deleted == [True] and len(client.queries) == 1
    soql = client.queries[0]
    assert soql.startswith("SELECT Id, SystemModstamp, LastName, IsDeleted FROM Contact")
    assert "SystemModstamp >= " in soql and "(OwnerId = 'x')" in soql


def test_incremental_pages_keep_the_old_sync_point_until_the_last() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient([rec(i, t + timedelta(minutes=i)) for i in range(1, 4)])
    old = NOW - timedelta(days=13)
    pages = list(feed(client).read("Contact", [], cursor=FeedCursor(t, (), old)))
    assert [p.last for p in pages] == [False, True]
    assert pages[0].cursor.mark == t + timedelta(minutes=2)  # the mark advances page by page
    assert pages[0].cursor.synced_at == old  # deletions further on must not age out unseen
    assert pages[-1].cursor.synced_at == NOW


def test_quiet_incremental_keeps_the_mark() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient([rec(1, t)])
    cursor = FeedCursor(t, ("003000000000000001",), NOW - timedelta(hours=2))
    pages = list(feed(client).read("Contact", [], cursor=cursor))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].deleted == []
    assert pages[0].last and not pages[0].full
    assert pages[0].cursor.mark == t
    assert pages[0].cursor.ids_at_mark == ("003000000000000001",)
    assert len(client.queries) == 1  # one call for a quiet session


def test_sync_point_older_than_14_days_forces_a_full_read() -> None:
    t = NOW - timedelta(days=15)
    client = FakeClient([rec(1, t)], deleted=[dele(1, NOW - timedelta(days=1))])
    pages = list(feed(client).read("Contact", [], cursor=FeedCursor(t, (), t)))
    assert pages[0].full and pages[0].last and "14 days" in pages[0].reason
    assert [r.id for r in pages[0].records] == ["003000000000000001"]
    assert pages[0].deleted == []
    assert client.include_deleted == [False]
    assert "SystemModstamp >=" not in client.queries[0]
    assert pages[0].cursor.synced_at == NOW


def test_cursor_round_trip_and_garbage() -> None:
    c = FeedCursor(NOW, ("a", "b"), NOW - timedelta(days=1))
    assert FeedCursor.from_token(c.to_token()) == c
    assert FeedCursor.from_token("not json") is None
    assert FeedCursor.from_token("[1]") is None
    assert FeedCursor.from_token(None) is None


def test_old_tokens_lead_to_the_right_read() -> None:
    def v1(since: datetime) -> str:
        return (
            f'{{"v":1,"mark":"{(NOW - timedelta(hours=1)).isoformat()}","ids":["a"],'
            f'"deleted_since":"{since.isoformat()}"}}'
        )

    recent = FeedCursor.from_token(v1(NOW - timedelta(days=2)))
    assert recent == FeedCursor(NOW - timedelta(hours=1), ("a",), NOW - timedelta(days=2))
    client = FakeClient([rec(1, NOW - timedelta(minutes=5))])
    pages = list(feed(client).read("Contact", [], cursor=recent))
    assert not pages[0].full and client.include_deleted == [True]

    stale = FeedCursor.from_token(v1(NOW - timedelta(days=20)))
    client = FakeClient([rec(1, NOW - timedelta(minutes=5))])
    assert next(feed(client).read("Contact", [], cursor=stale)).full

    no_point = FeedCursor.from_token('{"v":1,"mark":null,"ids":[],"deleted_since":null}')
    client = FakeClient([])
    assert next(feed(client).read("Contact", [], cursor=no_point)).full


def test_millisecond_marks_do_not_redeliver_the_same_second() -> None:
    base = NOW.replace(microsecond=0) - timedelta(hours=1)
    early = base + timedelta(milliseconds=100)
    late = base + timedelta(milliseconds=900)

    def ms(i: int, at: datetime) -> dict[str, Any]:
        return {
            "Id": f"003{i:015d}",
            "SystemModstamp": at.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{at.microsecond // 1000:03d}+0000",
        }

    client = FakeClient([ms(1, early), ms(2, late)])
    first = list(feed(client).read("Contact", [], cursor=None))
    cursor = first[-1].cursor
    assert cursor.mark == late
    # the fake, like SOQL, compares against the whole second
    client.records.append(ms(3, late))
    again = list(feed(client).read("Contact", [], cursor=cursor))
    assert [r.id for p in again for r in p.records] == ["003000000000000003"]
