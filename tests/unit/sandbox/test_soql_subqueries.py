"""Parent-to-child subqueries in the emulator's SOQL (`SELECT Id, (SELECT ... FROM EventRelations)
FROM Event`): each parent carries the relationship as a nested query result, or null."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from scc_desktop.sandbox.salesforce import seeds, soql
from scc_desktop.sandbox.salesforce.errors import SfError
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.rest import Call, Rest
from scc_desktop.sandbox.salesforce.store import Store
from scc_desktop.sandbox.service import FaultProfile

START = "2030-01-02T10:00:00Z"
END = "2030-01-02T11:00:00Z"


@dataclass
class World:
    org: Org
    account: str
    contacts: list[str]  # Ann, Bob, Cy (Cy's relation is deleted)
    meeting: str  # Ann, Bob, Cy (deleted) as invitees, the account as What
    lonely: str  # no relations at all


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    store = Store(tmp_path_factory.mktemp("soql-sub") / "salesforce.sqlite3")
    org = Org(store)
    with store.lock:
        seeds.load(org, "demo", {})
        user = str(store.kv_get("demo_user_id"))
        account = org.create("Account", {"Name": "Subquery Inc"}, user)
        contacts = [
            org.create(
                "Contact",
                {"LastName": name, "Email": f"{name.lower()}@sub.example", "AccountId": account},
                user,
            )
            for name in ("Ann", "Bob", "Cy")
        ]
        org.create(
            "Opportunity",
            {
                "Name": "Big deal",
                "StageName": "Prospecting",
                "CloseDate": "2030-02-01",
                "AccountId": account,
            },
            user,
        )
        meeting = org.create(
            "Event",
            {"Subject": "Meeting", "StartDateTime": START, "EndDateTime": END, "WhatId": account},
            user,
        )
        lonely = org.create(
            "Event", {"Subject": "Alone", "StartDateTime": START, "EndDateTime": END}, user
        )
        relations = [
            org.create(
                "EventRelation",
                {"EventId": meeting, "RelationId": c, "IsInvitee": True, "IsWhat": False},
                user,
            )
            for c in contacts
        ]
        org.delete(relations[2], user)
        store.commit()
    yield World(org, account, contacts, meeting, lonely)
    store.close()


def run(world: World, text: str, **kw: Any) -> list[dict[str, Any]]:
    return soql.run(text, world.org.store, world.org.now(), **kw).records


def by_subject(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["Subject"]): r for r in rows}


def emails(result: dict[str, Any] | None) -> list[str]:
    assert result is not None
    return [r["Relation"]["Email"] for r in result["records"] if r.get("Relation") is not None]


def test_children_come_as_a_nested_query_result_or_null(world: World) -> None:
    rows = run(
        world,
        "SELECT Id, Subject, (SELECT RelationId, Relation.Email, IsInvitee, IsWhat "
        "FROM EventRelations ORDER BY Relation.Email) FROM Event WHERE Subject IN "
        "('Meeting', 'Alone')",
    )
    events = by_subject(rows)
    assert list(events["Meeting"]) == ["attributes", "Id", "Subject", "EventRelations"]
    relations = events["Meeting"]["EventRelations"]
    assert relations["done"] is True and set(relations) == {"totalSize", "done", "records"}
    # the What relation Salesforce keeps for WhatId (if the org makes one) plus Ann and Bob
    people = [r for r in relations["records"] if not r["IsWhat"]]
    assert [r["Relation"]["Email"] for r in people] == ["ann@sub.example", "bob@sub.example"]
    assert relations["totalSize"] == len(relations["records"])
    child = people[0]
    assert child["attributes"]["type"] == "EventRelation"
    assert child["attributes"]["url"].startswith("/services/data/v59.0/sobjects/EventRelation/")
    assert child["Relation"]["attributes"]["type"] == "Contact"
    assert child["RelationId"] == world.contacts[0] and child["IsInvitee"] is True
    assert events["Alone"]["EventRelations"] is None


def test_deleted_children_are_left_out_also_under_query_all(world: World) -> None:
    text = (
        "SELECT Id, (SELECT RelationId FROM EventRelations WHERE IsWhat = false) "
        f"FROM Event WHERE Id = '{world.meeting}'"
    )
    for include_deleted in (False, True):
        (row,) = run(world, text, include_deleted=include_deleted)
        got = {r["RelationId"] for r in row["EventRelations"]["records"]}
        assert got == set(world.contacts[:2])


def test_where_order_and_limit_inside_the_subquery(world: World) -> None:
    (row,) = run(
        world,
        "SELECT Name, (SELECT LastName FROM Contacts WHERE LastName IN ('Ann', 'Cy') "
        "ORDER BY LastName DESC LIMIT 1), (SELECT Name, StageName FROM Opportunities) "
        f"FROM Account WHERE Id = '{world.account}'",
    )
    assert row["Name"] == "Subquery Inc"
    contacts = row["Contacts"]
    assert contacts["totalSize"] == 1 and [r["LastName"] for r in contacts["records"]] == ["Cy"]
    assert [r["Name"] for r in row["Opportunities"]["records"]] == ["Big deal"]
    (none,) = run(
        world,
        "SELECT Id, (SELECT Id FROM EventRelations WHERE RelationId = null) "
        f"FROM Event WHERE Id = '{world.meeting}'",
    )
    assert none["EventRelations"] is None


def test_nested_parent_fields_in_the_child_and_filtering_on_them(world: World) -> None:
    (row,) = run(
        world,
        "SELECT Id, (SELECT Relation.Email, Relation.Name FROM EventRelations "
        "WHERE Relation.Email LIKE 'b%') "
        f"FROM Event WHERE Id = '{world.meeting}'",
    )
    (bob,) = row["EventRelations"]["records"]
    assert bob["Relation"]["Email"] == "bob@sub.example"
    assert bob["Relation"]["Name"] == "Bob"
    assert emails(row["EventRelations"]) == ["bob@sub.example"]


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("SELECT Id, (SELECT Id FROM Attendees) FROM Event", "INVALID_TYPE", "Didn't understand"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Event", "INVALID_TYPE", "FROM part"),
        ("SELECT Id, (SELECT Nope FROM EventRelations) FROM Event", "INVALID_FIELD", "Nope"),
        (
            "SELECT Id, (SELECT Id FROM EventRelations), (SELECT Id FROM EventRelations) "
            "FROM Event",
            "MALFORMED_QUERY",
            "twice",
        ),
        (
            "SELECT Id, (SELECT Id, (SELECT Id FROM Tasks) FROM Contacts) FROM Account",
            "MALFORMED_QUERY",
            "nested",
        ),
        ("SELECT Id, (SELECT Id FROM EventRelations FROM Event", "MALFORMED_QUERY", "unexpected"),
        (
            "SELECT Id FROM Event WHERE Id IN (SELECT Id, (SELECT Id FROM EventRelations) "
            "FROM Event)",
            "MALFORMED_QUERY",
            "semi-join",
        ),
    ],
)
def test_errors_as_salesforce_gives_them(world: World, text: str, code: str, words: str) -> None:
    with pytest.raises(SfError) as info:
        run(world, text)
    assert info.value.code == code, info.value
    assert words in str(info.value)


def test_children_ride_along_on_every_page_of_the_parents(world: World) -> None:
    with world.org.store.lock:
        user = str(world.org.store.kv_get("demo_user_id"))
        for n in range(250):
            world.org.create(
                "Contact", {"LastName": f"Paged{n:03}", "AccountId": world.account}, user
            )
        world.org.store.commit()
    rest = Rest(world.org, FaultProfile)
    text = (
        "SELECT Id, LastName, (SELECT Id, Subject FROM Events) FROM Contact "
        f"WHERE AccountId = '{world.account}' ORDER BY LastName"
    )

    def call(parts: list[str], args: dict[str, str]) -> dict[str, Any]:
        status, body = rest.dispatch(
            Call("GET", parts, args, None, {"Sforce-Query-Options": "batchSize=200"}, "", "59.0")
        )
        assert status == 200
        assert isinstance(body, dict)
        return body

    page = call(["query"], {"q": text})
    rows = list(page["records"])
    assert page["done"] is False and page["totalSize"] == 253
    while not page["done"]:
        page = call(page["nextRecordsUrl"].split("/")[-2:], {})
        rows.extend(page["records"])
    assert len(rows) == 253
    assert all("Events" in r for r in rows)
    assert all(r["Events"] is None for r in rows)  # no event has a contact as Who
