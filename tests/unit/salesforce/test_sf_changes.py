"""The change feed's window logic against a fake client (no HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from scc_desktop.salesforce.changes import (
    CLOCK_MARGIN,
    ChangeFeed,
    FeedCursor,
    needs_full_read,
)
from scc_desktop.salesforce.errors import RequestRefused
from scc_desktop.salesforce.records import SfRecord

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeClient:
    def __init__(
        self,
        records: list[dict[str, Any]],
        earliest: datetime | None = None,
        deleted: list[dict[str, Any]] | None = None,
        page_size: int = 2,
    ) -> None:
        self.records = records
        self.earliest = earliest
        self.deleted = deleted or []
        self.page_size = page_size
        self.queries: list[str] = []
        self.deleted_calls: list[dict[str, Any]] = []
        self.refuse_window = False

    def restful(self, path: str, method: str = "GET", **kwargs: Any) -> Any:
        assert path == "sobjects/Contact/deleted/"
        self.deleted_calls.append(kwargs["params"])
        if self.refuse_window:
            raise RequestRefused(
                "startDate cannot be more than 15 days ago",
                status=400,
                error_code="INVALID_REPLICATION_DATE",
            )
        return {
            "deletedRecords": self.deleted,
            "earliestDateAvailable": stamp(self.earliest) if self.earliest else None,
            "latestDateCovered": stamp(NOW),
        }

    def query_records(
        self, soql: str, *, sobject: str | None = None, batch_size: int = 2000
    ) -> Iterator[list[SfRecord]]:
        self.queries.append(soql)
        rows = [SfRecord.from_api({"attributes": {"type": "Contact"}, **r}) for r in self.records]
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


def test_needs_full_read_rules() -> None:
    assert needs_full_read(None, NOW)
    assert needs_full_read(NOW - timedelta(days=31), NOW)
    assert not needs_full_read(NOW - timedelta(days=29), NOW)
    assert needs_full_read(NOW - timedelta(days=10), NOW, NOW - timedelta(days=5))
    assert not needs_full_read(NOW - timedelta(days=10), NOW, NOW - timedelta(days=15))


def test_first_read_is_full_and_only_last_page_advances_cursor() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient([rec(i, t + timedelta(minutes=i)) for i in range(5)])
    pages = list(feed(client).read("Contact", ["LastName"], cursor=None))
    assert [p.full for p in pages] == [True] * 3
    assert [p.last for p in pages] == [False, False, True]
    assert sum(len(p.records) for p in pages) == 5
    assert pages[0].cursor == FeedCursor()  # unchanged until the read completes
    final = pages[-1].cursor
    assert final.mark == t + timedelta(minutes=4)
    assert final.ids_at_mark == ("003000000000000004",)
    assert final.deleted_since == NOW - CLOCK_MARGIN
    assert client.deleted_calls == []
    assert "SELECT Id, SystemModstamp, LastName FROM Contact" in client.queries[0]


def test_incremental_read_skips_already_delivered_and_reports_deletions() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient(
        [rec(1, t), rec(2, t), rec(3, t + timedelta(minutes=5))],
        earliest=NOW - timedelta(days=15),
        deleted=[{"id": "003DEL", "deletedDate": stamp(NOW - timedelta(minutes=3))}],
    )
    cursor = FeedCursor(t, ("003000000000000001",), NOW - timedelta(hours=2))
    pages = list(feed(client).read("Contact", ["LastName"], cursor=cursor, where="OwnerId = 'x'"))
    got = [r.id for p in pages for r in p.records]
    assert got == ["003000000000000002", "003000000000000003"]
    assert [d.id for p in pages for d in p.deleted] == ["003DEL"]
    assert not any(p.full for p in pages)
    assert pages[-1].cursor.mark == t + timedelta(minutes=5)
    assert "(OwnerId = 'x')" in client.queries[0]
    assert client.deleted_calls[0]["start"].startswith(
        (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H")
    )


def test_quiet_incremental_keeps_the_mark() -> None:
    t = NOW - timedelta(hours=1)
    client = FakeClient([rec(1, t)], earliest=NOW - timedelta(days=15))
    cursor = FeedCursor(t, ("003000000000000001",), NOW - timedelta(hours=2))
    pages = list(feed(client).read("Contact", [], cursor=cursor))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].last
    assert pages[0].cursor.mark == t
    assert pages[0].cursor.ids_at_mark == ("003000000000000001",)


def test_purged_deletions_force_a_full_read() -> None:
    t = NOW - timedelta(days=10)
    client = FakeClient([rec(1, t)], earliest=NOW - timedelta(days=5))
    cursor = FeedCursor(t, (), t)
    pages = list(feed(client).read("Contact", [], cursor=cursor))
    assert pages[0].full and "purged" in pages[0].reason
    assert len(client.deleted_calls) == 1
    assert "SystemModstamp >=" not in client.queries[0]


def test_sync_point_older_than_30_days_forces_full_read_without_asking() -> None:
    t = NOW - timedelta(days=40)
    client = FakeClient([rec(1, t)])
    pages = list(feed(client).read("Contact", [], cursor=FeedCursor(t, (), t)))
    assert pages[0].full and "30 days" in pages[0].reason
    assert client.deleted_calls == []


def test_cursor_round_trip_and_garbage() -> None:
    c = FeedCursor(NOW, ("a", "b"), NOW - timedelta(days=1))
    assert FeedCursor.from_token(c.to_token()) == c
    assert FeedCursor.from_token("not json") is None
    assert FeedCursor.from_token(None) is None


def test_refused_replication_window_means_full_read() -> None:
    t = NOW - timedelta(days=20)
    client = FakeClient([rec(1, t)])
    client.refuse_window = True
    pages = list(feed(client).read("Contact", [], cursor=FeedCursor(t, (), t)))
    assert pages[0].full and pages[0].last
    assert [r.id for r in pages[0].records] == ["003000000000000001"]


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

    client = FakeClient([ms(1, early), ms(2, late)], earliest=NOW - timedelta(days=15))
    first = list(feed(client).read("Contact", [], cursor=None))
    cursor = first[-1].cursor
    assert cursor.mark == late
    # the fake, like SOQL, compares against the whole second
    client.records.append(ms(3, late))
    again = list(feed(client).read("Contact", [], cursor=cursor))
    assert [r.id for p in again for r in p.records] == ["003000000000000003"]
