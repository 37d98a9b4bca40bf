"""What the Save Email and New Records windows do, as plain functions (no Qt; headless-testable).

    messages = recent_messages(mailbox)                       # Inbox + Sent Items, headers only
    choices = search_records(gateway, "O'Brien")              # the Related To picker
    outcome = save_email(gateway, mailbox, state, snapshot, message_id, related_to_id=...,
                         autosave_thread=True, user_id=..., own_addresses=[...], now=now)
    people = frequent_correspondents(mailbox, gateway, snapshot, own_addresses=[...])
    create_contact(gateway, person, account_name="Acme")  /  create_lead(gateway, person, "Acme")
    do_not_sync(settings, person.address)                      # the user's Blacklisted Domains
    pending = list_unresolved(state)                           # the Unresolved Emails window
    link_email(gateway, state, pending[0].key, choice)         # link one to a record

A window save goes through the email stage's manual path (`email_session.save_one_message`):
the same key as the automatic path, so a message is saved once whichever comes first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from scc_desktop.blacklist import parse_blacklist
from scc_desktop.mailbox.graph import mapping
from scc_desktop.mailbox.graph.mailbox import GraphMailbox
from scc_desktop.mailbox.protocol import Mailbox
from scc_desktop.mailbox.types import Address, MailMessage, MessageFolder
from scc_desktop.salesforce.errors import RecordFailed
from scc_desktop.salesforce.gateway import SalesforceGateway
from scc_desktop.salesforce.matching import run_queries
from scc_desktop.salesforce.records import SfRecord
from scc_desktop.salesforce.soql import select, soql_like, soql_quote
from scc_desktop.settings import Settings, SettingsSnapshot, Value
from scc_desktop.sync.email_rules import EmailContext, ManualSave, address_key
from scc_desktop.sync.email_session import link_unresolved, save_one_message, unresolved_emails
from scc_desktop.sync.state import SyncState

__all__ = [
    "Correspondent",
    "MessageSummary",
    "RecordChoice",
    "SaveOutcome",
    "UnresolvedEmail",
    "count_unresolved",
    "create_contact",
    "create_lead",
    "do_not_sync",
    "frequent_correspondents",
    "link_email",
    "list_unresolved",
    "recent_messages",
    "save_email",
    "search_records",
]

MESSAGE_FOLDERS = (MessageFolder.INBOX, MessageFolder.SENT)
SEARCH_KINDS = ("Account", "Opportunity", "Contact", "Lead")
CORRESPONDENT_PAGE = 250  # messages read per folder for New Records


@dataclass(frozen=True)
class MessageSummary:
    """One message as the Save Email window lists it (headers only)."""

    id: str
    folder: MessageFolder
    sender: str
    recipients: str
    subject: str
    when: datetime | None
    conversation_id: str = ""


@dataclass(frozen=True)
class RecordChoice:
    """A record the Related To picker offers."""

    id: str
    kind: str  # Account | Opportunity | Contact | Lead
    name: str
    detail: str = ""

    @property
    def label(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        return f"{self.name} ({self.kind}{extra})"


@dataclass(frozen=True)
class SaveOutcome:
    status: Literal["saved", "already_saved", "unresolved", "failed"]
    message: str  # what the window shows
    key: str = ""
    salesforce_id: str | None = None


@dataclass(frozen=True)
class UnresolvedEmail:
    """An email saved without a link, as the Unresolved Emails window lists it."""

    key: str
    subject: str
    sender: str
    when: datetime | None
    reason: str
    salesforce_id: str


@dataclass(frozen=True)
class Correspondent:
    address: str
    name: str
    count: int


# --- listing messages -----------------------------------------------------------------------


def _format(address: Address | None) -> str:
    if address is None:
        return ""
    return f"{address.name} <{address.email}>" if address.name else address.email


def _summary(message: MailMessage, folder: MessageFolder) -> MessageSummary:
    when = message.received if folder is MessageFolder.INBOX else message.sent
    return MessageSummary(
        id=message.id,
        folder=folder,
        sender=_format(message.from_),
        recipients=", ".join(_format(a) for a in (*message.to, *message.cc)),
        subject=message.subject,
        when=when or message.received or message.sent,
        conversation_id=message.conversation_id,
    )


def _graph_list(
    mailbox: GraphMailbox, folder: MessageFolder, top: int, since: datetime | None
) -> list[MailMessage]:
    """One Graph call: the folder's newest messages, headers only."""
    field_name = "receivedDateTime" if folder is MessageFolder.INBOX else "sentDateTime"
    params = {
        "$top": str(top),
        "$orderby": f"{field_name} desc",
        "$select": mapping.MESSAGE_FIELDS,
    }
    if since is not None:
        params["$filter"] = (
            f"{field_name} ge {since.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )
    data = mailbox.http.get_json(f"/me/mailFolders/{folder.value}/messages", params=params)
    owner = mailbox.owner()
    return [mapping.message_from_graph(raw, owner, folder.value) for raw in data.get("value", [])]


def _list(
    mailbox: Mailbox, folder: MessageFolder, top: int, since: datetime | None
) -> list[MailMessage]:
    if isinstance(mailbox, GraphMailbox):
        items = _graph_list(mailbox, folder, top, since)
    else:  # any other mailbox: a first delta pass over the window, without bodies
        start = since or datetime.now(UTC) - timedelta(days=14)
        items = [
            change.item
            for page in mailbox.read_messages(folder, None, with_body=False, received_since=start)
            for change in page.changes
            if change.item is not None
        ]
    return [m for m in items if not m.is_draft]


def _stamp(summary: MessageSummary) -> datetime:
    return summary.when or datetime(1970, 1, 1, tzinfo=UTC)


def recent_messages(mailbox: Mailbox, limit: int = 50) -> list[MessageSummary]:
    """The newest messages of Inbox and Sent Items, newest first (one call per folder)."""
    summaries = [
        _summary(m, folder)
        for folder in MESSAGE_FOLDERS
        for m in _list(mailbox, folder, limit, None)
    ]
    summaries.sort(key=_stamp, reverse=True)
    return summaries[:limit]


# --- the Related To picker ------------------------------------------------------------------


def _detail(kind: str, record: SfRecord) -> str:
    if kind == "Contact":
        return str(record.get("Email") or "")
    if kind == "Lead":
        return str(record.get("Company") or "")
    if kind == "Opportunity":
        return str(record.get("StageName") or "")
    return ""


def search_records(gateway: SalesforceGateway, text: str, limit: int = 20) -> list[RecordChoice]:
    """Accounts, Opportunities, Contacts and Leads whose Name contains `text` (one composite
    call; the text is matched literally: quotes, % and _ included)."""
    text = text.strip()
    if not text:
        return []
    pattern = soql_like(text, prefix=True, suffix=True)
    fields = {
        "Account": ("Id", "Name"),
        "Opportunity": ("Id", "Name", "StageName"),
        "Contact": ("Id", "Name", "Email"),
        "Lead": ("Id", "Name", "Company"),
    }
    queries = {
        kind: select(
            kind,
            fields[kind],
            f"Name LIKE {pattern}" + (" AND IsConverted = false" if kind == "Lead" else ""),
            order_by="Name",
            limit=limit,
        )
        for kind in SEARCH_KINDS
    }
    pages = run_queries(gateway.client, queries)
    choices: list[RecordChoice] = []
    for kind in SEARCH_KINDS:
        for raw in pages.get(kind, []):
            record = SfRecord.from_api(raw, kind)
            choices.append(
                RecordChoice(record.id, kind, str(record.get("Name") or ""), _detail(kind, record))
            )
    needle = text.lower()
    # Names that start with the text first, then by name; kinds keep the picker's order.
    choices.sort(key=lambda c: (not c.name.lower().startswith(needle), c.name.lower()))
    return choices[:limit]


# --- saving one message ---------------------------------------------------------------------


def _names(gateway: SalesforceGateway, message: MailMessage) -> dict[str, str]:
    """Record id -> name for the message's participants (the matcher's cache: no call usually)."""
    addresses = [a.email for a in (message.from_, *message.to, *message.cc) if a is not None]
    found = gateway.matcher.resolve(addresses) if addresses else {}
    return {m.id[:15]: m.name for ms in found.values() for m in ms}


def _linked_text(target: str, who_what: Sequence[str]) -> str:
    kind = "a completed Task" if target == "task" else "an Email"
    if who_what:
        return f"Saved as {kind} linked to {', '.join(who_what)}."
    return f"Saved as {kind}."


def save_email(
    gateway: SalesforceGateway,
    mailbox: Mailbox,
    state: SyncState,
    snapshot: SettingsSnapshot,
    message_id: str,
    *,
    related_to_id: str | None,
    autosave_thread: bool,
    user_id: str,
    own_addresses: Sequence[str],
    now: datetime,
    related_to_name: str = "",
    folder: MessageFolder | None = None,
) -> SaveOutcome:
    """Save one message as the user asked in the Save Email window (the manual path).

    `related_to_id` becomes the activity's What; `autosave_thread` (the checkbox, honoured
    while the Auto-Save All Emails In Threads switch is on) marks the conversation so its later
    messages are saved by the next sessions. Saving a message already saved changes nothing."""
    message = mailbox.get_message(message_id, with_body=True)
    if folder is None:
        folder = MessageFolder.INBOX if message.is_inbound else MessageFolder.SENT
    # The checkbox only means something while the switch is on (it is disabled otherwise): a
    # disabled box must not unmark a thread marked earlier.
    thread = autosave_thread if snapshot.flag("email_thread_autosave") else None
    manual = ManualSave(via="window", related_to_id=related_to_id or None, autosave_thread=thread)
    key, result = save_one_message(
        gateway,
        mailbox,
        state,
        snapshot,
        message=message,
        manual=manual,
        folder=folder,
        user_id=user_id,
        own_addresses=own_addresses,
        now=now,
    )
    row = (
        state.db.connect()
        .execute("SELECT target, salesforce_id FROM email_saves WHERE save_key = ?", (key,))
        .fetchone()
    )
    sf_id = str(row[1]) if row is not None and row[1] else None
    target = str(row[0]) if row is not None else ""
    if result.in_progress and sf_id is None:
        return SaveOutcome(
            "saved",
            "A sync session is saving this email right now; it is saved once, with your choice.",
            key,
        )
    if result.failed or (sf_id is None and not result.issues):
        detail = "; ".join(result.issues) or "Salesforce refused it"
        return SaveOutcome("failed", f"The email was not saved: {detail}.", key, sf_id)
    if sf_id is None:  # written, but an attachment waits for the next session
        return SaveOutcome(
            "saved",
            f"Saved; {'; '.join(result.issues)}. It is retried at the next sync.",
            key,
        )
    if result.already_saved and not result.shared:
        return SaveOutcome(
            "already_saved", "This email was already saved to Salesforce.", key, sf_id
        )
    if result.unresolved:
        return SaveOutcome(
            "unresolved",
            "Saved without a link: no Contact or Lead matches its participants. It is listed as "
            "unresolved, where you can link it to a record.",
            key,
            sf_id,
        )
    links: list[str] = []
    if related_to_id:
        links.append(related_to_name or related_to_id)
    linked = _links_of(gateway, target, sf_id)
    links.extend(
        name
        for record_id, name in _names(gateway, message).items()
        if record_id in linked and name not in links
    )
    return SaveOutcome("saved", _linked_text(target, links), key, sf_id)


def _links_of(gateway: SalesforceGateway, target: str, sf_id: str) -> frozenset[str]:
    """The people the saved activity names (Task WhoId; EmailMessage relations), 15-char ids."""
    if target == "task":
        records = gateway.fetch("Task", [sf_id], ["WhoId"])
        return frozenset(str(r.get("WhoId"))[:15] for r in records if r.get("WhoId"))
    soql = select("EmailMessageRelation", ["RelationId"], f"EmailMessageId = {soql_quote(sf_id)}")
    rows = gateway.client.query_all(soql, sobject="EmailMessageRelation")
    return frozenset(str(r.get("RelationId"))[:15] for r in rows if r.get("RelationId"))


# --- Unresolved Emails ----------------------------------------------------------------------


def _date(text: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.utcoffset() is not None else stamp.replace(tzinfo=UTC)


def list_unresolved(state: SyncState) -> list[UnresolvedEmail]:
    """Emails saved without a link and not linked since, newest first (no network)."""
    return [
        UnresolvedEmail(
            key=row["save_key"],
            subject=row["subject"],
            sender=row["sender"],
            when=_date(row["message_date"]),
            reason=row["reason"],
            salesforce_id=row["salesforce_id"],
        )
        for row in unresolved_emails(state)
    ]


def count_unresolved(state: SyncState) -> int:
    row = (
        state.db.connect()
        .execute("SELECT COUNT(*) FROM email_unresolved WHERE linked_to IS NULL")
        .fetchone()
    )
    return int(row[0]) if row is not None else 0


def link_email(gateway: SalesforceGateway, state: SyncState, key: str, record: RecordChoice) -> str:
    """Link an unresolved email to the record the user picked; what the window says after.
    Raises RecordFailed when Salesforce refuses, KeyError when it is no longer unresolved."""
    link_unresolved(gateway, state, key, record.id)
    return f"Linked to {record.label}."


# --- New Records ----------------------------------------------------------------------------


def frequent_correspondents(
    mailbox: Mailbox,
    gateway: SalesforceGateway,
    snapshot: SettingsSnapshot,
    own_addresses: Sequence[str],
    *,
    days: int = 30,
    limit: int = 30,
    now: datetime | None = None,
) -> list[Correspondent]:
    """People in the last `days` of mail who are not Contacts, Leads or Users in Salesforce,
    most frequent first; blacklisted (user's or corporate) and internal addresses are left out.
    One `matcher.resolve` for all addresses."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    context = EmailContext.build(
        snapshot, salesforce_user_id="", own_addresses=own_addresses, enhanced_email=False
    )
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    for folder in MESSAGE_FOLDERS:
        for message in _list(mailbox, folder, CORRESPONDENT_PAGE, since):
            seen: set[str] = set()
            for person in (message.from_, *message.to, *message.cc):
                if person is None or not person.email:
                    continue
                key = address_key(person.email)
                if key in seen or key in context.own_addresses:
                    continue
                domain = key.rpartition("@")[2]
                if domain in context.internal_domains or context.blacklist.matches(key):
                    continue
                seen.add(key)
                counts[key] += 1
                if person.name and not names.get(key):
                    names[key] = person.name
    if not counts:
        return []
    known = gateway.matcher.resolve(sorted(counts))
    people = [
        Correspondent(address, names.get(address, ""), count)
        for address, count in counts.items()
        if not known.get(address)
    ]
    people.sort(key=lambda p: (-p.count, p.name.lower() or p.address))
    return people[:limit]


def split_name(person: Correspondent) -> tuple[str, str]:
    """(first, last) from the display name; the address's local part when there is none."""
    name = " ".join(person.name.replace('"', " ").split())
    if "," in name:  # "Cooper, Jane"
        last, _, first = name.partition(",")
        return first.strip(), last.strip()
    if name and "@" not in name:
        first, _, last = name.rpartition(" ")
        return (first, last) if first else ("", last)
    return "", person.address.partition("@")[0]


def _created_id(results: Sequence[Any]) -> str:
    [result] = results
    if not result.success or not result.id:
        raise RecordFailed(list(result.errors))
    return str(result.id)


def find_or_create_account(gateway: SalesforceGateway, name: str) -> str:
    soql = select("Account", ["Id"], f"Name = {soql_quote(name)}", limit=1)
    found = list(gateway.client.query_all(soql, sobject="Account"))
    if found:
        return str(found[0].id)
    return _created_id(gateway.writer.create("Account", [{"Name": name}]))


def create_contact(
    gateway: SalesforceGateway, person: Correspondent, account_name: str | None = None
) -> str:
    """A Contact for the correspondent (under the named Account, found or created); its id."""
    first, last = split_name(person)
    row: dict[str, Any] = {"LastName": last[:80], "Email": person.address}
    if first:
        row["FirstName"] = first[:40]
    if account_name and account_name.strip():
        row["AccountId"] = find_or_create_account(gateway, account_name.strip())
    record_id = _created_id(gateway.writer.create("Contact", [row]))
    gateway.matcher.forget([person.address])  # the next session links the new Contact
    return record_id


def create_lead(gateway: SalesforceGateway, person: Correspondent, company: str) -> str:
    """A Lead for the correspondent at `company`; its id."""
    if not company.strip():
        raise ValueError("a Lead needs a company")
    first, last = split_name(person)
    row: dict[str, Any] = {"LastName": last[:80], "Email": person.address, "Company": company}
    if first:
        row["FirstName"] = first[:40]
    record_id = _created_id(gateway.writer.create("Lead", [row]))
    gateway.matcher.forget([person.address])
    return record_id


def do_not_sync(settings: Settings, address: str) -> Value:
    """Add the address to the user's Blacklisted Domains; returns the saved canonical value.
    Raises SettingsError when the box is locked or the address is not valid."""
    current = str(settings.get("blacklist"))
    entries: Iterable[str] = (*parse_blacklist(current).entries, address)
    return settings.set("blacklist", ", ".join(entries))
