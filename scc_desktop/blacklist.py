"""The Blacklisted Domains box: parsing what the user typed, and matching addresses against it.

Entries are exact addresses or exact domains (case-insensitive, IDN normalized); wildcards are
refused because a bare domain already covers all its addresses. Parsing reports every bad entry
at once so the user can fix the box in one go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SEPARATORS = re.compile(r"[,;\n\r]+")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


@dataclass(frozen=True)
class BlacklistError:
    entry: str
    reason: str

    def __str__(self) -> str:
        return f"{self.entry!r}: {self.reason}"


@dataclass(frozen=True)
class ParsedBlacklist:
    entries: tuple[str, ...]
    errors: tuple[BlacklistError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def canonical(self) -> str:
        return ", ".join(self.entries)

    def error_message(self) -> str:
        return "; ".join(str(error) for error in self.errors)


def normalize_domain(domain: str) -> str | None:
    """The ASCII (punycode) form of a domain, or None when it is not a valid host name."""
    domain = domain.strip().rstrip(".").lower()
    if not domain or "." not in domain or len(domain) > 253:
        return None
    try:
        ascii_form = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_form.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # an IP address is not a domain
        return None
    return ascii_form


def normalize_address(address: str) -> str | None:
    """The canonical form of a mail address (lower-case, IDN domain), or None when invalid."""
    address = address.strip().lower()
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not _LOCAL_PART.match(local) or ".." in local:
        return None
    if local.startswith(".") or local.endswith("."):
        return None
    norm_domain = normalize_domain(domain)
    if norm_domain is None:
        return None
    return f"{local}@{norm_domain}"


def _classify(entry: str) -> str | BlacklistError:
    if "*" in entry or "?" in entry:
        return BlacklistError(
            entry,
            "wildcards are not supported; a bare domain such as "
            f"'{entry.lstrip('*?.@')}' already covers all of its addresses",
        )
    if any(ch.isspace() for ch in entry):
        return BlacklistError(entry, "is neither an email address nor a domain")
    if "@" in entry:
        if entry.startswith("@"):  # '@example.com' is a common way of writing a domain
            domain = normalize_domain(entry[1:])
            if domain is not None:
                return domain
        address = normalize_address(entry)
        if address is None:
            return BlacklistError(entry, "is not a valid email address")
        return address
    domain = normalize_domain(entry)
    if domain is None:
        return BlacklistError(entry, "is neither an email address nor a domain")
    return domain


def parse_blacklist(text: str) -> ParsedBlacklist:
    """Split on commas, semicolons and newlines; trim, lower-case, normalize, drop duplicates."""
    entries: list[str] = []
    errors: list[BlacklistError] = []
    seen: set[str] = set()
    for raw in SEPARATORS.split(text):
        entry = raw.strip()
        if not entry:
            continue
        result = _classify(entry)
        if isinstance(result, BlacklistError):
            errors.append(result)
        elif result not in seen:
            seen.add(result)
            entries.append(result)
    return ParsedBlacklist(tuple(entries), tuple(errors))


@dataclass(frozen=True)
class Blacklist:
    """Addresses and domains never linked: the user's list, the corporate list, internal domains."""

    addresses: frozenset[str] = field(default_factory=frozenset)
    domains: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_entries(cls, *lists: Iterable[str]) -> Blacklist:
        addresses: set[str] = set()
        domains: set[str] = set()
        for entries in lists:
            for entry in entries:
                result = _classify(entry)
                if isinstance(result, BlacklistError):
                    continue
                (addresses if "@" in result else domains).add(result)
        return cls(frozenset(addresses), frozenset(domains))

    def matches(self, address: str) -> bool:
        normalized = normalize_address(address)
        if normalized is None:
            return False
        return normalized in self.addresses or normalized.rpartition("@")[2] in self.domains
