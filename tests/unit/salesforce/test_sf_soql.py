import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scc_desktop.salesforce.soql import (
    select,
    soql_date,
    soql_datetime,
    soql_in,
    soql_like,
    soql_name,
    soql_quote,
)
from scc_desktop.sandbox.salesforce.soql import tokenize


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain@example.com", "'plain@example.com'"),
        ("o'neil@example.com", "'o\\'neil@example.com'"),
        ("back\\slash", "'back\\\\slash'"),
        ('say "hi"', "'say \\\"hi\\\"'"),
        ("line\nbreak", "'line\\nbreak'"),
        ("cr\rret", "'cr\\rret'"),
        ("tab\there", "'tab\\there'"),
        ("bell\bform\f", "'bell\\bform\\f'"),
        ("\\'", "'\\\\\\''"),
        ("", "''"),
        ("100%_ok", "'100%_ok'"),
        ("ünïcødé", "'ünïcødé'"),
        ("' OR Name != '", "'\\' OR Name != \\''"),
    ],
)
def test_soql_quote_table(raw: str, quoted: str) -> None:
    assert soql_quote(raw) == quoted


def test_quote_cannot_be_broken_out_of() -> None:
    # After escaping, every quote inside the literal is preceded by an odd number of backslashes.
    for raw in ["a'b", "a\\'b", "a\\\\'b", "'''", "\\"]:
        body = soql_quote(raw)[1:-1]
        for i, ch in enumerate(body):
            if ch == "'":
                run = 0
                j = i - 1
                while j >= 0 and body[j] == "\\":
                    run += 1
                    j -= 1
                assert run % 2 == 1, raw


def test_quote_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        soql_quote(5)  # type: ignore[arg-type]


def test_like_escapes_wildcards() -> None:
    assert soql_like("50%_off", prefix=True) == "'%50\\%\\_off'"
    assert soql_like("o'neil", suffix=True) == "'o\\'neil%'"


def test_in_list() -> None:
    assert soql_in(["a", "o'neil"]) == "('a','o\\'neil')"
    with pytest.raises(ValueError):
        soql_in([])


def test_datetimes_and_dates() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert soql_datetime(datetime(2025, 10, 8, 3, 2, 3, tzinfo=plus2)) == "2025-10-08T01:02:03Z"
    assert soql_datetime(datetime(2025, 1, 1, tzinfo=UTC)) == "2025-01-01T00:00:00Z"
    with pytest.raises(ValueError):
        soql_datetime(datetime(2025, 1, 1))
    assert soql_date(date(2025, 2, 3)) == "2025-02-03"


def test_names_are_checked() -> None:
    assert soql_name("Account.Name") == "Account.Name"
    assert soql_name("SCC_Sync_Key__c") == "SCC_Sync_Key__c"
    for bad in ["Name, (SELECT", "1abc", "Name--", "", "Na me"]:
        with pytest.raises(ValueError):
            soql_name(bad)


def test_select_builds_query() -> None:
    assert (
        select("Contact", ["Id", "Email", "Id"], "Email = 'x'", order_by="Id", limit=5)
        == "SELECT Id, Email FROM Contact WHERE Email = 'x' ORDER BY Id LIMIT 5"
    )


# The sandbox's SOQL lexer (written from Salesforce's rules, independently of soql_quote) as an
# oracle: whatever the text, the literal reads back as exactly that text and nothing else.
@given(st.text())
def test_quote_round_trips_through_a_soql_lexer(text: str) -> None:
    tokens = tokenize("Email = " + soql_quote(text))
    assert [t.kind for t in tokens] == ["ident", "op", "string", "eof"]
    assert tokens[2].value == text


@given(st.text())
def test_like_pattern_matches_only_the_literal_text(text: str) -> None:
    tokens = tokenize("Name LIKE " + soql_like(text))
    assert [t.kind for t in tokens] == ["ident", "ident", "string", "eof"]
    pattern = re.compile(tokens[2].like, re.DOTALL)
    assert pattern.fullmatch(text)
    assert not pattern.fullmatch(text + "x")
