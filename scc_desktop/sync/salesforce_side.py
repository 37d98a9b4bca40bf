"""The Salesforce side of the sync engine: Contacts, Events and Tasks as `SideRepository`s.

Everything goes through one `SalesforceGateway`, so calls are batched the way the org's daily
limit wants: one change-feed read per kind, one query per batch for lookups (accounts, current
versions, candidates, attendees), sObject Collections for writes. Creates are upserts on the
external id `SCC_Sync_Key__c`, so a create retried after a crash updates instead of duplicating.
The new SystemModstamp and synced fields of every written record are read back (one query per
batch) and returned, so our own writes don't come back as changes, nor what Salesforce could not
keep (an unknown company, "tentative") as edits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
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
RELATION_FIELDS = ("RelationId", "Relation.Email", "IsInvitee", "IsParent")
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
            self.sobject, self._select, cursor=self._feed_cursor(cursor), where=self.scope
        )
        while True:
            with self._metered():
                page = next(pages, None)
                if page is None:
                    return
                items = self._items(page.records)
            yield ChangePage(
                upserted=items,
                removed=[d.id for d in page.deleted],
                cursor=self._token(page.cursor),
                full=page.full,
            )

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
                    )
        return [r or WriteResult.failure("Not written.", transient=True) for r in results]

    def update(self, items: Sequence[ItemUpdate]) -> list[WriteResult]:
        results: list[WriteResult | None] = [None] * len(items)
        with self._metered():
            for start in range(0, len(items), MAX_BATCH):
                batch = items[start : start + MAX_BATCH]
                current = {
                    r.id: r for r in self.gateway.fetch(self.sobject, [u.id for u in batch], ())
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
                    self._finish(
                        written,
                        positions,
                        [
                            dict(items[p].fields) if "attendees" in names_of[p - start] else None
                            for p in positions
                        ],
                        results,
                        context,
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
    ) -> None:
        """Per-record results with each saved record's new version and synced fields as
        Salesforce stored them (one query for all, plus the attendees' for events), so a value
        it could not keep (no matching Account, no "tentative") is not taken for an edit."""
        saved = {o.index: o.id for o in written if o.success and o.id}
        self._after_write(
            [(record_id, fields[index]) for index, record_id in saved.items()], context
        )
        stored = {
            item.id: item
            for item in self._items(
                self.gateway.fetch(self.sobject, list(saved.values()), self._select)
            )
        }
        for outcome in written:
            index = positions[outcome.index]
            record_id = saved.get(outcome.index)
            if record_id is not None:
                item = stored.get(record_id)
                results[index] = (
                    WriteResult.success(record_id, item.version, item.fields)
                    if item is not None
                    else WriteResult.success(record_id, "")
                )
            else:
                results[index] = _port_failure(outcome)

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

    def _write_context(
        self, fields: Sequence[Mapping[str, FieldValue]], names: frozenset[str]
    ) -> dict[str, Any]:
        if "company" not in names:
            return {}
        wanted = sorted({c for f in fields if isinstance(c := f.get("company"), str) and c})
        if not wanted:
            return {}
        exact: dict[str, str] = {}
        folded: dict[str, str] = {}
        where = f"Name IN {soql_in(wanted)}"
        for page in self.gateway.query(
            "Account", ["Name"], where, order_by="CreatedDate ASC, Id ASC"
        ):
            for record in page:
                name = str(record.get("Name") or "")
                exact.setdefault(name, record.id)
                folded.setdefault(name.lower(), record.id)
        accounts = {
            name.lower(): exact.get(name) or folded[name.lower()]
            for name in wanted
            if name in exact or name.lower() in folded
        }
        return {"accounts": accounts}

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
        self._fields = mapping.EVENT_FIELDS | ({"attendees"} if attendees else frozenset())
        if attendees:  # every read of events (feed, lookups, read-back) brings their attendees
            self._select = (*mapping.EVENT_SELECT, ATTENDEES_SUBQUERY)

    def _from_sf(self, record: SfRecord) -> dict[str, FieldValue]:
        fields = mapping.event_from_sf(record.fields)
        if self.with_attendees:
            fields.update(normalize("event", {"attendees": record.get("__attendees") or ()}))
        return fields

    def _items(
        self, records: Sequence[SfRecord], in_scope: set[str] | None = None
    ) -> list[SideItem]:
        if self.with_attendees and records:
            # records read without the subquery (none today) cost one query for their relations
            missing = [r.id for r in records if "EventRelations" not in r.fields]
            emails = self._attendee_emails(missing) if missing else {}
            for r in records:
                for relation in r.get("EventRelations") or ():
                    email = relation.get("Relation.Email")
                    if isinstance(email, str) and email:
                        emails.setdefault(r.id, []).append(email)
            records = [
                SfRecord(
                    r.sobject,
                    r.id,
                    r.system_modstamp,
                    {**r.fields, "__attendees": tuple(emails.get(r.id, ()))},
                )
                for r in records
            ]
        return super()._items(records, in_scope)

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

    def _attendee_emails(self, event_ids: Sequence[str]) -> dict[str, list[str]]:
        emails: dict[str, list[str]] = {}
        for relation in self._relations(event_ids):
            email = relation.get("Relation.Email")
            if isinstance(email, str) and email:
                emails.setdefault(str(relation.get("EventId")), []).append(email)
        return emails

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
        for event_id, fields in targets.items():
            whos, users = self._plan_people(fields, people)
            wanted = {**dict.fromkeys(whos, True), **dict.fromkeys(users, False)}
            have = existing.get(event_id, {})
            for relation_id, relation in have.items():
                if relation_id not in wanted:
                    deletes.append(relation.id)
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
                    }
                )
        outcomes = self.gateway.writer.delete(deletes) if deletes else []
        if creates:
            outcomes += self.gateway.writer.create("EventRelation", creates)
        for outcome in outcomes:
            if not outcome.success and outcome.error is not None:
                # The event itself is saved; a relation Salesforce refuses (over its limits)
                # leaves that attendee out, which the next read shows.
                log.warning("event relation not saved: %s", outcome.error.user_message)

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


def _attendees(fields: Mapping[str, FieldValue]) -> list[str]:
    value = fields.get("attendees")
    if isinstance(value, tuple):
        return [v.lower() for v in value if v]
    return []


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


def task_scope(user_id: str) -> str:
    return (
        f"OwnerId = {soql_quote(user_id)} AND TaskSubtype != 'Email' AND (IsClosed = false "
        "OR ActivityDate = LAST_N_DAYS:14 OR LastModifiedDate = LAST_N_DAYS:14)"
    )


def salesforce_repositories(
    gateway: SalesforceGateway,
    settings: SettingsSnapshot,
    *,
    user_id: str,
    now: datetime,
    attendees: bool = True,
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
    return {
        "contact": SalesforceContacts(gateway, scope=contact_scope(settings, user)),
        "event": SalesforceEvents(
            gateway, scope=event_scope(settings, user, now), user_id=user, attendees=attendees
        ),
        "task": SalesforceTasks(gateway, scope=task_scope(user)),
    }
