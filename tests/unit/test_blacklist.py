import pytest

from scc_desktop.blacklist import Blacklist, parse_blacklist

GOOD = [
    ("gmail.com", ["gmail.com"]),
    ("Gmail.COM", ["gmail.com"]),
    ("  outlook.com  ", ["outlook.com"]),
    ("Bob@Example.COM", ["bob@example.com"]),
    ("gmail.com, outlook.com", ["gmail.com", "outlook.com"]),
    ("gmail.com; outlook.com", ["gmail.com", "outlook.com"]),
    ("gmail.com\noutlook.com\r\nyahoo.com", ["gmail.com", "outlook.com", "yahoo.com"]),
    ("gmail.com, GMAIL.com, gmail.com", ["gmail.com"]),
    ("gmail.com,,  ,;\n", ["gmail.com"]),
    ("", []),
    ("tom.o'neil@globex.example", ["tom.o'neil@globex.example"]),
    ("first+tag@example.org", ["first+tag@example.org"]),
    ("münchen.de", ["xn--mnchen-3ya.de"]),
    ("info@bücher.example", ["info@xn--bcher-kva.example"]),
    ("sub.domain.example.co.uk", ["sub.domain.example.co.uk"]),
    ("@spam.example", ["spam.example"]),
    ("example.com.", ["example.com"]),
    ("a-b.example", ["a-b.example"]),
]

BAD = [
    ("*.spam.com", "wildcards are not supported"),
    ("*@spam.com", "wildcards are not supported"),
    ("spam?.com", "wildcards are not supported"),
    ("not an address", "neither an email address nor a domain"),
    ("localhost", "neither an email address nor a domain"),
    ("bob@", "not a valid email address"),
    ("@", "not a valid email address"),
    ("bob@@example.com", "not a valid email address"),
    ("bob@example", "not a valid email address"),
    ("-bad.example", "neither an email address nor a domain"),
    ("bad-.example", "neither an email address nor a domain"),
    ("10.0.0.1", "neither an email address nor a domain"),
    ("bob..smith@example.com", "not a valid email address"),
    ("exa_mple.com", "neither an email address nor a domain"),
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_good_entries(text: str, expected: list[str]) -> None:
    parsed = parse_blacklist(text)
    assert parsed.ok, parsed.error_message()
    assert list(parsed.entries) == expected


@pytest.mark.parametrize(("entry", "reason"), BAD)
def test_bad_entries_are_named_with_a_reason(entry: str, reason: str) -> None:
    parsed = parse_blacklist(f"gmail.com, {entry}")
    assert not parsed.ok
    assert [e.entry for e in parsed.errors] == [entry]
    assert reason in parsed.errors[0].reason
    assert entry in parsed.error_message()


def test_every_bad_entry_is_reported_at_once() -> None:
    parsed = parse_blacklist("gmail.com, Bob@Example.COM, *.spam.com, not an address")
    assert [e.entry for e in parsed.errors] == ["*.spam.com", "not an address"]
    assert parsed.entries == ("gmail.com", "bob@example.com")


def test_wildcard_message_suggests_the_bare_domain() -> None:
    parsed = parse_blacklist("*.spam.com")
    assert "'spam.com' already covers" in parsed.errors[0].reason


def test_matching_is_exact_by_address_or_domain() -> None:
    blacklist = Blacklist.from_entries(["gmail.com", "bob@example.com"], ["Corp.Example"])
    assert blacklist.matches("Anyone@GMAIL.com")
    assert blacklist.matches("bob@example.com")
    assert not blacklist.matches("alice@example.com")
    assert not blacklist.matches("x@mail.gmail.com")  # exact domain: no implicit subdomains
    assert blacklist.matches("ceo@corp.example")
    assert not blacklist.matches("not an address")
