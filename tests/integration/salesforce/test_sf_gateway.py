"""The connector against the Salesforce emulator: reading, matching, writing, faults, limits."""

from __future__ import annotations

import pytest
from sf_harness import Admin, Sleeps

from scc_desktop.salesforce.errors import ApiLimitExceeded, FileTooLarge, TransientError
from scc_desktop.salesforce.gateway import SalesforceGateway
from scc_desktop.salesforce.soql import soql_quote
from scc_desktop.salesforce.writer import OUTCOME_UNKNOWN

KEY = "SCC_Sync_Key__c"


def contacts(n: int, prefix: str = "c") -> list[dict[str, str]]:
    return [
        {"LastName": f"Person {i}", "Email": f"{prefix}{i}@bulk.example", KEY: f"{prefix}-{i}"}
        for i in range(n)
    ]


def count_by_key(gateway: SalesforceGateway, prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    soql = f"SELECT Id, {KEY} FROM Contact WHERE {KEY} LIKE {soql_quote(prefix + '-%')}"
    for record in gateway.client.query_all(soql):
        key = str(record.get(KEY))
        counts[key] = counts.get(key, 0) + 1
    return counts


# -- reading ---------------------------------------------------------------------------------
def test_paging_over_5000_records(gateway: SalesforceGateway, admin: Admin) -> None:
    results = gateway.writer.upsert("Contact", KEY, contacts(5000, "p"))
    assert all(r.success for r in results)
    gateway.stats.reset()
    pages = list(gateway.query("Contact", ["LastName", KEY], f"{KEY} LIKE 'p-%'"))
    assert [len(p) for p in pages] == [2000, 2000, 1000]
    ids = {r.id for p in pages for r in p}
    assert len(ids) == 5000
    assert all(r.system_modstamp is not None for p in pages for r in p)
    assert gateway.stats.counts() == {"query": 1, "query_more": 2}
    # smaller pages through Sforce-Query-Options
    small = list(gateway.query("Contact", ["LastName"], f"{KEY} LIKE 'p-%'", batch_size=500))
    assert len(small) == 10


def test_api_usage_is_exposed(gateway: SalesforceGateway, admin: Admin) -> None:
    list(gateway.query("Contact", ["LastName"]))
    usage = gateway.usage
    assert usage is not None and usage.limit == 100_000 and usage.used >= 1
    assert not usage.should_slow_down
    admin.settings(daily_api_limit=1000, api_usage=850)
    list(gateway.query("Contact", ["LastName"]))
    assert gateway.usage is not None
    assert (gateway.usage.used, gateway.usage.limit) == (851, 1000)
    assert gateway.usage.should_slow_down


def test_request_limit_exceeded_stops_with_a_clear_message(
    gateway: SalesforceGateway, admin: Admin, sleeps: Sleeps
) -> None:
    admin.settings(daily_api_limit=1000, api_usage=1000)
    with pytest.raises(ApiLimitExceeded) as info:
        gateway.writer.upsert("Contact", KEY, contacts(3, "lim"))
    assert "API limit" in info.value.user_message
    with pytest.raises(ApiLimitExceeded):
        list(gateway.query("Contact", ["LastName"]))
    assert sleeps.calls == []  # not retried: the session stops
    assert gateway.stats.counts() == {"collections": 1, "query": 1}


# -- matching --------------------------------------------------------------------------------
def test_quoted_address_resolves(gateway: SalesforceGateway) -> None:
    found = gateway.matcher.resolve(["Tom.O'Neil@globex.example", "nobody@nowhere.example"])
    assert [m.kind for m in found["tom.o'neil@globex.example"]] == ["Contact"]
    assert found["nobody@nowhere.example"] == []


def test_matching_kinds_and_cache(gateway: SalesforceGateway, admin: Admin) -> None:
    found = gateway.matcher.resolve(
        ["jane.cooper@acme.example", "ravi.kumar@hooli.example", "priya.shah@northwind.example"]
    )
    assert [m.kind for m in found["jane.cooper@acme.example"]] == ["Contact"]
    assert found["jane.cooper@acme.example"][0].account_id
    assert [m.kind for m in found["ravi.kumar@hooli.example"]] == ["Lead"]
    assert [m.kind for m in found["priya.shah@northwind.example"]] == ["User"]
    calls = gateway.stats.total
    again = gateway.matcher.resolve(["JANE.COOPER@acme.example"])
    assert again["jane.cooper@acme.example"] == found["jane.cooper@acme.example"]
    assert gateway.stats.total == calls  # answered from the local cache


def test_resolving_1000_addresses_costs_at_most_5_calls(
    gateway: SalesforceGateway, admin: Admin
) -> None:
    gateway.writer.upsert("Contact", KEY, contacts(300, "m"))
    admin.reset_counters()
    addresses = [f"m{i}@bulk.example" for i in range(1000)]
    found = gateway.matcher.resolve(addresses)
    assert sum(1 for a in addresses if found[a]) == 300
    counters = admin.counters()
    assert counters["total"] <= 5
    assert counters.get("query", 0) + counters.get("composite", 0) <= 5


def test_opportunities_and_accounts_for_contacts(
    gateway: SalesforceGateway, signed_in: object
) -> None:
    found = gateway.matcher.resolve(["jane.cooper@acme.example", "olivia.brown@umbrella.example"])
    contact_ids = [m.id for ms in found.values() for m in ms]
    accounts = gateway.matcher.accounts_for_contacts(contact_ids)
    assert {a.name for a in accounts.values()} == {"Acme Corporation", "Umbrella Health"}
    before = gateway.stats.total
    opps = gateway.matcher.opportunities_for_accounts(
        [a.id for a in accounts.values()], gateway.user_id
    )
    assert gateway.stats.total == before + 1
    names = [o.name for o in opps]
    assert set(names) == {"Acme - Fleet Renewal", "Acme - Pilot", "Umbrella - Security Suite"}
    assert any(o.is_closed for o in opps) and any(not o.is_closed for o in opps)
    assert all(o.created_date and o.close_date and o.last_modified for o in opps)
    by_address = gateway.matcher.opportunities_for_addresses(
        ["lars.nilsson@acme.example"], gateway.user_id
    )
    assert {o.name for o in by_address} == {"Acme - Fleet Renewal", "Acme - Pilot"}


# -- writing ---------------------------------------------------------------------------------
def test_creating_1000_contacts_costs_5_collections_calls(
    gateway: SalesforceGateway, admin: Admin
) -> None:
    rows = [{"LastName": f"Bulk {i}", "Email": f"b{i}@bulk.example"} for i in range(1000)]
    results = gateway.writer.create("Contact", rows)
    assert all(r.success and r.created and r.id for r in results)
    assert admin.counters()["collections"] == 5
    assert gateway.stats.counts() == {"collections": 5}


def test_update_and_delete_through_collections(gateway: SalesforceGateway, admin: Admin) -> None:
    created = gateway.writer.upsert("Contact", KEY, contacts(250, "u"))
    assert all(r.success and r.created for r in created)
    ids = [r.id for r in created if r.id]
    updated = gateway.writer.update("Contact", [{"Id": i, "Title": "Buyer"} for i in ids])
    assert all(r.success for r in updated)
    titles = {
        r.get("Title")
        for r in gateway.client.query_all(f"SELECT Id, Title FROM Contact WHERE {KEY} LIKE 'u-%'")
    }
    assert titles == {"Buyer"}
    again = gateway.writer.upsert("Contact", KEY, contacts(2, "u"))
    assert [r.created for r in again] == [False, False]
    deleted = gateway.writer.delete(ids)
    assert all(r.success for r in deleted)
    assert count_by_key(gateway, "u") == {}
    assert admin.counters()["collections"] == 2 + 2 + 1 + 2


def test_partial_collection_failures_come_back_per_record(gateway: SalesforceGateway) -> None:
    rows = [
        {"LastName": "Good", KEY: "pf-0"},
        {"FirstName": "No last name", KEY: "pf-1"},
        {"LastName": "x" * 300, KEY: "pf-2"},
        {"LastName": "Good too", KEY: "pf-3"},
    ]
    results = gateway.writer.upsert("Contact", KEY, rows)
    assert [r.success for r in results] == [True, False, False, True]
    assert results[1].error is not None
    assert results[1].error.status_code == "REQUIRED_FIELD_MISSING"
    assert results[2].error is not None and results[2].error.status_code == "STRING_TOO_LONG"
    assert results[2].error.message
    assert set(count_by_key(gateway, "pf")) == {"pf-0", "pf-3"}


def test_ten_percent_transient_faults_write_every_record_exactly_once(
    gateway: SalesforceGateway, admin: Admin, sleeps: Sleeps
) -> None:
    admin.faults(error_rate=0.1, drop_rate=0.1, lock_row_rate=0.1, seed=7)
    results = gateway.writer.create("Contact", contacts(1000, "f"), key_field=KEY)
    admin.faults()
    assert all(r.success for r in results), [r.error for r in results if not r.success][:3]
    counts = count_by_key(gateway, "f")
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert sleeps.calls  # it did back off
    assert admin.counters()["collections"] > 5


@pytest.mark.parametrize(
    "fault",
    [
        {"error_rate": 0.5},
        {"drop_rate": 0.5},
        {"throttle_rate": 0.5, "retry_after_s": 2},
        {"lock_row_rate": 0.05},
    ],
    ids=["5xx", "dropped", "429", "lock_row"],
)
def test_each_fault_kind_is_survived(
    gateway: SalesforceGateway, admin: Admin, sleeps: Sleeps, fault: dict[str, float]
) -> None:
    admin.faults(seed=11, **fault)
    results = gateway.writer.upsert("Contact", KEY, contacts(600, "k"))
    pages = gateway.query("Contact", [KEY], f"{KEY} LIKE 'k-%'", batch_size=200)
    records = [r for p in pages for r in p]
    admin.faults()
    assert all(r.success for r in results)
    assert len(records) == 600
    assert sleeps.calls  # faults happened and were backed off from
    counters = admin.counters()
    assert counters["collections"] + counters["query"] + counters["query_more"] > 3 + 3
    if "throttle_rate" in fault:
        assert max(sleeps.calls) >= 2  # Retry-After honoured


def test_keyless_create_after_a_dropped_connection_is_not_duplicated(
    gateway: SalesforceGateway, admin: Admin
) -> None:
    admin.faults(drop_rate=1.0)
    results = gateway.writer.create("Lead", [{"LastName": "Drop", "Company": "Drop Co"}])
    admin.faults()
    assert not results[0].success
    assert results[0].error is not None and results[0].error.status_code == OUTCOME_UNKNOWN
    assert admin.counters()["collections"] == 1


def test_reads_give_up_with_transient_error_when_down(
    gateway: SalesforceGateway, admin: Admin
) -> None:
    admin.faults(error_rate=1.0)
    with pytest.raises(TransientError):
        list(gateway.query("Contact", ["LastName"]))


# -- change feed -------------------------------------------------------------------------------
def test_change_feed_full_then_incremental(gateway: SalesforceGateway, admin: Admin) -> None:
    feed = gateway.changes
    first = list(feed.read("Contact", ["LastName", "Email"], cursor=None))
    assert first[-1].full and first[-1].last
    total = sum(len(p.records) for p in first)
    assert total >= 6
    cursor = first[-1].cursor
    assert cursor.mark is not None
    # nothing changed: exactly one call (a queryAll), no records, no deletions
    gateway.stats.reset()
    admin.reset_counters()
    quiet = list(feed.read("Contact", ["LastName"], cursor=cursor))
    assert [len(p.records) for p in quiet] == [0] and not quiet[0].full
    assert quiet[0].deleted == []
    assert gateway.stats.counts() == {"query": 1}
    assert gateway.stats.total == 1
    served = admin.counters()  # the emulator counts queryAll as "query"
    assert served["total"] == 1 and served["query"] == 1, served
    cursor = quiet[-1].cursor
    # one update and one delete
    jane = gateway.matcher.resolve(["jane.cooper@acme.example"])["jane.cooper@acme.example"][0]
    lars = gateway.matcher.resolve(["lars.nilsson@acme.example"])["lars.nilsson@acme.example"][0]
    assert gateway.writer.update("Contact", [{"Id": jane.id, "Title": "COO"}])[0].success
    assert gateway.writer.delete([lars.id])[0].success
    changed = list(feed.read("Contact", ["Title"], cursor=cursor))
    assert [r.id for p in changed for r in p.records] == [jane.id]
    assert changed[0].records[0].get("Title") == "COO"
    deleted = [d for p in changed for d in p.deleted]
    assert [d.id for d in deleted] == [lars.id]
    assert deleted[0].deleted_at is not None and cursor.mark is not None
    assert deleted[0].deleted_at >= cursor.mark  # deleting bumped its SystemModstamp
    assert changed[-1].cursor.mark == max(
        [r.system_modstamp for p in changed for r in p.records if r.system_modstamp]
        + [d.deleted_at for d in deleted]
    )
    # reported once: the mark moved past both
    again = list(feed.read("Contact", ["Title"], cursor=changed[-1].cursor))
    assert [r.id for p in again for r in p.records] == [] and again[0].deleted == []


# -- email and files ---------------------------------------------------------------------------
def test_enhanced_email_detection(gateway: SalesforceGateway, admin: Admin) -> None:
    assert gateway.features.enhanced_email(refresh=True) is True
    admin.settings(enhanced_email=False)
    assert gateway.features.enhanced_email() is True  # cached for a day
    assert gateway.features.enhanced_email(refresh=True) is False


def test_upload_file_and_attachment(gateway: SalesforceGateway) -> None:
    jane = gateway.matcher.resolve(["jane.cooper@acme.example"])["jane.cooper@acme.example"][0]
    file = gateway.uploader.upload(jane.id, "notes.txt", b"hello", content_type="text/plain")
    assert file.kind == "ContentVersion" and file.id
    assert file.content_document_id
    links = gateway.client.query_all(
        "SELECT Id, LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = "
        + soql_quote(file.content_document_id)
    )
    assert jane.id in {r.get("LinkedEntityId") for r in links}
    att = gateway.uploader.upload(jane.id, "a.bin", b"\x00\x01", as_attachment=True)
    assert att.kind == "Attachment" and att.id
    gateway.uploader.max_bytes = 10
    with pytest.raises(FileTooLarge) as info:
        gateway.uploader.upload(jane.id, "big.bin", b"x" * 11)
    assert "big.bin" in info.value.user_message


def test_fetch_current_versions_by_id(gateway: SalesforceGateway) -> None:
    created = gateway.writer.upsert("Contact", KEY, contacts(250, "g"))
    ids = [r.id for r in created if r.id]
    gateway.stats.reset()
    got = gateway.fetch("Contact", [*ids, ids[0]], ["LastName", KEY])
    assert {r.id for r in got} == set(ids)
    assert gateway.stats.counts() == {"query": 2}
    assert all(r.get(KEY, "").startswith("g-") for r in got)


# -- sessions expiring in the middle of work ---------------------------------------------------
def test_session_expiring_between_pages_and_before_a_write(
    gateway: SalesforceGateway, admin: Admin
) -> None:
    gateway.writer.upsert("Contact", KEY, contacts(900, "e"))
    gateway.stats.reset()
    pages = gateway.query("Contact", ["LastName"], f"{KEY} LIKE 'e-%'", batch_size=300)
    seen = len(next(pages))
    admin.expire_tokens()
    seen += sum(len(p) for p in pages)
    assert seen == 900
    assert gateway.stats.counts()["oauth"] == 1
    target = next(r.id for p in gateway.query("Contact", [], f"{KEY} = 'e-1'") for r in p)
    gateway.stats.reset()
    admin.expire_tokens()
    results = gateway.writer.update("Contact", [{"Id": target, "Title": "X"}])
    assert results[0].success
    counts = gateway.stats.counts()
    assert counts == {"oauth": 1, "collections": 2}  # the refused call and its retry


# -- email messages: a create keyed by MessageIdentifier ----------------------------------------
def test_email_message_create_with_lookup_key(gateway: SalesforceGateway, admin: Admin) -> None:
    jane = gateway.matcher.resolve(["jane.cooper@acme.example"])["jane.cooper@acme.example"][0]
    assert gateway.enhanced_email()
    message = {
        "Subject": "Quote for the fleet renewal",
        "TextBody": "Hello Jane",
        "FromAddress": "alex.morgan@northwind.example",
        "ToAddress": "jane.cooper@acme.example",
        "MessageDate": "2026-01-15T10:00:00.000+0000",
        "Status": "3",
        "Incoming": False,
        "MessageIdentifier": "<quote-1@northwind.example>",
        "RelatedToId": jane.account_id,
        "ToIds": [jane.id],
    }
    admin.faults(drop_rate=0.6, seed=3)
    results = gateway.writer.create(
        "EmailMessage", [message], key_field="MessageIdentifier", key_is_external_id=False
    )
    admin.faults()
    assert results[0].success and results[0].id
    counts = gateway.stats.counts()
    assert counts["collections"] >= 2  # at least one create was dropped and resent
    assert counts["query"] >= 1  # the key was looked up before re-creating
    saved = gateway.client.query_all(
        "SELECT Id, ActivityId FROM EmailMessage WHERE MessageIdentifier = "
        + soql_quote("<quote-1@northwind.example>")
    )
    assert len(saved) == 1 and saved[0].get("ActivityId")


def test_email_message_refused_without_enhanced_email(
    gateway: SalesforceGateway, admin: Admin
) -> None:
    admin.settings(enhanced_email=False)
    assert gateway.features.enhanced_email(refresh=True) is False
    results = gateway.writer.create(
        "EmailMessage",
        [
            {
                "Subject": "x",
                "Status": "3",
                "RelatedToId": "001000000000000AAA",
                "MessageIdentifier": "<x@y>",
            }
        ],
        key_field="MessageIdentifier",
        key_is_external_id=False,
    )
    assert not results[0].success
    assert results[0].error is not None and results[0].error.status_code
