"""Matching email addresses to Salesforce people, and people to accounts and opportunities.

`EmailMatcher.resolve()` answers for many addresses at once: addresses cached in the local store
(and not expired) cost nothing; the rest go out in batches of up to 200, each batch one composite
call holding three queries (Contacts, unconverted Leads, active Users). Empty answers are cached
too (for a shorter time), so a busy mailbox full of strangers does not query every session.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from scc_desktop.salesforce.client import SalesforceClient, error_body
from scc_desktop.salesforce.errors import QueryError, RequestRefused, TransientError
from scc_desktop.salesforce.records import SfRecord, parse_sf_datetime
from scc_desktop.salesforce.soql import select, soql_in, soql_quote
from scc_desktop.store.db import Database

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ADDRESS_BATCH = 200
ID_BATCH = 200
DEFAULT_TTL_S = 24 * 3600.0
DEFAULT_NEGATIVE_TTL_S = 6 * 3600.0

CONTACT_FIELDS = ("Id", "Name", "Email", "AccountId", "OwnerId")
LEAD_FIELDS = ("Id", "Name", "Email", "Company", "OwnerId")
USER_FIELDS = ("Id", "Name", "Email")
OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "AccountId",
    "OwnerId",
    "StageName",
    "IsClosed",
    "CloseDate",
    "CreatedDate",
    "LastModifiedDate",
)


def normalize_address(address: str) -> str | None:
    text = address.strip().strip("<>").strip().lower()
    if "@" not in text or " " in text or len(text) > 254:
        return None
    return text


@dataclass(frozen=True)
class PersonMatch:
    """A Contact, Lead or User whose Email equals the address."""

    kind: str  # 'Contact' | 'Lead' | 'User'
    id: str
    name: str
    email: str
    account_id: str | None = None
    owner_id: str | None = None
    company: str | None = None


@dataclass(frozen=True)
class AccountRef:
    id: str
    name: str


@dataclass(frozen=True)
class OpportunityRef:
    id: str
    name: str
    account_id: str | None
    owner_id: str | None
    stage: str | None
    is_closed: bool
    close_date: date | None
    created_date: datetime | None
    last_modified: datetime | None


def _batches(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class EmailMatcher:
    """Resolves addresses against one org, through the local cache."""

    def __init__(
        self,
        client: SalesforceClient,
        db: Database,
        org_id: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        negative_ttl_s: float = DEFAULT_NEGATIVE_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.db = db
        self.org_id = org_id
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.clock = clock

    # -- addresses -> people ---------------------------------------------------------------
    def resolve(self, addresses: Iterable[str]) -> dict[str, list[PersonMatch]]:
        """Every valid address (lower-cased) -> its matches (possibly none)."""
        wanted = list(dict.fromkeys(a for a in map(normalize_address, addresses) if a))
        result = self._cached(wanted)
        missing = [a for a in wanted if a not in result]
        for batch in _batches(missing, ADDRESS_BATCH):
            found = self._query_batch(batch)
            self._store(found)
            result.update(found)
        return result

    def forget(self, addresses: Iterable[str]) -> None:
        """Drop cached answers (after a Contact or Lead was created for these addresses)."""
        keys = [a for a in map(normalize_address, addresses) if a]
        with self.db.transaction() as tx:
            tx.executemany(
                "DELETE FROM sf_email_matches WHERE org = ? AND address = ?",
                [(self.org_id, a) for a in keys],
            )

    def remember(self, address: str, match: PersonMatch) -> None:
        """Add a record we just created to the cache, so the next message matches it at once."""
        key = normalize_address(address)
        if key is None:
            return
        current = self._cached([key]).get(key, [])
        if any(m.id == match.id for m in current):
            return
        self._store({key: [*current, match]})

    def purge_expired(self) -> int:
        with self.db.transaction() as tx:
            cur = tx.execute("DELETE FROM sf_email_matches WHERE expires_at <= ?", (self.clock(),))
            return int(cur.rowcount)

    def _cached(self, addresses: Sequence[str]) -> dict[str, list[PersonMatch]]:
        out: dict[str, list[PersonMatch]] = {}
        now = self.clock()
        conn = self.db.connect()
        for batch in _batches(addresses, 500):
            marks = ",".join("?" for _ in batch)
            rows = conn.execute(
                f"SELECT address, matches FROM sf_email_matches "
                f"WHERE org = ? AND expires_at > ? AND address IN ({marks})",
                [self.org_id, now, *batch],
            ).fetchall()
            for row in rows:
                out[str(row["address"])] = [PersonMatch(**m) for m in json.loads(row["matches"])]
        return out

    def _store(self, found: Mapping[str, list[PersonMatch]]) -> None:
        now = self.clock()
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO sf_email_matches (org, address, matches, fetched_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(org, address) DO UPDATE SET "
                "matches = excluded.matches, fetched_at = excluded.fetched_at, "
                "expires_at = excluded.expires_at",
                [
                    (
                        self.org_id,
                        address,
                        json.dumps([asdict(m) for m in matches]),
                        now,
                        now + (self.ttl_s if matches else self.negative_ttl_s),
                    )
                    for address, matches in found.items()
                ],
            )

    def _query_batch(self, batch: list[str]) -> dict[str, list[PersonMatch]]:
        emails = soql_in(batch)
        queries = {
            "contacts": select("Contact", CONTACT_FIELDS, f"Email IN {emails}"),
            "leads": select("Lead", LEAD_FIELDS, f"IsConverted = false AND Email IN {emails}"),
            "users": select("User", USER_FIELDS, f"IsActive = true AND Email IN {emails}"),
        }
        pages = run_queries(self.client, queries)
        found: dict[str, list[PersonMatch]] = {a: [] for a in batch}
        for ref, kind in (("contacts", "Contact"), ("leads", "Lead"), ("users", "User")):
            for raw in pages[ref]:
                record = SfRecord.from_api(raw, kind)
                email = normalize_address(str(record.get("Email") or ""))
                if email is None or email not in found:
                    continue
                found[email].append(
                    PersonMatch(
                        kind=kind,
                        id=record.id,
                        name=str(record.get("Name") or ""),
                        email=email,
                        account_id=record.get("AccountId"),
                        owner_id=record.get("OwnerId"),
                        company=record.get("Company"),
                    )
                )
        return found

    # -- people -> accounts and opportunities -------------------------------------------------
    def accounts_for_contacts(self, contact_ids: Iterable[str]) -> dict[str, AccountRef]:
        """Contact id -> its Account, one query per 200 contacts (contacts without one left out)."""
        ids = list(dict.fromkeys(contact_ids))
        out: dict[str, AccountRef] = {}
        for batch in _batches(ids, ID_BATCH):
            soql = select("Contact", ["Id", "AccountId", "Account.Name"], f"Id IN {soql_in(batch)}")
            for record in self.client.query_all(soql, sobject="Contact"):
                account_id = record.get("AccountId")
                if account_id:
                    out[record.id] = AccountRef(
                        str(account_id), str(record.get("Account.Name") or "")
                    )
        return out

    def opportunities_for_accounts(
        self, account_ids: Iterable[str], owner_id: str | None = None
    ) -> list[OpportunityRef]:
        """Opportunities on these accounts (owned by `owner_id` when given), newest first."""
        ids = list(dict.fromkeys(a for a in account_ids if a))
        out: list[OpportunityRef] = []
        for batch in _batches(ids, ID_BATCH):
            where = f"AccountId IN {soql_in(batch)}"
            if owner_id:
                where = f"OwnerId = {soql_quote(owner_id)} AND {where}"
            soql = select(
                "Opportunity", OPPORTUNITY_FIELDS, where, order_by="LastModifiedDate DESC"
            )
            for record in self.client.query_all(soql, sobject="Opportunity"):
                close = record.get("CloseDate")
                out.append(
                    OpportunityRef(
                        id=record.id,
                        name=str(record.get("Name") or ""),
                        account_id=record.get("AccountId"),
                        owner_id=record.get("OwnerId"),
                        stage=record.get("StageName"),
                        is_closed=bool(record.get("IsClosed")),
                        close_date=date.fromisoformat(close) if isinstance(close, str) else None,
                        created_date=parse_sf_datetime(record.get("CreatedDate")),
                        last_modified=parse_sf_datetime(record.get("LastModifiedDate")),
                    )
                )
        out.sort(key=lambda o: o.last_modified or _EPOCH, reverse=True)
        return out

    def opportunities_for_addresses(
        self, addresses: Iterable[str], owner_id: str
    ) -> list[OpportunityRef]:
        """Opportunities the user owns whose account has a Contact with one of these addresses."""
        matches = self.resolve(addresses)
        accounts = {
            m.account_id
            for ms in matches.values()
            for m in ms
            if m.kind == "Contact" and m.account_id
        }
        return self.opportunities_for_accounts(sorted(accounts), owner_id)


def run_queries(client: SalesforceClient, queries: Mapping[str, str]) -> dict[str, list[Any]]:
    """Several SOQL queries in one composite call (<= 5); each followed to its last page.

    Composite counts as one API call; a subquery with more than one page is finished with
    queryMore. A refused subquery raises as if it had been sent alone.
    """
    if not 1 <= len(queries) <= 5:
        raise ValueError("a composite call holds 1..5 queries")
    prefix = f"/services/data/v{client.api_version}"
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "GET", "url": f"{prefix}/query?q={quote(soql, safe='')}", "referenceId": ref}
            for ref, soql in queries.items()
        ],
    }
    answer = client.restful("composite", "POST", json=body)
    out: dict[str, list[Any]] = {}
    for part in (answer or {}).get("compositeResponse", []):
        ref = str(part.get("referenceId"))
        status = int(part.get("httpStatusCode", 500))
        content = part.get("body")
        if status >= 300:
            code, message = error_body(content)
            if status == 429 or status >= 500:
                raise TransientError(f"composite subquery {ref}: {status} {code}", status=status)
            if code in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"):
                raise QueryError(message or code, error_code=code)
            raise RequestRefused(message or code, status=status, error_code=code)
        records = list(content.get("records", []))
        page = content
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            page = client.query_more(str(page["nextRecordsUrl"]))
            records.extend(page.get("records", []))
        out[ref] = records
    missing = set(queries) - set(out)
    if missing:
        raise TransientError(f"composite answer lacked {', '.join(sorted(missing))}")
    return out
