"""The Salesforce side of the sync engine: Contacts, Events and Tasks as `SideRepository`s.

Everything goes through one `SalesforceGateway`, so calls are batched the way the org's daily
limit wants: one change-feed read per kind, one query per batch for lookups (accounts, current
versions, candidates, attendees), sObject Collections for writes. Creates are upserts on the
external id `SCC_Sync_Key__c`, so a create retried after a crash updates instead of duplicating.
Each write returns the synced fields as Salesforce keeps them, so what it could not keep (an
unknown company, "tentative") is not taken for an edit: for contacts and tasks computed from the
row sent (no query; the version comes with the next change-feed read, which the engine takes as
our own echo), for events read back (one query per batch, with the attendees' relations).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from scc_desktop.salesforce.changes import FeedCursor
from scc_desktop.salesforce.errors import TRANSIENT_RECORD_CODES
from scc_desktop.salesforce.gateway import SalesforceGateway
from scc_desktop.salesforce.matching import PersonMatch
from scc_desktop.salesforce.records import SfRecord, parse_sf_datetime
from scc_desktop.salesforce.soql import soql_datetime, soql_in, soql_quote, subquery
from scc_desktop.salesforce.writer import OUTCOME_UNKNOWN, RETRIES_EXHAUSTED
from scc_desktop.salesforce.writer import WriteResult as SfWriteResult
from scc_desktop.settings import SettingsSnapshot
from scc_desktop.sync import salesforce_mapping as mapping
from scc_desktop.sync.fields import FieldValue, Kind, normalize
from scc_desktop.sync.ports import (
    ChangePage,
    ItemDelete,
    ItemUpdate,
    NewItem,
    Side,
    SideItem,
    SideRepository,
    WriteResult,
)

log = logging.getLogger(__name__)

MAX_BATCH = 200
PROBE_BATCH = 50  # probes per candidate query: keeps the SOQL text well under its limits
MAX_CONTACT_WHOS = 50
RELATION_FIELDS = ("RelationId", "Relation.Email", "IsInvitee", "IsParent", "Status", "Response")
# The people related to an event (Whos and invitees), read with the event itself: each record
# then carries `EventRelations` as a nested query result, or null when there are none.
# `IsDeleted = false` keeps deleted relations out of the change feed's queryAll.
ATTENDEES_SUBQUERY = subquery(
    "EventRelations", RELATION_FIELDS, "IsWhat = false AND IsDeleted = false"
)
TRANSIENT_CODES = frozenset({*TRANSIENT_RECORD_CODES, OUTCOME_UNKNOWN, RETRIES_EXHAUSTED})


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _port_failure(result: SfWriteResult) -> WriteResult:
    """A Salesforce per-record failure as the engine's result, transient when a retry may work."""
    errors = result.errors
    message = "; ".join(e.user_message for e in errors) or "Salesforce did not save the record."
    transient = bool(errors) and all(e.status_code in TRANSIENT_CODES for e in errors)
    return WriteResult.failure(message, transient=transient)


def _version(record: SfRecord) -> str:
    stamp = record.get("SystemModstamp")
    return str(stamp) if stamp else ""


class _SalesforceRepository:
    """What the three kinds share; a subclass maps records and names its scope."""

    sobject: str = ""
    _kind: Kind = "contact"
    _select: tuple[str, ...] = ()
    _fields: frozenset[str] = frozenset()

    def __init__(self, gateway: SalesforceGateway, *, scope: str | None) -> None:
        self.gateway = gateway
        self.scope = scope
        self._calls = 0
        self._metering = 0

    # --- properties ---------------------------------------------------------------------------

    @property
    def side(self) -> Side:
        return "salesforce"

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def fields(self) -> frozenset[str]:
        return self._fields

    @property
    def max_batch(self) -> int:
        return MAX_BATCH

    def api_calls(self) -> Mapping[str, int]:
        """This repository's own calls: the three kinds share one gateway, so the session's
        per-repository sum must not count the gateway's total three times."""
        return {"salesforce": self._calls}

    @contextmanager
    def _metered(self) -> Iterator[None]:
        if self._metering:
            yield
            return
        before = self.gateway.stats.total
        self._metering += 1
        try:
            yield
        finally:
            self._metering -= 1
            self._calls += self.gateway.stats.total - before

    # --- reading ------------------------------------------------------------------------------

    def _scope_signature(self) -> str:
        return hashlib.sha256((self.scope or "").encode("utf-8")).hexdigest()[:16]

    def _feed_cursor(self, token: str | None) -> FeedCursor | None:
        """The feed's cursor, or None (a full read) when the scope changed since it was saved:
        records that entered the scope without changing would otherwise never be read."""
        if not token:
            return None
        try:
            data = json.loads(token)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("scope") != self._scope_signature():
            return None
        feed = data.get("feed")
        return FeedCursor.from_token(feed) if isinstance(feed, str) else None

    def _token(self, cursor: FeedCursor) -> str:
        return json.dumps(
            {"scope": self._scope_signature(), "feed": cursor.to_token()}, separators=(",", ":")
        )

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        pages = self.gateway.changes.read(
            self.sobject, self._select, cursor=self._feed_cursor(cursor), where=self._feed_where()
        )
        while True:
            with self._metered():
                page = next(pages, None)
                if page is None:
                    return
                items = self._items(page.records, self._in_scope(page.records))
            yield ChangePage(
                upserted=[i for i in items if i.in_scope],
                removed=[d.id for d in page.deleted],
                cursor=self._token(page.cursor),
                full=page.full,
                departed=[i.id for i in items if not i.in_scope],
            )

    def _feed_where(self) -> str | None:
        """What the change feed reads: the scope itself, unless the kind sorts records here."""
        return self.scope

    def _in_scope(self, records: Sequence[SfRecord]) -> set[str] | None:
        """Which of a feed page's records are in scope; None: all of them (see `_feed_where`)."""
        return None

    def _items(
        self, records: Sequence[SfRecord], in_scope: set[str] | None = None
    ) -> list[SideItem]:
        return [
            SideItem(
                id=r.id,
                version=_version(r),
                fields=self._from_sf(r),
                correlation_key=r.get(mapping.SYNC_KEY) or None,
                modified_at=parse_sf_datetime(r.get("LastModifiedDate")),
                in_scope=in_scope is None or r.id in in_scope,
            )
            for r in records
        ]

    def get(self, ids: Sequence[str]) -> list[SideItem]:
        if not ids:
            return []
        with self._metered():
            records = self.gateway.fetch(self.sobject, ids, self._select)
            in_scope = {r.id for r in records}
            if self.scope and records:
                in_scope = set()
                for chunk in _chunks([r.id for r in records], MAX_BATCH):
                    where = f"Id IN {soql_in(chunk)} AND ({self.scope})"
                    for page in self.gateway.query(self.sobject, ["Id"], where):
                        in_scope.update(r.id for r in page)
            return self._items(records, in_scope)

    def find_by_correlation_key(self, keys: Sequence[str]) -> dict[str, SideItem]:
        wanted = sorted({k for k in keys if k})
        found: dict[str, SideItem] = {}
        with self._metered():
            for chunk in _chunks(wanted, MAX_BATCH):
                where = f"{mapping.SYNC_KEY} IN {soql_in(chunk)}"
                for page in self.gateway.query(self.sobject, self._select, where):
                    for item in self._items(page):
                        if item.correlation_key:
                            found[item.correlation_key] = item
        return found

    def find_candidates(self, probes: Sequence[Mapping[str, FieldValue]]) -> list[SideItem]:
        found: dict[str, SideItem] = {}
        with self._metered():
            for chunk in _chunks(list(probes), PROBE_BATCH):
                clause = self._candidate_clause(chunk)
                if not clause:
                    continue
                where = f"({clause})" + (f" AND ({self.scope})" if self.scope else "")
                for page in self.gateway.query(self.sobject, self._select, where):
                    for item in self._items(page):
                        found[item.id] = item
        return list(found.values())

    # --- writing ------------------------------------------------------------------------------

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(items)
        with self._metered():
            for start in range(0, len(items), MAX_BATCH):
                batch = items[start : start + MAX_BATCH]
                context = self._write_context([n.fields for n in batch], self._fields)
                rows: list[dict[str, Any]] = []
                positions: list[int] = []
                for offset, new in enumerate(batch):
                    try:
                        row = self._to_sf(new.fields, self._fields, context)
                    except ValueError as exc:
                        results[start + offset] = WriteResult.failure(str(exc), transient=False)
                        continue
                    rows.append({mapping.SYNC_KEY: new.correlation_key, **row})
                    positions.append(start + offset)
                if rows:
                    written = self.gateway.writer.upsert(self.sobject, mapping.SYNC_KEY, rows)
                    self._finish(
                        written,
                        positions,
                        [dict(items[p].fields) for p in positions],
                        results,
                        context,
                        rows=rows,
                        held=[dict(items[p].fields) for p in positions],
                        names=[self._fields] * len(rows),
                    )
        return [r or WriteResult.failure("Not written.", transient=True) for r in results]

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(items)
        with self._metered():
            for start in range(0, len(items), MAX_BATCH):
                batch = items[start : start + MAX_BATCH]
                # The version check reads the records in full (the same one query), so what
                # Salesforce will hold after the update is known without a read-back.
                current = {
                    r.id: r
                    for r in self.gateway.fetch(self.sobject, [u.id for u in batch], self._select)
                }
                names_of = [frozenset(u.changed or u.fields) & self._fields for u in batch]
                context = self._write_context(
                    [u.fields for u in batch], frozenset().union(*names_of)
                )
                rows: list[dict[str, Any]] = []
                positions: list[int] = []
                for offset, change in enumerate(batch):
                    index = start + offset
                    record = current.get(change.id)
                    if record is None:
                        results[index] = WriteResult.failure(
                            "The record no longer exists in Salesforce.", transient=False
                        )
                    elif _version(record) != change.expected_version:
                        results[index] = WriteResult.failure(
                            "The record changed in Salesforce while syncing.", transient=True
                        )
                    elif not names_of[offset]:
                        results[index] = WriteResult.success(change.id, _version(record))
                    else:
                        try:
                            row = self._to_sf(change.fields, names_of[offset], context)
                        except ValueError as exc:
                            results[index] = WriteResult.failure(str(exc), transient=False)
                            continue
                        rows.append({"Id": change.id, **row})
                        positions.append(index)
                if rows:
                    written = self.gateway.writer.update(self.sobject, rows)
                    held = self._items([current[items[p].id] for p in positions])
                    self._finish(
                        written,
                        positions,
                        [
                            dict(items[p].fields) if "attendees" in names_of[p - start] else None
                            for p in positions
                        ],
                        results,
                        context,
                        rows=rows,
                        held=[dict(item.fields) for item in held],
                        names=[names_of[p - start] for p in positions],
                    )
        return [r or WriteResult.failure("Not written.", transient=True) for r in results]

    def delete(self, items: Sequence[ItemDelete]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(items)
        with self._metered():
            for start in range(0, len(items), MAX_BATCH):
                batch = items[start : start + MAX_BATCH]
                current = {
                    r.id: r for r in self.gateway.fetch(self.sobject, [d.id for d in batch], ())
                }
                ids: list[str] = []
                positions: list[int] = []
                for offset, gone in enumerate(batch):
                    record = current.get(gone.id)
                    if record is None:
                        results[start + offset] = WriteResult.success(gone.id, "")
                    elif gone.expected_version and _version(record) != gone.expected_version:
                        results[start + offset] = WriteResult.failure(
                            "The record changed in Salesforce while syncing.", transient=True
                        )
                    else:
                        ids.append(gone.id)
                        positions.append(start + offset)
                if ids:
                    for outcome in self.gateway.writer.delete(ids):
                        index = positions[outcome.index]
                        results[index] = (
                            WriteResult.success(ids[outcome.index], "")
                            if outcome.success
                            else _port_failure(outcome)
                        )
        return [r or WriteResult.failure("Not deleted.", transient=True) for r in results]

    def _finish(
        self,
        written: Sequence[SfWriteResult],
        positions: Sequence[int],
        fields: Sequence[Mapping[str, FieldValue] | None],
        results: list[WriteResult | None],
        context: Mapping[str, Any],
        *,
        rows: Sequence[Mapping[str, Any]],
        held: Sequence[Mapping[str, FieldValue]],
        names: Sequence[frozenset[str]],
    ) -> None:
        """Per-record results with each saved record's synced fields as Salesforce stores them,
        so a value it could not keep (no matching Account, no "tentative") is not taken for an
        edit.

        Where the kind can tell what Salesforce keeps of the row it was sent (`_predict`: the
        row read back through the same mapping as the change feed, over what the record held
        before), no read-back query is made: the result carries those fields and no version
        (""). The next change-feed read brings the record back with its SystemModstamp; its
        fields hash like the link's, so the engine takes it as our own write (it only stores
        the version) and an edit made in between still counts as an edit. Otherwise the saved
        records are read back (one query per batch, plus the attendees' for events)."""
        saved: dict[int, str] = {o.index: o.id for o in written if o.success and o.id}
        self._after_write(
            [(record_id, fields[index]) for index, record_id in saved.items()], context
        )
        predicted: dict[str, dict[str, FieldValue]] = {}
        for index, record_id in saved.items():
            guess = self._predict(rows[index], names[index], held[index], context)
            if guess is not None:
                predicted[record_id] = guess
        unknown = [record_id for record_id in saved.values() if record_id not in predicted]
        stored = (
            {
                item.id: item
                for item in self._items(self.gateway.fetch(self.sobject, unknown, self._select))
            }
            if unknown
            else {}
        )
        for outcome in written:
            index = positions[outcome.index]
            saved_id = saved.get(outcome.index)
            if saved_id is None:
                results[index] = _port_failure(outcome)
            elif saved_id in predicted:
                results[index] = WriteResult.success(saved_id, "", predicted[saved_id])
            else:
                item = stored.get(saved_id)
                results[index] = (
                    WriteResult.success(saved_id, item.version, item.fields)
                    if item is not None
                    else WriteResult.success(saved_id, "")
                )

    def _predict(
        self,
        row: Mapping[str, Any],
        names: frozenset[str],
        held: Mapping[str, FieldValue],
        context: Mapping[str, Any],
    ) -> dict[str, FieldValue] | None:
        """What Salesforce holds after `row` is saved over a record holding `held`, or None
        when only a read-back can tell (the default)."""
        return None

    # --- per kind -----------------------------------------------------------------------------

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        raise NotImplementedError

    def _to_sf(
        self, fields: Mapping[str, FieldValue], names: frozenset[str], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _write_context(
        self, fields: Sequence[Mapping[str, FieldValue]], names: frozenset[str]
    ) -> dict[str, Any]:
        """Lookups one batch of writes needs (account ids, attendees), one query each."""
        return {}

    def _after_write(
        self,
        saved: Sequence[tuple[str, Mapping[str, FieldValue] | None]],
        context: Mapping[str, Any],
    ) -> None:
        """Writes that follow the records' own (event relations)."""

    def _candidate_clause(self, probes: Sequence[Mapping[str, FieldValue]]) -> str:
        raise NotImplementedError


class SalesforceContacts(_SalesforceRepository):
    """Contacts in scope; company is the Account's name, looked up on write, never created."""

    sobject = "Contact"
    _kind: Kind = "contact"
    _select = mapping.CONTACT_SELECT
    _fields = mapping.CONTACT_FIELDS

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        return mapping.contact_from_sf(record.fields)

    def _to_sf(
        self, fields: Mapping[str, FieldValue], names: frozenset[str], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        accounts: Mapping[str, str] = context.get("accounts", {})
        return mapping.contact_to_sf(fields, names, accounts)

    def __init__(self, gateway: SalesforceGateway, *, scope: str | None) -> None:
        super().__init__(gateway, scope=scope)
        # Account lookups of this session: lower-cased name -> (Id, Name), None when no Account
        # has that name. One query per 200 new names, whatever the number of write batches.
        self._accounts: dict[str, tuple[str, str] | None] = {}

    def prepare_writes(self, fields: Sequence[Mapping[str, FieldValue]]) -> None:
        """Look up the Accounts of all the session's writes at once (see `_write_context`)."""
        with self._metered():
            self._lookup_accounts(fields)

    def _lookup_accounts(self, fields: Sequence[Mapping[str, FieldValue]]) -> None:
        wanted = sorted(
            {
                c
                for f in fields
                if isinstance(c := f.get("company"), str) and c and c.lower() not in self._accounts
            }
        )
        for chunk in _chunks(wanted, MAX_BATCH):
            exact: dict[str, tuple[str, str]] = {}
            folded: dict[str, tuple[str, str]] = {}
            where = f"Name IN {soql_in(chunk)}"
            for page in self.gateway.query(
                "Account", ["Name"], where, order_by="CreatedDate ASC, Id ASC"
            ):
                for record in page:
                    name = str(record.get("Name") or "")
                    exact.setdefault(name, (record.id, name))
                    folded.setdefault(name.lower(), (record.id, name))
            for name in chunk:
                if name.lower() not in self._accounts or name in exact:
                    self._accounts[name.lower()] = exact.get(name) or folded.get(name.lower())

    def _write_context(
        self, fields: Sequence[Mapping[str, FieldValue]], names: frozenset[str]
    ) -> dict[str, Any]:
        if "company" not in names:
            return {}
        self._lookup_accounts(fields)
        accounts = {name: found[0] for name, found in self._accounts.items() if found}
        account_names = {found[0]: found[1] for found in self._accounts.values() if found}
        return {"accounts": accounts, "account_names": account_names}

    def _predict(
        self,
        row: Mapping[str, Any],
        names: frozenset[str],
        held: Mapping[str, FieldValue],
        context: Mapping[str, Any],
    ) -> dict[str, FieldValue] | None:
        """Salesforce keeps the columns as sent; the company is the matched Account's own name
        (none without a match)."""
        record = dict(row)
        if "AccountId" in row:
            account_names: Mapping[str, str] = context.get("account_names", {})
            record["Account.Name"] = account_names.get(row["AccountId"] or "")
        echoed = self._from_sf(SfRecord(self.sobject, "", None, record))
        return {**held, **{name: echoed.get(name) for name in names}}

    def _candidate_clause(self, probes: Sequence[Mapping[str, FieldValue]]) -> str:
        emails = sorted({e for p in probes if isinstance(e := p.get("email"), str) and e})
        clauses = [f"Email IN {soql_in(emails)}"] if emails else []
        for probe in probes:
            first, last = probe.get("first_name"), probe.get("last_name")
            if isinstance(first, str) and first and isinstance(last, str) and last:
                clauses.append(
                    f"(FirstName = {soql_quote(first)} AND LastName = {soql_quote(last)})"
                )
        return " OR ".join(dict.fromkeys(clauses))


class SalesforceTasks(_SalesforceRepository):
    """The user's open tasks and those due or modified lately, without email activities."""

    sobject = "Task"
    _kind: Kind = "task"
    _select = mapping.TASK_SELECT
    _fields = mapping.TASK_FIELDS

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        return mapping.task_from_sf(record.fields)

    def _to_sf(
        self, fields: Mapping[str, FieldValue], names: frozenset[str], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        return mapping.task_to_sf(fields, names)

    def _predict(
        self,
        row: Mapping[str, Any],
        names: frozenset[str],
        held: Mapping[str, FieldValue],
        context: Mapping[str, Any],
    ) -> dict[str, FieldValue] | None:
        """Every task column is sent as Salesforce keeps it (status and priority already
        mapped to its picklists)."""
        echoed = self._from_sf(SfRecord(self.sobject, "", None, dict(row)))
        return {**held, **{name: echoed.get(name) for name in names}}

    def _candidate_clause(self, probes: Sequence[Mapping[str, FieldValue]]) -> str:
        clauses = []
        for probe in probes:
            subject, due = probe.get("subject"), probe.get("due_date")
            if isinstance(subject, str) and subject and isinstance(due, str) and due:
                clauses.append(f"(Subject = {soql_quote(subject)} AND ActivityDate = {due[:10]})")
        return " OR ".join(dict.fromkeys(clauses))


class SalesforceEvents(_SalesforceRepository):
    """The user's events in the window; attendees become Who relations and invitees."""

    sobject = "Event"
    _kind: Kind = "event"
    _select = mapping.EVENT_SELECT

    def __init__(
        self, gateway: SalesforceGateway, *, scope: str | None, user_id: str, attendees: bool
    ) -> None:
        super().__init__(gateway, scope=scope)
        self.user_id = user_id
        self.with_attendees = attendees
        self._fields = mapping.EVENT_FIELDS | (
            {"attendees", "responses"} if attendees else frozenset()
        )
        if attendees:  # every read of events (feed, lookups, read-back) brings their attendees
            self._select = (*mapping.EVENT_SELECT, ATTENDEES_SUBQUERY)

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        fields = mapping.event_from_sf(record.fields)
        if self.with_attendees:
            fields.update(
                normalize(
                    "event",
                    {
                        "attendees": record.get("__attendees") or (),
                        "responses": record.get("__responses") or (),
                    },
                )
            )
        return fields

    def _items(
        self, records: Sequence[SfRecord], in_scope: set[str] | None = None
    ) -> list[SideItem]:
        if self.with_attendees and records:
            # records read without the subquery (none today) cost one query for their relations
            missing = [r.id for r in records if "EventRelations" not in r.fields]
            related: dict[str, list[Any]] = {}
            for relation in self._relations(missing) if missing else ():
                related.setdefault(str(relation.get("EventId")), []).append(relation)
            for r in records:
                related.setdefault(r.id, []).extend(r.get("EventRelations") or ())
            records = [
                SfRecord(
                    r.sobject,
                    r.id,
                    r.system_modstamp,
                    {**r.fields, **_people_of(related.get(r.id, ()))},
                )
                for r in records
            ]
        return super()._items(records, in_scope)

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        """An answer changed is written with the attendees' relations (`_after_write`)."""
        return super().update(
            [
                replace(u, changed=u.changed | {"attendees"}) if "responses" in u.changed else u
                for u in items
            ]
        )

    def _relations(self, event_ids: Sequence[str]) -> list[SfRecord]:
        """The people related to these events (Whos and invitees), one query per 200 events."""
        out: list[SfRecord] = []
        for chunk in _chunks(list(event_ids), MAX_BATCH):
            where = f"EventId IN {soql_in(chunk)} AND IsWhat = false"
            for page in self.gateway.query(
                "EventRelation",
                ["EventId", *RELATION_FIELDS],
                where,
            ):
                out.extend(page)
        return out

    def _to_sf(
        self, fields: Mapping[str, FieldValue], names: frozenset[str], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        row = mapping.event_to_sf(fields, names)
        if self.with_attendees and "attendees" in names:
            people: Mapping[str, list[PersonMatch]] = context.get("people", {})
            whos, _ = self._plan_people(fields, people)
            row["WhoId"] = whos[0] if whos else None
        return row

    def _write_context(
        self, fields: Sequence[Mapping[str, FieldValue]], names: frozenset[str]
    ) -> dict[str, Any]:
        if not self.with_attendees or "attendees" not in names:
            return {}
        addresses = sorted({a for f in fields for a in _attendees(f)})
        return {"people": self.gateway.matcher.resolve(addresses) if addresses else {}}

    def _plan_people(
        self, fields: Mapping[str, FieldValue], people: Mapping[str, list[PersonMatch]]
    ) -> tuple[list[str], list[str]]:
        """(Who ids, invited user ids): up to 50 contacts, else one lead; users are invited.

        An address matching several records takes the first Contact, else Lead, else User.
        """
        contacts: list[str] = []
        leads: list[str] = []
        users: list[str] = []
        for address in _attendees(fields):
            matches = people.get(address) or []
            by_kind = {m.kind: m.id for m in reversed(matches)}
            if "Contact" in by_kind:
                contacts.append(by_kind["Contact"])
            elif "Lead" in by_kind:
                leads.append(by_kind["Lead"])
            elif "User" in by_kind and by_kind["User"] != self.user_id:
                users.append(by_kind["User"])
        whos = list(dict.fromkeys(contacts))[:MAX_CONTACT_WHOS] if contacts else leads[:1]
        return whos, list(dict.fromkeys(users))

    def _after_write(
        self,
        saved: Sequence[tuple[str, Mapping[str, FieldValue] | None]],
        context: Mapping[str, Any],
    ) -> None:
        """Make each event's relations match its attendees: the WhoId's relation is made by
        Salesforce itself; the other Whos and the invitees are created, the rest removed."""
        if not self.with_attendees or "people" not in context:
            return
        targets = {event_id: f for event_id, f in saved if f is not None}
        if not targets:
            return
        people: Mapping[str, list[PersonMatch]] = context["people"]
        existing: dict[str, dict[str, SfRecord]] = {}
        for relation in self._relations(list(targets)):
            existing.setdefault(str(relation.get("EventId")), {})[
                str(relation.get("RelationId"))
            ] = relation
        creates: list[dict[str, Any]] = []
        deletes: list[str] = []
        answered: list[dict[str, Any]] = []  # relations whose answer changed in the mailbox
        for event_id, fields in targets.items():
            whos, users = self._plan_people(fields, people)
            wanted = {**dict.fromkeys(whos, True), **dict.fromkeys(users, False)}
            answers = self._answers(fields, people)
            have = existing.get(event_id, {})
            for relation_id, relation in have.items():
                if relation_id not in wanted:
                    deletes.append(relation.id)
                elif relation_id in answers and _answer_differs(relation, answers[relation_id]):
                    answered.append(
                        {"Id": relation.id, **_answer_columns(answers[relation_id], relation)}
                    )
            for relation_id, is_who in wanted.items():
                if relation_id in have:
                    continue
                creates.append(
                    {
                        "EventId": event_id,
                        "RelationId": relation_id,
                        "IsParent": is_who,
                        "IsInvitee": not is_who,
                        "IsWhat": False,
                        **(_answer_columns(answers[relation_id]) if relation_id in answers else {}),
                    }
                )
        outcomes = self.gateway.writer.delete(deletes) if deletes else []
        if creates:
            outcomes += self.gateway.writer.create("EventRelation", creates)
        if answered:
            outcomes += self.gateway.writer.update("EventRelation", answered)
        for outcome in outcomes:
            if not outcome.success and outcome.error is not None:
                # The event itself is saved; a relation Salesforce refuses (over its limits)
                # leaves that attendee out, which the next read shows.
                log.warning("event relation not saved: %s", outcome.error.user_message)

    def _answers(
        self, fields: Mapping[str, FieldValue], people: Mapping[str, list[PersonMatch]]
    ) -> dict[str, tuple[str, str | None]]:
        """The mailbox attendees' answers by the id of the person each one is in Salesforce
        (the same choice as `_plan_people`): {relation id: (Status, Response)}."""
        out: dict[str, tuple[str, str | None]] = {}
        for address, answer in mapping.parse_responses(fields.get("responses")).items():
            by_kind = {m.kind: m.id for m in reversed(people.get(address) or [])}
            for kind in ("Contact", "Lead", "User"):
                if kind in by_kind:
                    out[by_kind[kind]] = mapping.RESPONSE_TO_SF[answer]
                    break
        return out

    def _candidate_clause(self, probes: Sequence[Mapping[str, FieldValue]]) -> str:
        clauses = []
        for probe in probes:
            subject, start = probe.get("subject"), probe.get("start")
            if not (isinstance(subject, str) and subject and isinstance(start, str) and start):
                continue
            if len(start) == 10:
                clauses.append(
                    f"(Subject = {soql_quote(subject)} AND IsAllDayEvent = true "
                    f"AND ActivityDate = {start})"
                )
            else:
                moment = datetime.fromisoformat(start)
                moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
                clauses.append(
                    f"(Subject = {soql_quote(subject)} AND StartDateTime = {soql_datetime(moment)})"
                )
        return " OR ".join(dict.fromkeys(clauses))


def _answer_columns(
    answer: tuple[str, str | None], relation: SfRecord | None = None
) -> dict[str, Any]:
    """Status and RespondedDate; Response only for our tentative note (set, or cleared once
    the answer is firm): a comment the invitee wrote in Salesforce is left as it is."""
    status, response = answer
    columns: dict[str, Any] = {
        "Status": status,
        "RespondedDate": mapping.sf_datetime_text(datetime.now(UTC)),
    }
    current = relation.get("Response") if relation is not None else None
    if response is not None or current == mapping.TENTATIVE_COMMENT:
        columns["Response"] = response
    return columns


def _answer_differs(relation: SfRecord, answer: tuple[str, str | None]) -> bool:
    status, response = answer
    current: object = relation.get("Response")
    held: object = relation.get("Status")
    if response is None:
        return held != status or current == mapping.TENTATIVE_COMMENT
    return held != status or current != response


def _people_of(relations: Sequence[Any]) -> dict[str, tuple[str, ...]]:
    """An event's relations as its "__attendees" (their addresses) and "__responses"."""
    emails: list[str] = []
    answers: list[str] = []
    for relation in relations:
        email = relation.get("Relation.Email")
        if isinstance(email, str) and email:
            emails.append(email)
            answer = mapping.relation_answer(relation.get("Status"), relation.get("Response"))
            if answer is not None:
                answers.append(f"{email}:{answer}")
    return {"__attendees": tuple(emails), "__responses": tuple(answers)}


def _attendees(fields: Mapping[str, FieldValue]) -> list[str]:
    value = fields.get("attendees")
    if isinstance(value, tuple):
        return [v.lower() for v in value if v]
    return []


class SalesforceCalendarTasks(_SalesforceRepository):
    """Calendar items saved as Tasks (`calendar_items_as_tasks`): the calendar kind's other
    Salesforce object. Subject syncs as it is; the time, place and body live in the Task's date
    and Comments (`salesforce_mapping.calendar_task_*`); the first Contact (else Lead) among
    the attendees is its Who. What a Task cannot hold (show-as, privacy, the other attendees,
    answers) stays the mailbox's own value. Its sync key carries `CALENDAR_KEY_PREFIX`, which
    is its scope and keeps it out of the tasks kind."""

    sobject = "Task"
    _kind: Kind = "event"
    _select = mapping.CALENDAR_TASK_SELECT

    def __init__(
        self,
        gateway: SalesforceGateway,
        *,
        scope: str | None,
        fields: frozenset[str],
        zone: tzinfo,
    ) -> None:
        super().__init__(gateway, scope=scope)
        self._fields = fields
        self.zone = zone

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        values = mapping.calendar_task_from_sf(record.fields, self.zone)
        return {name: value for name, value in values.items() if name in self._fields}

    def _items(
        self, records: Sequence[SfRecord], in_scope: set[str] | None = None
    ) -> list[SideItem]:
        return [
            replace(item, correlation_key=_unprefixed(item.correlation_key))
            for item in super()._items(records, in_scope)
        ]

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]:
        prefix = mapping.CALENDAR_KEY_PREFIX
        return super().create(
            [replace(n, correlation_key=prefix + n.correlation_key) for n in items]
        )

    def find_by_correlation_key(self, keys: Sequence[str]) -> dict[str, SideItem]:
        return super().find_by_correlation_key([mapping.CALENDAR_KEY_PREFIX + k for k in keys])

    def _to_sf(
        self, fields: Mapping[str, FieldValue], names: frozenset[str], context: Mapping[str, Any]
    ) -> dict[str, Any]:
        row = mapping.calendar_task_to_sf(fields, names, self.zone, datetime.now(UTC))
        if "attendees" in names:
            people: Mapping[str, list[PersonMatch]] = context.get("people", {})
            row["WhoId"] = _first_who(fields, people)
        return row

    def _write_context(
        self, fields: Sequence[Mapping[str, FieldValue]], names: frozenset[str]
    ) -> dict[str, Any]:
        if "attendees" not in names:
            return {}
        addresses = sorted({a for f in fields for a in _attendees(f)})
        return {"people": self.gateway.matcher.resolve(addresses) if addresses else {}}

    def _candidate_clause(self, probes: Sequence[Mapping[str, FieldValue]]) -> str:
        clauses = []
        for probe in probes:
            subject, day = probe.get("subject"), mapping.calendar_day(probe, self.zone)
            if isinstance(subject, str) and subject and day is not None:
                clauses.append(f"(Subject = {soql_quote(subject)} AND ActivityDate = {day})")
        return " OR ".join(dict.fromkeys(clauses))


def _unprefixed(key: str | None) -> str | None:
    prefix = mapping.CALENDAR_KEY_PREFIX
    return key[len(prefix) :] if key and key.startswith(prefix) else key


def _first_who(
    fields: Mapping[str, FieldValue], people: Mapping[str, list[PersonMatch]]
) -> str | None:
    """The first attendee that is a Contact, else the first that is a Lead."""
    for wanted in ("Contact", "Lead"):
        for address in _attendees(fields):
            for match in people.get(address) or []:
                if match.kind == wanted:
                    return match.id
    return None


TASK_PREFIX = "00T"  # Salesforce's key prefix of Task ids (Events are 00U)


class SalesforceCalendar:
    """The calendar kind's Salesforce side: Events, plus the Tasks saved from calendar items.

    New items go to Tasks while `calendar_items_as_tasks` is on (private ones stay Events:
    a Task has no private flag), else to Events. Linked records stay what they are when the
    setting flips: an Event link keeps syncing with its Event, a Task link with its Task, so
    flipping it never duplicates nor deletes anything; only new items follow the setting. The
    Task stream is read while the setting is on or any calendar link points at a Task (`tasks`
    None otherwise: no call). Ids are routed by their key prefix; the cursor holds both feeds'.
    """

    def __init__(
        self,
        events: SalesforceEvents,
        tasks: SalesforceCalendarTasks,
        *,
        as_tasks: bool,
        read_tasks: bool,
    ) -> None:
        self.events = events
        self.tasks = tasks
        self.as_tasks = as_tasks
        self.read_tasks = read_tasks or as_tasks

    @property
    def side(self) -> Side:
        return "salesforce"

    @property
    def kind(self) -> Kind:
        return "event"

    @property
    def fields(self) -> frozenset[str]:
        return self.events.fields

    @property
    def max_batch(self) -> int:
        return MAX_BATCH

    def api_calls(self) -> Mapping[str, int]:
        return {"salesforce": self.events._calls + self.tasks._calls}

    def _of(self, item_id: str) -> _SalesforceRepository:
        return self.tasks if item_id.startswith(TASK_PREFIX) else self.events

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        tokens = _split_calendar_cursor(cursor)
        events_token, tasks_token = tokens
        for page in self.events.read_changes(events_token):
            events_token = page.cursor
            yield replace(page, cursor=_join_calendar_cursor(events_token, tasks_token))
        if not self.read_tasks:
            return
        for page in self.tasks.read_changes(tasks_token):
            tasks_token = page.cursor
            yield replace(page, cursor=_join_calendar_cursor(events_token, tasks_token))

    def get(self, ids: Sequence[str]) -> list[SideItem]:
        task_ids = [i for i in ids if i.startswith(TASK_PREFIX)]
        event_ids = [i for i in ids if not i.startswith(TASK_PREFIX)]
        return [*self.events.get(event_ids), *self.tasks.get(task_ids)]

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]:
        to_tasks = [self.as_tasks and not n.fields.get("is_private") for n in items]
        results: list[WriteResult | None] = [None] * len(items)
        for repo, wanted in ((self.tasks, True), (self.events, False)):
            positions = [i for i, t in enumerate(to_tasks) if t is wanted]
            if positions:
                for index, result in zip(
                    positions, repo.create([items[i] for i in positions]), strict=True
                ):
                    results[index] = result
        return [r or WriteResult.failure("Not written.", transient=True) for r in results]

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        return self._split(items, lambda repo, batch: repo.update(batch))

    def delete(self, items: Sequence[ItemDelete]) -> list[WriteResult]:
        return self._split(items, lambda repo, batch: repo.delete(batch))

    def _split(self, items: Sequence[Any], write: Any) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(items)
        for repo in (self.events, self.tasks):
            positions = [i for i, item in enumerate(items) if self._of(item.id) is repo]
            if positions:
                done = write(repo, [items[i] for i in positions])
                for index, result in zip(positions, done, strict=True):
                    results[index] = result
        return [r or WriteResult.failure("Not written.", transient=True) for r in results]

    def find_by_correlation_key(self, keys: Sequence[str]) -> dict[str, SideItem]:
        return {
            **self.events.find_by_correlation_key(keys),
            **self.tasks.find_by_correlation_key(keys),
        }

    def find_candidates(self, probes: Sequence[Mapping[str, FieldValue]]) -> list[SideItem]:
        found = self.events.find_candidates(probes)
        if self.read_tasks:
            found = [*found, *self.tasks.find_candidates(probes)]
        return found


def _split_calendar_cursor(cursor: str | None) -> tuple[str | None, str | None]:
    """(Events feed token, Tasks feed token); a cursor saved before Tasks joined is the
    Events feed's own."""
    if not cursor:
        return None, None
    try:
        data = json.loads(cursor)
    except ValueError:
        return cursor, None
    if isinstance(data, dict) and set(data) == {"events", "tasks"}:
        events, tasks = data["events"], data["tasks"]
        return (
            events if isinstance(events, str) and events else None,
            tasks if isinstance(tasks, str) and tasks else None,
        )
    return cursor, None


def _join_calendar_cursor(events: str | None, tasks: str | None) -> str:
    if tasks is None:
        return events or ""  # as before Tasks joined: the Events feed's own token
    return json.dumps({"events": events or "", "tasks": tasks}, separators=(",", ":"))


class SalesforceTaskCalendar(SalesforceTasks):
    """`show_sf_tasks_in_calendar`: the user's open Tasks with a date in the calendar window,
    read for the read-only calendar items (kind "task_calendar", Salesforce -> mailbox only).

    The feed reads all the user's Tasks (`feed_where`) and sorts them here: a Task closed,
    moved out of the window or handed to someone else comes back as departed, so its calendar
    item goes at once (an incremental read filtered on the scope would never see it leave).
    """

    _kind: Kind = "task_calendar"
    _fields = frozenset({"subject", "due_date", "description"})

    def __init__(
        self,
        gateway: SalesforceGateway,
        *,
        scope: str,
        feed_where: str,
        window: tuple[date, date],
        shown: bool = True,
    ) -> None:
        super().__init__(gateway, scope=scope)
        self.feed_where = feed_where
        self.window = window
        self.shown = shown

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        return normalize(
            "task_calendar",
            {
                "subject": record.get("Subject"),
                "due_date": record.get("ActivityDate"),
                "description": record.get("Description"),
            },
        )

    def _shown(self, record: SfRecord) -> bool:
        day = record.get("ActivityDate")
        key = record.get(mapping.SYNC_KEY)
        return (
            not record.get("IsClosed")
            and isinstance(day, str)
            and self.window[0].isoformat() <= day[:10] <= self.window[1].isoformat()
            and record.get("TaskSubtype") != "Email"
            and not (isinstance(key, str) and key.startswith(mapping.CALENDAR_KEY_PREFIX))
        )

    def read_changes(self, cursor: str | None) -> Iterator[ChangePage]:
        if not self.shown:
            # the setting is off: an empty full listing, so every shown item is withdrawn
            # (`get` finds nothing either), and no cursor, so turning it on lists them all
            # again; no call
            yield ChangePage((), (), "", full=True)
            return
        yield from super().read_changes(cursor)

    def _feed_where(self) -> str | None:
        return self.feed_where

    def _in_scope(self, records: Sequence[SfRecord]) -> set[str] | None:
        return {r.id for r in records if self._shown(r)}

    def get(self, ids: Sequence[str]) -> list[SideItem]:
        return super().get(ids) if self.shown else []

    def create(self, items: Sequence[NewItem]) -> list[WriteResult]:
        return [WriteResult.failure(_READ_ONLY, transient=False) for _ in items]

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        return [WriteResult.failure(_READ_ONLY, transient=False) for _ in items]

    def delete(self, items: Sequence[ItemDelete]) -> list[WriteResult]:
        return [WriteResult.failure(_READ_ONLY, transient=False) for _ in items]


_READ_ONLY = "Salesforce Tasks shown in the calendar are read-only: nothing is written back."


# --- scopes and the factory ---------------------------------------------------------------------


def contact_scope(settings: SettingsSnapshot, user_id: str) -> str | None:
    """mine (OwnerId), all (no filter) or the user's SOQL filter (blank means mine)."""
    scope = settings.text("contacts_scope")
    if scope == "all":
        return None
    if scope == "filter":
        text = settings.text("contacts_filter").strip()
        if text:
            return f"({text})"
    return f"OwnerId = {soql_quote(user_id)}"


def event_window(settings: SettingsSnapshot, now: datetime) -> tuple[datetime, datetime]:
    """Whole UTC days, so the scope (and so the cursor) changes once a day, not every session."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=settings.number("calendar_days_back"))
    end = today + timedelta(days=settings.number("calendar_days_ahead") + 1)
    return start, end


def event_scope(settings: SettingsSnapshot, user_id: str, now: datetime) -> str:
    start, end = event_window(settings, now)
    clauses = [
        f"OwnerId = {soql_quote(user_id)}",
        "IsChild = false",
        f"StartDateTime >= {soql_datetime(start)}",
        f"StartDateTime < {soql_datetime(end)}",
    ]
    if not settings.flag("sync_private_items"):
        clauses.append("IsPrivate = false")
    return " AND ".join(clauses)


NOT_CALENDAR_TASK = (
    f"({mapping.SYNC_KEY} = null OR (NOT {mapping.SYNC_KEY} LIKE "
    f"{soql_quote(mapping.CALENDAR_KEY_PREFIX + '%')}))"
)
"""Leaves out the Tasks saved from calendar items (they belong to the calendar kind)."""


def task_scope(user_id: str) -> str:
    return (
        f"OwnerId = {soql_quote(user_id)} AND TaskSubtype != 'Email' AND (IsClosed = false "
        "OR ActivityDate = LAST_N_DAYS:14 OR LastModifiedDate = LAST_N_DAYS:14) AND "
        + NOT_CALENDAR_TASK
    )


def _window_days(settings: SettingsSnapshot, now: datetime) -> tuple[date, date]:
    """The calendar window as dates, both included."""
    start, end = event_window(settings, now)
    return start.date(), end.date() - timedelta(days=1)


def calendar_task_scope(settings: SettingsSnapshot, user_id: str, now: datetime) -> str:
    """The Tasks saved from calendar items, dated inside the window."""
    first, last = _window_days(settings, now)
    return (
        f"OwnerId = {soql_quote(user_id)} AND {mapping.SYNC_KEY} LIKE "
        f"{soql_quote(mapping.CALENDAR_KEY_PREFIX + '%')} AND ActivityDate >= {first} "
        f"AND ActivityDate <= {last}"
    )


def task_calendar_scope(settings: SettingsSnapshot, user_id: str, now: datetime) -> str:
    """The user's open Tasks dated inside the window (shown in the calendar), without email
    activities and without the Tasks saved from calendar items."""
    first, last = _window_days(settings, now)
    return (
        f"OwnerId = {soql_quote(user_id)} AND TaskSubtype != 'Email' AND IsClosed = false "
        f"AND ActivityDate >= {first} AND ActivityDate <= {last} AND {NOT_CALENDAR_TASK}"
    )


def salesforce_repositories(
    gateway: SalesforceGateway,
    settings: SettingsSnapshot,
    *,
    user_id: str,
    now: datetime,
    attendees: bool = True,
    task_links: bool = False,
    zone: tzinfo = UTC,
) -> dict[Kind, SideRepository]:
    """The Salesforce side of one session, one repository per kind over one gateway.

    `attendees` is on by default: meeting attendees become Who relations and invitees.
    Salesforce keeps only the attendees it knows (Contacts, Leads, Users); the write's read-back
    records that as Salesforce's own value, and the mailbox declares attendees read-only, so
    the missing ones never flow back to (nor are ever written into) the mailbox meeting.
    """
    user = user_id or gateway.user_id
    if not user:
        raise ValueError("the Salesforce user id is needed to scope the sync")
    events = SalesforceEvents(
        gateway, scope=event_scope(settings, user, now), user_id=user, attendees=attendees
    )
    as_tasks = settings.flag("calendar_items_as_tasks")
    calendar: SideRepository = events
    if as_tasks or task_links:
        tasks = SalesforceCalendarTasks(
            gateway,
            scope=calendar_task_scope(settings, user, now),
            fields=events.fields,
            zone=zone,
        )
        calendar = SalesforceCalendar(events, tasks, as_tasks=as_tasks, read_tasks=task_links)
    return {
        "contact": SalesforceContacts(gateway, scope=contact_scope(settings, user)),
        "event": calendar,
        "task": SalesforceTasks(gateway, scope=task_scope(user)),
    }


def task_calendar_repository(
    gateway: SalesforceGateway, settings: SettingsSnapshot, *, user_id: str, now: datetime
) -> SalesforceTaskCalendar:
    """The Salesforce Tasks shown in the calendar, for a session that runs that kind (with the
    setting off it only takes the shown ones away)."""
    return SalesforceTaskCalendar(
        gateway,
        scope=task_calendar_scope(settings, user_id, now),
        feed_where=f"OwnerId = {soql_quote(user_id)} AND TaskSubtype != 'Email'",
        window=_window_days(settings, now),
        shown=settings.flag("show_sf_tasks_in_calendar"),
    )
