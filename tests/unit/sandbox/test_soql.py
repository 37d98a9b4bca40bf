"""SOQL in the Salesforce emulator: a table of queries over the demo org, run through the parser
and evaluator directly (no HTTP), with the results or error codes a real org gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scc_desktop.sandbox.salesforce import seeds, soql
from scc_desktop.sandbox.salesforce.errors import SfError
from scc_desktop.sandbox.salesforce.org import Org
from scc_desktop.sandbox.salesforce.store import Store

ALEX = "alex.morgan@northwind.example"
SAM = "sam.lee@northwind.example"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    store = Store(tmp_path_factory.mktemp("soql") / "salesforce.sqlite3")
    org = Org(store)
    seeds.load(org, "demo", {})
    me = str(store.kv_get("demo_user_id"))
    with store.lock:
        org.create("Contact", {"LastName": "Zed"}, me)  # no email, no account
        org.create("Contact", {"LastName": "Underscore", "Email": "a_b@x.example"}, me)
        org.create(
            "Contact",
            {"LastName": "Lookalike", "Email": "axb@x.example", "Title": "Line1\nLine2"},
            me,
        )
        org.create("Contact", {"LastName": "Percent", "Title": "100% done"}, me)
        gone = org.create("Contact", {"LastName": "Deleted", "Email": "gone@x.example"}, me)
        org.delete(gone, me)
        store.commit()
    yield org
    store.close()


def ids(org: Org) -> dict[str, str]:
    def one(sobject: str, name: str) -> str:
        rows = run(org, f"SELECT Id FROM {sobject} WHERE Name = '{name}'").records
        return str(rows[0]["Id"])

    jane = one("Contact", "Jane Cooper")
    return {"jane18": jane, "jane15": jane[:15], "acme": one("Account", "Acme Corporation")}


def run(org: Org, text: str, **kw: Any) -> soql.Result:
    return soql.run(text, org.store, org.now(), **kw)


def first_column(result: soql.Result) -> list[Any]:
    out = []
    for row in result.records:
        key = next(k for k in row if k != "attributes")
        out.append(row[key])
    return out


# (query, expected): a set = the first selected field's values in any order, a list = in order,
# an int = totalSize, an upper-case string = the error code.
CASES: list[tuple[str, Any]] = [
    # equality, escapes, case-insensitivity
    (r"SELECT Name FROM Contact WHERE Email = 'tom.o\'neil@globex.example'", {"Tom O'Neil"}),
    (r"SELECT Name FROM Contact WHERE Email = 'TOM.O\'NEIL@GLOBEX.EXAMPLE'", {"Tom O'Neil"}),
    (r"SELECT Name FROM Contact WHERE LastName = 'O\'Neil'", {"Tom O'Neil"}),
    (r"SELECT Name FROM Contact WHERE Title = 'Line1\nLine2'", {"Lookalike"}),
    ("select name from contact where lastname = 'Chen'", {"Wei Chen"}),
    ("SELECT Name FROM Contact WHERE LastName <> 'Zed' AND LastName != 'Percent'", 8),
    # IN, NOT IN, NULL
    (
        "SELECT Name FROM Contact WHERE Email IN ('jane.cooper@acme.example', "
        "'WEI.CHEN@initech.example')",
        {"Jane Cooper", "Wei Chen"},
    ),
    ("SELECT Name FROM Contact WHERE Email NOT IN ('jane.cooper@acme.example')", 9),
    ("SELECT Name FROM Contact WHERE Email = null", {"Zed", "Percent"}),
    ("SELECT Name FROM Contact WHERE Email != NULL", 8),
    (
        "SELECT Name FROM Contact WHERE AccountId = null AND Email != null",
        {"Underscore", "Lookalike"},
    ),
    # parent relationships
    (
        "SELECT Name FROM Contact WHERE Account.Name = 'Acme Corporation'",
        {"Jane Cooper", "Lars Nilsson"},
    ),
    (f"SELECT Name FROM Contact WHERE Owner.Email = '{SAM}'", {"Lars Nilsson"}),
    ("SELECT Subject FROM Event WHERE Who.Name = 'Jane Cooper'", {"Quarterly review with Acme"}),
    ("SELECT Subject FROM Event WHERE What.Type = 'Account'", {"Quarterly review with Acme"}),
    (
        "SELECT Subject FROM Event WHERE What.Name = 'Acme Corporation'",
        {"Quarterly review with Acme"},
    ),
    ("SELECT Name FROM Opportunity WHERE Account.Owner.Email = 'nobody@x.example'", 0),
    # LIKE with wildcards and escapes
    ("SELECT Name FROM Contact WHERE LastName LIKE 'co%'", {"Jane Cooper"}),
    (
        "SELECT Name FROM Contact WHERE Email LIKE '%@globex.example'",
        {"Tom O'Neil", "Maria Garcia"},
    ),
    ("SELECT Name FROM Contact WHERE FirstName LIKE '_ei'", {"Wei Chen"}),
    (r"SELECT Name FROM Contact WHERE Email LIKE 'a\_b%'", {"Underscore"}),
    ("SELECT Name FROM Contact WHERE Email LIKE 'a_b%'", {"Underscore", "Lookalike"}),
    (r"SELECT Name FROM Contact WHERE Title LIKE '100\%%'", {"Percent"}),
    # boolean logic
    (
        f"SELECT Name FROM Contact WHERE (FirstName = 'Jane' OR FirstName = 'Lars') "
        f"AND Owner.Email = '{ALEX}'",
        {"Jane Cooper"},
    ),
    (
        "SELECT Name FROM Contact WHERE NOT (Account.Name = 'Acme Corporation') "
        "AND AccountId != null",
        {"Tom O'Neil", "Maria Garcia", "Wei Chen", "Olivia Brown"},
    ),
    (
        "SELECT Name FROM Contact WHERE NOT LastName LIKE '%e%'",
        {"Maria Garcia", "Olivia Brown", "Lars Nilsson"},
    ),
    # ORDER BY, NULLS, LIMIT, OFFSET
    ("SELECT LastName FROM Contact ORDER BY LastName LIMIT 3", ["Brown", "Chen", "Cooper"]),
    ("SELECT LastName FROM Contact ORDER BY LastName DESC LIMIT 2", ["Zed", "Underscore"]),
    ("SELECT LastName FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1", ["Chen", "Cooper"]),
    (
        "SELECT LastName FROM Contact ORDER BY Email NULLS FIRST, LastName LIMIT 2",
        ["Percent", "Zed"],
    ),
    (
        "SELECT LastName FROM Contact ORDER BY Email ASC NULLS LAST, LastName OFFSET 8",
        ["Percent", "Zed"],
    ),
    ("SELECT LastName FROM Contact ORDER BY Email DESC LIMIT 1", ["Chen"]),
    (
        "SELECT LastName FROM Contact ORDER BY Email DESC NULLS FIRST, LastName DESC LIMIT 1",
        ["Zed"],
    ),
    (
        "SELECT Name FROM Opportunity ORDER BY Account.Name DESC, Amount LIMIT 1",
        ["Umbrella - Security Suite"],
    ),
    # COUNT
    ("SELECT COUNT() FROM Contact", 10),
    ("SELECT COUNT() FROM Lead WHERE Company = 'Hooli'", 1),
    # booleans, numbers
    ("SELECT Name FROM Opportunity WHERE IsClosed = true", {"Acme - Pilot"}),
    (
        f"SELECT Name FROM Opportunity WHERE IsWon = false AND Owner.Email = '{ALEX}'",
        {"Acme - Fleet Renewal", "Umbrella - Security Suite"},
    ),
    (
        "SELECT Name FROM Opportunity WHERE Amount > 70000",
        {"Acme - Fleet Renewal", "Globex - Expansion"},
    ),
    (
        "SELECT Name FROM Opportunity WHERE Amount >= 60000 AND Amount <= 80000.0",
        {"Globex - Expansion", "Umbrella - Security Suite"},
    ),
    # dates, datetimes and date literals
    ("SELECT Name FROM Opportunity WHERE CloseDate < TODAY", {"Acme - Pilot"}),
    (
        "SELECT Name FROM Opportunity WHERE CloseDate = NEXT_N_DAYS:30",
        {"Acme - Fleet Renewal", "Umbrella - Security Suite"},
    ),
    ("SELECT Name FROM Opportunity WHERE CloseDate = LAST_N_DAYS:90", {"Acme - Pilot"}),
    ("SELECT Name FROM Opportunity WHERE CloseDate > 2000-01-01", 4),
    ("SELECT Subject FROM Task WHERE ActivityDate = YESTERDAY", {"Email: Pricing for 2026"}),
    (
        "SELECT Subject FROM Task WHERE ActivityDate < TODAY",
        {"Follow up with Maria Garcia", "Call Wei Chen about the pilot", "Email: Pricing for 2026"},
    ),
    (
        f"SELECT Subject FROM Task WHERE IsClosed = false AND TaskSubtype != 'Email' "
        f"AND Owner.Email = '{ALEX}'",
        {"Send proposal to Acme", "Follow up with Maria Garcia", "Prepare security questionnaire"},
    ),
    ("SELECT Name FROM Contact WHERE CreatedDate > 2000-01-01T00:00:00Z", 10),
    ("SELECT Name FROM Contact WHERE CreatedDate < 2000-01-01T00:30:00+01:00", 0),
    ("SELECT Name FROM Contact WHERE CreatedDate = LAST_N_DAYS:1", 10),
    ("SELECT Name FROM Contact WHERE SystemModstamp >= TODAY AND CreatedDate = THIS_YEAR", 10),
    # semi-joins and ids
    (
        "SELECT Name FROM Account WHERE Id IN "
        "(SELECT AccountId FROM Opportunity WHERE IsClosed = false)",
        {"Acme Corporation", "Globex Inc", "Umbrella Health"},
    ),
    ("SELECT Name FROM Account WHERE Id NOT IN (SELECT AccountId FROM Opportunity)", {"Initech"}),
    (
        "SELECT Name FROM Opportunity WHERE AccountId IN (SELECT AccountId FROM Contact "
        "WHERE Email = 'jane.cooper@acme.example') ORDER BY CreatedDate DESC",
        ["Acme - Fleet Renewal", "Acme - Pilot"],
    ),
    (
        "SELECT Subject FROM Task WHERE TaskSubtype != 'Email' AND (IsClosed = false "
        "OR ActivityDate = LAST_N_DAYS:14 OR LastModifiedDate = LAST_N_DAYS:14)",
        5,
    ),
    ("SELECT Name FROM Contact WHERE Id = '{jane15}'", {"Jane Cooper"}),
    ("SELECT Name FROM Contact WHERE AccountId = '{acme}' AND Id != '{jane18}'", {"Lars Nilsson"}),
    # errors
    ("SELECT Id FROM Contact WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR"),
    ("SELECT Foo FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE Foo.Name = 'x'", "INVALID_FIELD"),
    ("SELECT Account.Nope FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Foo", "INVALID_TYPE"),
    ("SELECT Id FROM Contact WHERE Email = 5", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE CreatedDate > '2020-01-01'", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE CloseDate > 2020-01-01T00:00:00Z", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity WHERE IsClosed = 'true'", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE Description = 'x'", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE AccountId LIKE '001%'", "INVALID_FIELD"),
    ("SELECT Id, id FROM Contact", "MALFORMED_QUERY"),
    (
        "SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Title = 'c'",
        "MALFORMED_QUERY",
    ),
    ("SELECT Id FROM Contact WHERE Email = 'unterminated", "MALFORMED_QUERY"),
    (r"SELECT Id FROM Contact WHERE Email = 'bad\q'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact LIMIT", "MALFORMED_QUERY"),
    ("SELECT FROM Contact", "MALFORMED_QUERY"),
    ("SELECT Id Contact", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE (LastName = 'a'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE LastName = 'a' extra", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE CreatedDate > LAST_N_DAYS", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact GROUP BY Name", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE Email < null", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact ORDER BY LastName OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
    ("", "MALFORMED_QUERY"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:70] for c in CASES])
def test_soql_table(org: Org, text: str, expected: Any) -> None:
    text = text.format(**ids(org)) if "{" in text else text
    if isinstance(expected, str):
        with pytest.raises(SfError) as info:
            run(org, text)
        assert info.value.code == expected
        assert info.value.status == 400
        return
    result = run(org, text)
    if isinstance(expected, int):
        assert result.total_size == expected
    elif isinstance(expected, set):
        assert set(first_column(result)) == expected
        assert len(first_column(result)) == len(expected)
    else:
        assert first_column(result) == expected


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_parent_relationship_shape(org: Org) -> None:
    rows = run(
        org,
        "SELECT Name, Account.Name, Account.Owner.Email FROM Contact "
        "WHERE LastName IN ('Cooper', 'Zed') ORDER BY LastName",
    ).records
    cooper, zed = rows
    assert cooper["Account"]["attributes"]["type"] == "Account"
    assert cooper["Account"]["attributes"]["url"].startswith(
        "/services/data/v59.0/sobjects/Account/"
    )
    assert cooper["Account"]["Name"] == "Acme Corporation"
    assert cooper["Account"]["Owner"]["Email"] == ALEX
    assert zed["Account"] is None
    assert list(cooper) == ["attributes", "Name", "Account"]


def test_query_all_includes_deleted_rows(org: Org) -> None:
    assert run(org, "SELECT COUNT() FROM Contact WHERE IsDeleted = true").total_size == 0
    deleted = run(
        org, "SELECT LastName, IsDeleted FROM Contact WHERE IsDeleted = true", include_deleted=True
    )
    assert [(r["LastName"], r["IsDeleted"]) for r in deleted.records] == [("Deleted", True)]


def test_count_of_a_field_is_an_aggregate(org: Org) -> None:
    result = run(org, "SELECT COUNT(Email) FROM Contact")
    assert result.records == [{"attributes": {"type": "AggregateResult"}, "expr0": 8}]


def test_enhanced_email_fields_vanish_when_off(org: Org) -> None:
    assert run(org, "SELECT RelatedToId FROM EmailMessage").total_size == 0
    with pytest.raises(SfError) as info:
        soql.run("SELECT RelatedToId FROM EmailMessage", org.store, org.now(), enhanced=False)
    assert info.value.code == "INVALID_FIELD"


def test_error_message_points_at_the_column(org: Org) -> None:
    with pytest.raises(SfError) as info:
        run(org, "SELECT Id FROM Contact WHERE")
    assert "ERROR at Row:1:Column:" in info.value.message
    assert info.value.body() == [{"message": info.value.message, "errorCode": "MALFORMED_QUERY"}]


_VOCAB = [
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "COUNT()",
    "COUNT(",
    "Contact",
    "Account",
    "Event",
    "Id",
    "Name",
    "Email",
    "Account.Name",
    "Owner.Email",
    "What.Type",
    "CreatedDate",
    "ActivityDate",
    "IsDeleted",
    "Amount",
    "=",
    "!=",
    "<",
    ">=",
    "(",
    ")",
    ",",
    "'x'",
    "'a\\'b'",
    "'%'",
    "5",
    "-1.5",
    "null",
    "true",
    "TODAY",
    "LAST_N_DAYS:3",
    "LAST_N_DAYS",
    ":",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "'",
    "\\",
    "@",
    "SELECT Id FROM Contact",
]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(_VOCAB), max_size=14))
def test_any_token_soup_is_answered_or_refused_with_a_salesforce_error(
    org: Org, words: list[str]
) -> None:
    try:
        run(org, " ".join(words))
    except SfError as exc:
        assert exc.status == 400 and exc.code.isupper()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_where_text_is_answered_or_refused_with_a_salesforce_error(org: Org, tail: str) -> None:
    try:
        run(org, "SELECT Id FROM Contact WHERE " + tail)
    except SfError as exc:
        assert exc.status == 400 and exc.code.isupper()
