"""Seeds and write rules of the Salesforce emulator, without HTTP."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simple_salesforce import format_soql

from scc_desktop.sandbox.salesforce import ids, seeds, soql
from scc_desktop.sandbox.salesforce.errors import SfError
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.store import Store
from scc_desktop.sandbox.salesforce.values import parse_dt


def new_org(path: Path, seed: str = "empty", **params: int) -> Org:
    org = Org(Store(path / "salesforce.sqlite3"))
    seeds.load(org, seed, params)
    return org


def count(org: Org, text: str) -> int:
    return soql.run(text, org.store, org.now()).total_size


def test_large_seed_is_bulk_fast_and_persisted(tmp_path: Path) -> None:
    started = time.monotonic()
    org = new_org(tmp_path, "large")
    elapsed = time.monotonic() - started
    assert elapsed < 20  # a few seconds on a laptop; generous for a loaded CI box
    assert count(org, "SELECT COUNT() FROM Contact") == 10_006
    assert count(org, "SELECT COUNT() FROM Event") == 3_007
    assert count(org, "SELECT COUNT() FROM Task") == 2_006
    now = org.now()
    for row in soql.run("SELECT StartDateTime FROM Event", org.store, now).records:
        start = parse_dt(row["StartDateTime"])
        assert now - timedelta(days=15) <= start <= now + timedelta(days=61)
    org.store.close()
    again = Org(Store(tmp_path / "salesforce.sqlite3"))
    assert count(again, "SELECT COUNT() FROM Contact") == 10_006
    again.store.close()


def test_empty_seed_has_only_the_users(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    assert count(org, "SELECT COUNT() FROM User") == 3
    assert count(org, "SELECT COUNT() FROM Contact") == 0
    assert org.store.get(str(org.store.kv_get("demo_user_id")))["Username"] == (
        "alex.morgan@northwind.example"
    )


def test_demo_seed_matches_the_cast(tmp_path: Path) -> None:
    org = new_org(tmp_path, "demo")
    me = "alex.morgan@northwind.example"
    assert count(org, f"SELECT COUNT() FROM Contact WHERE Owner.Email = '{me}'") == 5
    assert count(org, "SELECT COUNT() FROM Lead WHERE IsConverted = false") == 2
    assert count(org, "SELECT COUNT() FROM Opportunity WHERE IsClosed = true") == 1
    assert count(org, "SELECT COUNT() FROM OpportunityContactRole") == 7
    window = "StartDateTime >= LAST_N_DAYS:14 AND StartDateTime <= NEXT_N_DAYS:60"
    assert count(org, f"SELECT COUNT() FROM Event WHERE Owner.Email = '{me}' AND {window}") == 6
    assert (
        count(org, f"SELECT COUNT() FROM Task WHERE Owner.Email = '{me}' AND IsClosed = false") == 3
    )


def test_rollback_to_savepoint_restores_records_and_unique_index(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    me = str(org.store.kv_get("demo_user_id"))
    with org.store.lock:
        mark = org.store.savepoint()
        rid = org.create("Contact", {"LastName": "Temp", "SCC_Sync_Key__c": "k1"}, me)
        org.store.rollback_to(mark)
        org.store.commit()
        assert org.store.get(rid) is None
        assert org.store.find_unique("Contact", "SCC_Sync_Key__c", "k1") is None
        again = org.create("Contact", {"LastName": "Kept", "SCC_Sync_Key__c": "K1"}, me)
        with pytest.raises(SfError) as info:
            org.create("Contact", {"LastName": "Dup", "SCC_Sync_Key__c": "k1"}, me)
        assert info.value.code == "DUPLICATE_VALUE" and again in info.value.message
        org.delete(again, me)  # a deleted record frees its key
        org.create("Contact", {"LastName": "Reuse", "SCC_Sync_Key__c": "k1"}, me)


def test_ids_have_prefix_and_checksum() -> None:
    rid = ids.make_id("003", 12345)
    assert len(rid) == 18 and rid.startswith("003")
    assert ids.normalize(rid[:15]) == rid
    assert ids.normalize(rid.lower()) == rid  # the suffix restores the case
    assert ids.normalize(rid.upper()) == rid
    assert rid != rid.lower()  # the sample really has upper-case characters
    assert ids.normalize("not an id") is None


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_format_soql_quoting_round_trips_through_the_tokenizer(value: str) -> None:
    literal = format_soql("{}", value)
    tokens = soql.tokenize(literal)
    assert tokens[0].kind == "string" and tokens[0].value == value


def test_empty_strings_are_null_and_required_values_cannot_be_nulled(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    me = str(org.store.kv_get("demo_user_id"))
    with org.store.lock:
        rid = org.create("Contact", {"LastName": "A", "Email": "", "Title": ""}, me)
        stored = org.store.get(rid)
        assert stored is not None and stored["Email"] is None and stored["Title"] is None
        for sobject, body, field in [
            ("Task", {"Subject": "x", "Status": None}, "Status"),
            ("Contact", {"LastName": ""}, "LastName"),
        ]:
            with pytest.raises(SfError) as info:
                org.create(sobject, body, me)
            assert info.value.code == "REQUIRED_FIELD_MISSING" and info.value.fields == [field]
        with pytest.raises(SfError) as info:
            org.update(rid, {"LastName": None}, me)
        assert info.value.code == "REQUIRED_FIELD_MISSING"


def test_event_times_stay_consistent(tmp_path: Path) -> None:
    org = new_org(tmp_path)
    me = str(org.store.kv_get("demo_user_id"))

    def get(rid: str) -> dict[str, object]:
        rec = org.store.get(rid)
        assert rec is not None
        return rec

    with org.store.lock:
        rid = org.create(
            "Event",
            {"Subject": "s", "StartDateTime": "2026-03-01T10:00:00+02:00", "DurationInMinutes": 90},
            me,
        )
        assert get(rid)["StartDateTime"] == "2026-03-01T08:00:00.000+0000"
        assert get(rid)["EndDateTime"] == "2026-03-01T09:30:00.000+0000"
        assert get(rid)["ActivityDate"] == "2026-03-01"
        org.update(rid, {"StartDateTime": "2026-03-02T08:00:00Z"}, me)  # end moves along
        assert get(rid)["EndDateTime"] == "2026-03-02T09:30:00.000+0000"
        org.update(rid, {"EndDateTime": "2026-03-02T10:00:00Z"}, me)
        assert get(rid)["DurationInMinutes"] == 120
        day = org.create(
            "Event",
            {
                "Subject": "d",
                "IsAllDayEvent": True,
                "ActivityDate": "2026-03-05",
                "DurationInMinutes": 2880,
            },
            me,
        )
        assert get(day)["StartDateTime"] == "2026-03-05T00:00:00.000+0000"
        assert get(day)["EndDateTime"] == "2026-03-06T00:00:00.000+0000"
        assert get(day)["DurationInMinutes"] == 2880
        with pytest.raises(SfError) as info:
            org.create(
                "Event",
                {
                    "Subject": "long",
                    "StartDateTime": "2026-03-01T00:00:00Z",
                    "DurationInMinutes": 15 * 1440,
                },
                me,
            )
        assert info.value.code == "FIELD_INTEGRITY_EXCEPTION"
