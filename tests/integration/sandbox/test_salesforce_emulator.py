"""The Salesforce emulator over real HTTPS, driven by the real simple-salesforce and requests."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sf_emulator_harness import REDIRECT_URI, SfEnv
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from scc_desktop.sandbox.salesforce.service import SalesforceService
from scc_desktop.sandbox.server import SandboxServer

SESSION_EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def error_code(response: requests.Response) -> str:
    body = response.json()
    assert isinstance(body, list) and set(body[0]) >= {"message", "errorCode"}, body
    return str(body[0]["errorCode"])


# -- OAuth and identity -------------------------------------------------------------------------
def test_info_keys(sf_env: SfEnv) -> None:
    info = sf_env.info
    assert set(info) == {"login_url", "instance_url", "client_id", "api_version", "username"}
    assert info["instance_url"] == sf_env.server.base_url
    assert info["api_version"] == "59.0"
    assert info["username"] == "alex.morgan@northwind.example"


def test_authorize_redirects_to_loopback_with_code_and_state(sf_env: SfEnv) -> None:
    response = sf_env.authorize("x" * 43, state="abc123")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["abc123"] and query["code"][0]


def test_authorize_rejects_unknown_client_and_non_loopback_redirect(sf_env: SfEnv) -> None:
    url = f"{sf_env.base}/services/oauth2/authorize"
    bad_client = sf_env.http.get(
        url,
        params={"response_type": "code", "client_id": "nope", "redirect_uri": REDIRECT_URI},
        allow_redirects=False,
    )
    assert bad_client.status_code == 400 and bad_client.json()["error"] == "invalid_client_id"
    remote = sf_env.http.get(
        url,
        params={
            "response_type": "code",
            "client_id": sf_env.info["client_id"],
            "redirect_uri": "https://evil.example/cb",
        },
        allow_redirects=False,
    )
    assert remote.status_code == 400 and remote.json()["error"] == "redirect_uri_mismatch"


def test_code_flow_token_response_and_identity(sf_env: SfEnv) -> None:
    token = sf_env.login()
    assert set(token) >= {
        "access_token",
        "refresh_token",
        "instance_url",
        "id",
        "issued_at",
        "token_type",
        "signature",
    }
    assert token["instance_url"] == sf_env.base and token["token_type"] == "Bearer"
    identity = sf_env.http.get(
        token["id"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert identity.status_code == 200
    data = identity.json()
    assert data["username"] == "alex.morgan@northwind.example"
    assert data["email"] == "alex.morgan@northwind.example"
    assert data["display_name"] == "Alex Morgan"
    assert data["user_id"].startswith("005") and data["organization_id"].startswith("00D")
    assert token["id"].endswith(f"/id/{data['organization_id']}/{data['user_id']}")


def test_wrong_pkce_verifier_and_code_reuse_are_refused(sf_env: SfEnv) -> None:
    response = sf_env.authorize("A" * 43)
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    wrong = sf_env.token(
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier="not-the-verifier",
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = sf_env.token(
        grant_type="authorization_code", code=code, redirect_uri=REDIRECT_URI, code_verifier="x"
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_rotates_and_old_refresh_token_dies(sf_env: SfEnv) -> None:
    first = sf_env.login()
    refreshed = sf_env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    stale = sf_env.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert stale.status_code == 400
    assert stale.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    sf = sf_env.client(second["access_token"])
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 6


def test_revoke_refresh_token(sf_env: SfEnv) -> None:
    token = sf_env.login()
    revoked = sf_env.http.post(
        f"{sf_env.base}/services/oauth2/revoke", data={"token": token["refresh_token"]}
    )
    assert revoked.status_code == 200
    refresh = sf_env.token(grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    # the sessions that refresh token minted end with it
    response = sf_env.raw("GET", "limits", token["access_token"])
    assert response.status_code == 401 and response.json() == SESSION_EXPIRED


def test_expired_and_unknown_tokens_get_401_in_salesforce_shape(sf_env: SfEnv) -> None:
    unknown = sf_env.raw("GET", "sobjects", "garbage")
    assert unknown.status_code == 401 and unknown.json() == SESSION_EXPIRED
    token = sf_env.login()
    sf = sf_env.client(token["access_token"])
    sf.query("SELECT Id FROM Contact LIMIT 1")
    sf_env.admin("POST", "salesforce/clock", {"advance_s": 7201})  # default lifetime is 2 h
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Contact LIMIT 1")
    fresh = sf_env.token(grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert fresh.status_code == 200
    sf_env.settings(token_lifetime_s=60)
    short = sf_env.token(grant_type="refresh_token", refresh_token=fresh.json()["refresh_token"])
    sf = sf_env.client(short.json()["access_token"])
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == 2
    sf_env.admin("POST", "salesforce/clock", {"advance_s": 61})
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT COUNT() FROM Lead")


def test_admin_expire_tokens_and_revoke_refresh_tokens(sf_env: SfEnv) -> None:
    token = sf_env.login()
    sf_env.admin("POST", "salesforce/expire_tokens")
    assert sf_env.raw("GET", "limits", token["access_token"]).status_code == 401
    again = sf_env.token(grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert again.status_code == 200
    sf_env.admin("POST", "salesforce/revoke_refresh_tokens")
    dead = sf_env.token(grant_type="refresh_token", refresh_token=again.json()["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


# -- query -------------------------------------------------------------------------------------
def test_demo_org_query_with_quoted_address(sf: Salesforce) -> None:
    soql = format_soql(
        "SELECT Id, Name, Account.Name, Owner.Email FROM Contact WHERE Email = {}",
        "tom.o'neil@globex.example",
    )
    result = sf.query(soql)
    assert result["totalSize"] == 1 and result["done"] is True
    row = result["records"][0]
    assert row["Name"] == "Tom O'Neil"
    assert row["Account"]["Name"] == "Globex Inc"
    assert row["Owner"]["Email"] == "alex.morgan@northwind.example"
    assert row["attributes"]["type"] == "Contact"
    assert len(row["Id"]) == 18 and row["Id"].startswith("003")


def test_paging_over_5000_records_with_query_more(sf_env: SfEnv) -> None:
    sf_env.admin(
        "POST",
        "reset",
        {"seed": "large", "params": {"contacts": 5000, "events": 0, "tasks": 0}},
    )
    sf = sf_env.client(sf_env.login()["access_token"])
    sf_env.admin("POST", "counters/reset")
    first = sf.query(
        "SELECT Id, Email FROM Contact ORDER BY Email",
        headers={"Sforce-Query-Options": "batchSize=1000"},
    )
    assert first["totalSize"] == 5006 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    rows = list(first["records"])
    page = first
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        rows.extend(page["records"])
    assert len(rows) == 5006 and len({r["Id"] for r in rows}) == 5006
    assert [r["Email"] for r in rows] == sorted((r["Email"] for r in rows), key=str.casefold)
    counters = sf_env.counters()
    assert counters["query"] == 1 and counters["query_more"] == 5
    default = sf.query("SELECT Id FROM Contact")
    assert len(default["records"]) == 2000  # the default batch
    assert len(list(sf.query_all_iter("SELECT Id FROM Contact"))) == 5006


def test_malformed_query_invalid_field_and_type(sf_env: SfEnv, sf_token: dict[str, Any]) -> None:
    token = sf_token["access_token"]
    cases = {
        "SELECT Id FROM": "MALFORMED_QUERY",
        "SELECT Id FROM Contact WHERE Email = 'a' AND Name = 'b' OR Title = 'c'": "MALFORMED_QUERY",
        "SELECT Nope FROM Contact": "INVALID_FIELD",
        "SELECT Id FROM Contact WHERE CreatedDate > '2024-01-01'": "INVALID_FIELD",
        "SELECT Id FROM Widget": "INVALID_TYPE",
    }
    for soql, code in cases.items():
        response = sf_env.raw("GET", "query", token, params={"q": soql})
        assert response.status_code == 400, soql
        assert error_code(response) == code, soql
    sf = sf_env.client(token)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query("SELECT Id FROM Contact WHERE")
    assert info.value.content[0]["errorCode"] == "MALFORMED_QUERY"


def test_query_all_sees_deleted_and_updated_deleted_windows(sf: Salesforce) -> None:
    start = datetime.now(UTC) - timedelta(minutes=2)
    created = sf.Contact.create({"LastName": "Gone", "Email": "gone@example.com"})
    sf.Contact.delete(created["id"])
    end = datetime.now(UTC) + timedelta(minutes=2)
    q = f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{created['id']}'"
    assert sf.query(q)["totalSize"] == 0
    rows = sf.query_all(q, include_deleted=True)["records"]
    assert rows[0]["IsDeleted"] is True
    deleted = sf.Contact.deleted(start, end)
    assert created["id"] in [d["id"] for d in deleted["deletedRecords"]]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    kept = sf.Contact.create({"LastName": "Kept"})
    updated = sf.Contact.updated(start, end)
    assert kept["id"] in updated["ids"] and created["id"] not in updated["ids"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Contact.updated(start - timedelta(days=31), end)
    assert info.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"


# -- single-record CRUD and upsert ---------------------------------------------------------------
def test_crud_and_upsert_by_external_id(sf: Salesforce) -> None:
    created = sf.Contact.create({"FirstName": "Ann", "LastName": "Lee", "Email": "ann@x.example"})
    assert created["success"] is True and created["id"].startswith("003")
    rid = created["id"]
    record = sf.Contact.get(rid)
    assert record["Name"] == "Ann Lee" and record["IsDeleted"] is False
    assert record["OwnerId"] == record["CreatedById"]
    assert sf.Contact.update(rid, {"Title": "CTO"}) == 204
    after = sf.Contact.get(rid)
    assert after["Title"] == "CTO"
    assert after["SystemModstamp"] > record["SystemModstamp"]
    assert after["CreatedDate"] == record["CreatedDate"]
    assert sf.Contact.upsert("SCC_Sync_Key__c/key-1", {"LastName": "Upserted"}) == 201
    assert sf.Contact.upsert("SCC_Sync_Key__c/key-1", {"Title": "Again"}) == 200
    found = sf.Contact.get_by_custom_id("SCC_Sync_Key__c", "key-1")
    assert found["LastName"] == "Upserted" and found["Title"] == "Again"
    assert sf.Contact.delete(rid) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(rid)


def test_field_validation_errors(sf_env: SfEnv, sf_token: dict[str, Any]) -> None:
    token = sf_token["access_token"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("Contact", {"FirstName": "No last name"}, "REQUIRED_FIELD_MISSING"),
        ("Contact", {"LastName": "x" * 81}, "STRING_TOO_LONG"),
        ("Contact", {"LastName": "x", "Bogus__c": 1}, "INVALID_FIELD"),
        ("Contact", {"LastName": "x", "AccountId": "not-an-id"}, "MALFORMED_ID"),
        (
            "Contact",
            {"LastName": "x", "AccountId": "001000000000000AAA"},
            "INVALID_CROSS_REFERENCE_KEY",
        ),
        ("Task", {"Subject": "s", "Status": "Bogus"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ("Task", {"Subject": "s", "TaskSubtype": "Fax"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ("Event", {"Subject": "s", "ShowAs": "Maybe"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ("Contact", {"LastName": "x", "IsDeleted": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ("Widget", {"Name": "x"}, "NOT_FOUND"),
    ]
    for sobject, body, code in cases:
        response = sf_env.raw("POST", f"sobjects/{sobject}/", token, body)
        assert response.status_code in (400, 404), (sobject, body, response.text)
        assert error_code(response) == code, (sobject, body, response.text)
    first = sf_env.raw("POST", "sobjects/Task/", token, {"Subject": "a", "SCC_Sync_Key__c": "k"})
    assert first.status_code == 201
    dup = sf_env.raw("POST", "sobjects/Task/", token, {"Subject": "b", "SCC_Sync_Key__c": "K"})
    assert dup.status_code == 400 and error_code(dup) == "DUPLICATE_VALUE"
    assert first.json()["id"] in dup.json()[0]["message"]


# -- Collections and composite -------------------------------------------------------------------
def test_collections_create_all_or_none_false_and_true(sf_env: SfEnv, sf: Salesforce) -> None:
    records = [
        {"attributes": {"type": "Contact"}, "LastName": "One"},
        {"attributes": {"type": "Contact"}, "FirstName": "Missing"},
        {"attributes": {"type": "Account"}, "Name": "Mixed Types Ltd"},
    ]
    results = sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["id"].startswith("003") and results[2]["id"].startswith("001")
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    before = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    rolled = sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
    )
    assert [r["success"] for r in rolled] == [False, False, False]
    codes = [r["errors"][0]["statusCode"] for r in rolled]
    assert codes == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "REQUIRED_FIELD_MISSING",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == before
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Mixed Types Ltd'")["totalSize"] == 1
    assert sf_env.counters()["collections"] == 2


def test_collections_update_upsert_delete_and_limits(sf_env: SfEnv, sf: Salesforce) -> None:
    made = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "records": [
                {"attributes": {"type": "Contact"}, "LastName": f"C{i}"} for i in range(200)
            ]
        },
    )
    ids = [r["id"] for r in made]
    assert all(r["success"] for r in made) and len(set(ids)) == 200
    too_many = sf_env.raw(
        "POST",
        "composite/sobjects",
        sf.session_id,
        {"records": [{"attributes": {"type": "Contact"}, "LastName": "x"}] * 201},
    )
    assert too_many.status_code == 400 and error_code(too_many) == "EXCEEDED_ID_LIMIT"
    updates = [{"attributes": {"type": "Contact"}, "id": i, "Title": "Buyer"} for i in ids[:3]]
    updates.append({"attributes": {"type": "Contact"}, "id": "003000000000000AAA", "Title": "x"})
    result = sf.restful("composite/sobjects", method="PATCH", json={"records": updates})
    assert [r["success"] for r in result] == [True, True, True, False]
    assert result[3]["id"] == "003000000000000AAA"
    upserts = [
        {"attributes": {"type": "Task"}, "SCC_Sync_Key__c": "t-1", "Subject": "First"},
        {"attributes": {"type": "Task"}, "SCC_Sync_Key__c": "t-2", "Subject": "Second"},
    ]
    first = sf.restful(
        "composite/sobjects/Task/SCC_Sync_Key__c", method="PATCH", json={"records": upserts}
    )
    assert [r["created"] for r in first] == [True, True]
    upserts[0]["Subject"] = "First again"
    second = sf.restful(
        "composite/sobjects/Task/SCC_Sync_Key__c", method="PATCH", json={"records": upserts}
    )
    assert [r["created"] for r in second] == [False, False]
    assert [r["id"] for r in second] == [r["id"] for r in first]
    deleted = sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": ",".join(ids[:5]), "allOrNone": "false"},
    )
    assert [r["success"] for r in deleted] == [True] * 5
    assert sf.query(f"SELECT COUNT() FROM Contact WHERE Id = '{ids[0]}'")["totalSize"] == 0


def test_composite_with_references_and_rollback(sf: Salesforce) -> None:
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Account",
                "referenceId": "acc",
                "body": {"Name": "Composite Co"},
            },
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Contact",
                "referenceId": "con",
                "body": {"LastName": "Ref", "AccountId": "@{acc.id}"},
            },
            {
                "method": "GET",
                "url": "/services/data/v59.0/sobjects/Contact/@{con.id}?fields=AccountId,Name",
                "referenceId": "read",
            },
        ],
    }
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 201, 200]
    assert out[2]["body"]["AccountId"] == out[0]["body"]["id"]
    body["allOrNone"] = True
    body["compositeRequest"][1]["body"] = {"FirstName": "No last name", "AccountId": "@{acc.id}"}
    failed = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert failed[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert failed[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    accounts = sf.query("SELECT COUNT() FROM Account WHERE Name = 'Composite Co'")
    assert accounts["totalSize"] == 1  # the second composite's account was rolled back


# -- limits, faults, shapes ----------------------------------------------------------------------
def test_limit_header_and_403_past_the_daily_limit(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.settings(daily_api_limit=3, api_usage=0)
    first = sf_env.raw("GET", "limits", sf.session_id)
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/3"
    assert first.json()["DailyApiRequests"] == {"Max": 3, "Remaining": 2}
    sf.query("SELECT Id FROM Contact LIMIT 1")
    assert sf.api_usage["api-usage"].used == 2 and sf.api_usage["api-usage"].total == 3
    sf.query("SELECT Id FROM Contact LIMIT 1")
    refused = sf_env.raw("GET", "limits", sf.session_id)
    assert refused.status_code == 403 and error_code(refused) == "REQUEST_LIMIT_EXCEEDED"
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Contact LIMIT 1")


def test_lock_row_fault_fails_single_collection_records(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.admin("POST", "faults", {"service": "salesforce", "lock_row_rate": 0.3, "seed": 7})
    pending = {f"k{i}" for i in range(60)}
    attempts = 0
    while pending and attempts < 20:
        attempts += 1
        keys = sorted(pending)
        records = [
            {"attributes": {"type": "Contact"}, "LastName": k, "SCC_Sync_Key__c": k} for k in keys
        ]
        results = sf.restful("composite/sobjects", method="POST", json={"records": records})
        codes = {r["errors"][0]["statusCode"] for r in results if not r["success"]}
        assert codes <= {"UNABLE_TO_LOCK_ROW"}
        if attempts == 1:
            failures = [r for r in results if not r["success"]]
            assert 0 < len(failures) < len(keys)  # some records fail alone, the rest succeed
        pending -= {k for k, r in zip(keys, results, strict=True) if r["success"]}
    assert not pending
    made = [
        r for r in sf_env.records("Contact") if (r.get("SCC_Sync_Key__c") or "").startswith("k")
    ]
    assert len(made) == 60  # every record written exactly once


def test_partial_failure_and_generic_fault_shapes(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.admin("POST", "faults", {"service": "salesforce", "partial_failure_rate": 1.0})
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Contact"}, "LastName": "x"}]},
    )
    assert results[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    sf_env.admin("POST", "faults", {"service": "salesforce", "error_rate": 1.0, "seed": 1})
    response = sf_env.raw("GET", "limits", sf.session_id)
    assert response.status_code in (500, 503)
    assert error_code(response) in ("UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE")


def test_counters_by_endpoint_kind(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.admin("POST", "counters/reset")
    sf.query("SELECT Id FROM Contact")
    sf.Contact.describe()
    sf.Contact.create({"LastName": "Count"})
    now = datetime.now(UTC)
    sf.Contact.updated(now - timedelta(days=1), now)
    sf.Contact.deleted(now - timedelta(days=1), now)
    sf.restful("composite/sobjects", method="POST", json={"records": []})
    sf.limits()
    sf_env.http.get(f"{sf_env.base}/services/data")
    counters = sf_env.counters()
    for kind in (
        "query",
        "describe",
        "sobject",
        "updated",
        "deleted",
        "collections",
        "limits",
        "versions",
    ):
        assert counters.get(kind) == 1, (kind, counters)


# -- objects with rules -------------------------------------------------------------------------
def _user_and_contacts(sf: Salesforce) -> tuple[str, list[str], str]:
    me = sf.query("SELECT Id FROM User WHERE Email = 'alex.morgan@northwind.example'")
    contacts = sf.query("SELECT Id FROM Contact ORDER BY LastName LIMIT 3")["records"]
    account = sf.query("SELECT Id FROM Account WHERE Name = 'Acme Corporation'")["records"][0]
    return me["records"][0]["Id"], [c["Id"] for c in contacts], account["Id"]


def test_enhanced_email_on_creates_relations_and_activity(sf: Salesforce) -> None:
    me, contacts, account = _user_and_contacts(sf)
    describe = {f["name"] for f in sf.EmailMessage.describe()["fields"]}
    assert {"RelatedToId", "ToIds", "ActivityId", "MessageIdentifier"} <= describe
    made = sf.EmailMessage.create(
        {
            "Subject": "Pricing",
            "FromAddress": "alex.morgan@northwind.example",
            "ToAddress": "jane.cooper@acme.example",
            "TextBody": "Hello",
            "Status": "3",
            "MessageDate": "2026-01-05T10:00:00Z",
            "MessageIdentifier": "<abc@mail.example>",
            "RelatedToId": account,
            "ToIds": [contacts[0]],
            "CcIds": [contacts[1]],
        }
    )
    email = sf.query(
        "SELECT Id, ActivityId, Activity.TaskSubtype, Activity.WhatId FROM EmailMessage "
        "WHERE MessageIdentifier = '<abc@mail.example>'"
    )["records"][0]
    assert email["Id"] == made["id"] and email["Activity"]["TaskSubtype"] == "Email"
    assert email["Activity"]["WhatId"] == account
    relations = sf.query(
        "SELECT RelationId, RelationType FROM EmailMessageRelation "
        f"WHERE EmailMessageId = '{made['id']}'"
    )["records"]
    pairs = {(r["RelationId"], r["RelationType"]) for r in relations}
    assert pairs == {(me, "FromAddress"), (contacts[0], "ToAddress"), (contacts[1], "CcAddress")}
    assert sf.EmailMessage.get(made["id"])["HasAttachment"] is False
    body = base64.b64encode(b"%PDF").decode()
    sf.ContentVersion.create(
        {
            "Title": "q",
            "PathOnClient": "q.pdf",
            "VersionData": body,
            "FirstPublishLocationId": made["id"],
        }
    )
    assert sf.EmailMessage.get(made["id"])["HasAttachment"] is True
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.EmailMessage.update(made["id"], {"Subject": "Changed"})  # only drafts can change
    assert info.value.content[0]["errorCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"


def test_enhanced_email_off_is_refused(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.settings(enhanced_email=False)
    describe = {f["name"] for f in sf.EmailMessage.describe()["fields"]}
    assert "RelatedToId" not in describe
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.EmailMessage.create({"Subject": "x", "Status": "3"})
    assert info.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    _, _, account = _user_and_contacts(sf)
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.EmailMessage.create({"Subject": "x", "Status": "3", "RelatedToId": account})
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_event_relations_rules(sf: Salesforce) -> None:
    me, contacts, _ = _user_and_contacts(sf)
    event = sf.Event.create(
        {
            "Subject": "Sync",
            "StartDateTime": "2026-02-01T10:00:00Z",
            "EndDateTime": "2026-02-01T11:00:00Z",
            "WhoId": contacts[0],
        }
    )["id"]
    got = sf.Event.get(event)
    assert got["DurationInMinutes"] == 60 and got["ActivityDate"] == "2026-02-01"
    parents = sf.query(f"SELECT RelationId, IsParent FROM EventRelation WHERE EventId = '{event}'")
    assert [(r["RelationId"], r["IsParent"]) for r in parents["records"]] == [(contacts[0], True)]
    sf.EventRelation.create({"EventId": event, "RelationId": me})  # a user is an invitee
    assert sf.Event.get(event)["IsGroupEvent"] is True
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.EventRelation.create({"EventId": event, "RelationId": me})
    assert info.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.EventRelation.create({"EventId": event, "RelationId": me, "IsParent": True})
    assert info.value.content[0]["errorCode"] in ("FIELD_INTEGRITY_EXCEPTION", "DUPLICATE_VALUE")
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.EventRelation.create({"EventId": event, "RelationId": lead, "IsParent": True})
    assert info.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Event.create(
            {
                "Subject": "bad",
                "StartDateTime": "2026-02-01T10:00:00Z",
                "EndDateTime": "2026-02-01T09:00:00Z",
            }
        )
    assert info.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_attachment_and_content_version_limits(sf_env: SfEnv, sf: Salesforce) -> None:
    _, contacts, _ = _user_and_contacts(sf)
    sf_env.settings(attachment_max_bytes=1000, content_version_max_bytes=2000)
    small = base64.b64encode(b"x" * 1000).decode()
    big = base64.b64encode(b"x" * 1001).decode()
    made = sf.Attachment.create({"ParentId": contacts[0], "Name": "a.txt", "Body": small})
    assert sf.Attachment.get(made["id"])["BodyLength"] == 1000
    blob = sf_env.raw("GET", f"sobjects/Attachment/{made['id']}/Body", sf.session_id)
    assert blob.content == b"x" * 1000
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Attachment.create({"ParentId": contacts[0], "Name": "b.txt", "Body": big})
    assert info.value.content[0]["errorCode"] == "MAXIMUM_SIZE_OF_ATTACHMENT"
    version = sf.ContentVersion.create(
        {
            "Title": "Quote",
            "PathOnClient": "quote.pdf",
            "VersionData": small,
            "FirstPublishLocationId": contacts[0],
        }
    )
    doc = sf.ContentVersion.get(version["id"])["ContentDocumentId"]
    assert doc.startswith("069")
    links = sf.query(
        f"SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{doc}'"
    )
    assert contacts[0] in [r["LinkedEntityId"] for r in links["records"]]
    too_big = base64.b64encode(b"y" * 2001).decode()
    with pytest.raises(SalesforceMalformedRequest):
        sf.ContentVersion.create(
            {"Title": "Big", "PathOnClient": "big.bin", "VersionData": too_big}
        )


def test_state_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "sandbox"
    with SandboxServer(data, port=0, seed="empty", factories=[SalesforceService]) as server:
        env = SfEnv(server)
        token = env.login()
        sf = env.client(token["access_token"])
        rid = sf.Contact.create({"LastName": "Persistent", "SCC_Sync_Key__c": "p-1"})["id"]
    with SandboxServer(data, port=0, factories=[SalesforceService]) as again:
        env = SfEnv(again)
        sf = env.client(
            env.token(grant_type="refresh_token", refresh_token=token["refresh_token"]).json()[
                "access_token"
            ]
        )
        assert sf.Contact.get_by_custom_id("SCC_Sync_Key__c", "p-1")["Id"] == rid
        assert sf.query("SELECT COUNT() FROM User")["totalSize"] == 3


def test_concurrent_writers_get_distinct_ids(sf_env: SfEnv, sf: Salesforce) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def batch(n: int) -> list[str]:
        client = sf_env.client(sf.session_id)
        records = [{"attributes": {"type": "Contact"}, "LastName": f"T{n}-{i}"} for i in range(50)]
        results = client.restful("composite/sobjects", method="POST", json={"records": records})
        return [r["id"] for r in results if r["success"]]

    with ThreadPoolExecutor(max_workers=6) as pool:
        made = [rid for ids in pool.map(batch, range(12)) for rid in ids]
    assert len(made) == 600 and len(set(made)) == 600
    assert sf.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'T%-%'")["totalSize"] == 600


def test_lost_response_after_commit(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.settings(lost_response_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        sf.Contact.upsert("SCC_Sync_Key__c/lost-1", {"LastName": "Lost"})
    sf_env.settings(lost_response_rate=0.0)
    # the write happened: a retry by key updates instead of duplicating
    assert sf.Contact.upsert("SCC_Sync_Key__c/lost-1", {"LastName": "Lost"}) == 200
    assert (
        sf.query("SELECT COUNT() FROM Contact WHERE SCC_Sync_Key__c = 'lost-1'")["totalSize"] == 1
    )


def test_lead_who_cannot_have_a_what(sf: Salesforce) -> None:
    _, _, account = _user_and_contacts(sf)
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Task.create({"Subject": "x", "WhoId": lead, "WhatId": account})
    assert info.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert sf.Task.create({"Subject": "x", "WhoId": lead})["success"] is True


def test_versions_describe_and_composite_size(sf_env: SfEnv, sf: Salesforce) -> None:
    versions = sf_env.http.get(f"{sf_env.base}/services/data").json()
    assert {"42.0", "59.0", "62.0"} <= {v["version"] for v in versions}
    assert {v["url"] for v in versions} >= {"/services/data/v59.0"}
    assert (
        sf_env.raw("GET", f"{sf_env.base}/services/data/v63.0/limits", sf.session_id).status_code
        == 404
    )
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {
        "Contact",
        "Lead",
        "Account",
        "Opportunity",
        "OpportunityContactRole",
        "User",
        "Task",
        "Event",
        "EventRelation",
        "EmailMessage",
        "EmailMessageRelation",
        "Attachment",
        "ContentVersion",
        "ContentDocumentLink",
    } <= names
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    key = contact["SCC_Sync_Key__c"]
    assert key["externalId"] and key["unique"] and key["type"] == "string" and key["length"] == 255
    assert contact["LastName"]["nillable"] is False and contact["Name"]["createable"] is False
    assert contact["AccountId"]["referenceTo"] == ["Account"]
    subtype = {f["name"]: f for f in sf.Task.describe()["fields"]}["TaskSubtype"]
    assert subtype["restrictedPicklist"] and "Email" in [
        p["value"] for p in subtype["picklistValues"]
    ]
    what = {f["name"]: f for f in sf.Event.describe()["fields"]}["WhatId"]
    assert what["relationshipName"] == "What" and set(what["referenceTo"]) == {
        "Account",
        "Opportunity",
    }
    too_many = {
        "compositeRequest": [
            {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": f"r{i}"}
            for i in range(26)
        ]
    }
    response = sf_env.raw("POST", "composite", sf.session_id, too_many)
    assert response.status_code == 400 and error_code(response) == "LIMIT_EXCEEDED"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "composite/sobjects", {"records": [1, "x", None, {"attributes": 5}]}),
        ("POST", "composite/sobjects", {"records": "nope"}),
        ("PATCH", "composite/sobjects", {"records": [{"attributes": {"type": "Contact"}}]}),
        ("PATCH", "composite/sobjects/Contact/Email", {"records": []}),
        ("POST", "composite", {"compositeRequest": [{"url": 5}, "x"]}),
        ("POST", "composite", {"compositeRequest": [{"method": "GET", "url": "/nowhere"}]}),
        ("POST", "sobjects/Contact", [1, 2]),
        ("POST", "sobjects/Contact", {"LastName": {"nested": True}}),
        (
            "POST",
            "sobjects/Event",
            {"Subject": "x", "StartDateTime": "soon", "DurationInMinutes": 5},
        ),
        ("POST", "sobjects/EmailMessage", {"Status": "3", "ToIds": {"a": 1}}),
        ("PATCH", "sobjects/Contact/003000000000000AAA", {"LastName": "x"}),
        ("GET", "query/01gNOTACURSOR-2000", None),
        ("GET", "sobjects/Contact/updated", None),
        ("DELETE", "sobjects/User/005000000000000AAA", None),
    ],
)
def test_garbage_gets_salesforce_shaped_answers(
    sf_env: SfEnv, sf_token: dict[str, Any], method: str, path: str, body: Any
) -> None:
    response = sf_env.raw(method, path, sf_token["access_token"], body)
    assert response.headers["Content-Type"].startswith("application/json")
    data = response.json()
    if response.status_code >= 400:
        assert 400 <= response.status_code < 500, response.text
        assert isinstance(data, list) and data[0]["errorCode"], data
    else:  # Collections and composite answer 200 with per-item failures
        items = data if isinstance(data, list) else data["compositeResponse"]
        assert items and all(
            not i.get("success", True) or i.get("httpStatusCode", 0) >= 400 for i in items
        )


def test_admin_writes_as_a_colleague_cost_no_api_calls(sf_env: SfEnv, sf: Salesforce) -> None:
    sf_env.admin("POST", "counters/reset")
    before = sf_env.admin("GET", "salesforce/settings")["api_usage"]
    made = sf_env.admin(
        "POST",
        "salesforce/records",
        {"type": "Contact", "fields": {"LastName": "Edited"}, "user": "sam.lee@northwind.example"},
    )
    sf_env.admin("POST", "salesforce/records", {"id": made["id"], "fields": {"Title": "Boss"}})
    assert sf_env.admin("GET", "salesforce/settings")["api_usage"] == before
    assert sf_env.counters() == {}
    row = sf.query(
        f"SELECT Title, Owner.Email, LastModifiedBy.Email FROM Contact WHERE Id = '{made['id']}'"
    )["records"][0]
    assert row["Owner"]["Email"] == "sam.lee@northwind.example"
    assert row["LastModifiedBy"]["Email"] == "alex.morgan@northwind.example"
    assert row["Title"] == "Boss"
    bad = sf_env.http.post(
        f"{sf_env.server.admin_url}/salesforce/records", json={"type": "Contact", "fields": {}}
    )
    assert (
        bad.status_code == 400 and bad.json()["error"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    )
