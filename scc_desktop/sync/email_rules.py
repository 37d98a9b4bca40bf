"""Which mailbox messages become Salesforce activities, and what they are linked to.

The decision is pure (no I/O, no clock: ``now`` is passed) so the product's rules are one table of
tests, and a message gets the same answer on every retry, replay after a crash, and on both the
manual and the automatic path. The session gathers the data, calls `decide_email`, and acts.

Choices the product page leaves open, fixed here:

* Paths. A manual save (the "Salesforce Emails" folder, the "Salesforce" category, the Save Email
  window) always saves: the blacklist does not apply to it ("you still can save them directly"),
  internal participants are still never linked, and with nothing to link it is saved unlinked and
  flagged ``unresolved``. An automatic message (Inbox, Sent Items) goes through the thread rule
  first (the user's explicit choice, whose Related To it inherits), then through Auto-Sharing.
* People. Participants are From, To, CC in that order (never Bcc), each address once. Contacts win
  over Leads: when a Contact matches, every matched Contact is linked (at most `MAX_WHO`; the first
  is the Task's WhoId) and Leads are dropped. A Lead is linked only when no Contact matched: the
  first one, alone and with no What, because Salesforce lets nothing else join a Lead, on a Task
  as on an EmailMessage; an explicit Related To then wins and the Lead is dropped. An EmailMessage
  thus relates to one What (RelatedToId) and many Whos, a Task to one What and its Whos. Users are
  never Whos; the non-internal ones go to ``user_ids`` (EmailMessage ToIds/CcIds). Several records
  for one address are taken in Id order. Addresses compare lower-cased with IDN domains in ASCII.
* Internal and blacklisted. Internal: the user's own addresses and domains (the domains of their
  addresses except public mail services) and the policy's internal domains. On the automatic paths
  a blacklisted or internal participant is never linked and never lends an account or opportunity;
  a message with no other participant is not saved.
* Link to Opportunities (automatic paths only). Candidates: opportunities the user owns whose
  account is the account of a linked Contact. "Most recent": open before closed, then the latest
  LastModifiedDate, then the latest CloseDate, then the latest CreatedDate, then the greatest Id.
  Else the account of the first linked Contact (From, To, CC order) that has one. Else Auto-Sharing
  does not share the message (a Lead-only message too: a Lead has no account), while a thread
  auto-save still saves it, with no What, as the user asked for the whole thread.
* Time. Auto-Sharing takes messages dated at or after the moment it was last turned on or, when that
  was the first enabling, ``email_history_days`` before it; an unknown moment counts as ``now``.
  Inbound messages are dated by reception, outbound ones by sending. A marked thread takes messages
  dated at or after the message that marked it, whatever Auto-Sharing says.
* Threads. An explicit checkbox value in the Save Email window wins (unchecked unmarks a marked
  thread); otherwise a manual save marks the thread while the switch is on. With the switch off,
  marks are kept but not used, so turning it back on resumes them.
* Target. ``save_emails_as`` = auto follows the org's Enhanced Email; task or email_message is
  honoured as set (the detection can be wrong, and the override is the way out).
* Key. The RFC Message-ID without angle brackets or whitespace, lower-cased (hashed when longer than
  200 characters); without one, a SHA-256 of the From addresses, the date (UTC, to the second) and
  the whitespace-collapsed subject. It ignores the path, so a message saved manually and seen again
  automatically is saved once per target record.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from scc_desktop.blacklist import Blacklist, normalize_address, normalize_domain
from scc_desktop.settings import SettingsSnapshot

__all__ = [
    "MAX_WHO",
    "PUBLIC_MAIL_DOMAINS",
    "Direction",
    "EmailContext",
    "EmailDecision",
    "MailMessage",
    "ManualSave",
    "Opportunity",
    "Participant",
    "PersonKind",
    "PersonRecord",
    "ReasonCode",
    "Relation",
    "Role",
    "SalesforceLookup",
    "SavePath",
    "Target",
    "ThreadMark",
    "WhatSource",
    "address_key",
    "decide_email",
    "idempotency_key",
]

MAX_WHO = 50  # Salesforce's limit of people on one shared activity
MAX_KEY_LENGTH = 200

# Domains many unrelated people share: the user's address there does not make them colleagues.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "zoho.com",
    }
)

Direction = Literal["inbound", "outbound"]
Target = Literal["task", "email_message"]
PersonKind = Literal["Contact", "Lead", "User"]
Role = Literal["from", "to", "cc"]
SavePath = Literal["manual", "thread", "autoshare"]
WhatSource = Literal["related_to", "opportunity", "account"]
ReasonCode = Literal[
    "manual",
    "manual_unresolved",
    "thread",
    "autoshare",
    "autoshare_off",
    "before_enabled",
    "no_match",
    "only_excluded",
    "no_opportunity_or_account",
]

REASONS: Mapping[ReasonCode, str] = {
    "manual": "saved manually",
    "manual_unresolved": "saved manually, unlinked: no participant is a Contact or Lead",
    "thread": "the thread is marked for auto-save",
    "autoshare": "auto-shared: participants match Contacts or Leads",
    "autoshare_off": "auto-sharing is off",
    "before_enabled": "before auto-sharing was enabled",
    "no_match": "no participant is a Contact or Lead",
    "only_excluded": "only blacklisted or internal participants",
    "no_opportunity_or_account": "Link to Opportunities: no opportunity or account",
}

_WHITESPACE = re.compile(r"\s+")


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    address: str
    name: str = ""


@dataclass(frozen=True)
class ManualSave:
    """How the user asked for the save. ``autosave_thread`` None means the checkbox default."""

    via: Literal["folder", "category", "window"] = "folder"
    related_to_id: str | None = None
    autosave_thread: bool | None = None


@dataclass(frozen=True)
class MailMessage:
    """One message as the connector sees it; ``manual`` None means seen in Inbox/Sent Items."""

    message_id: str | None
    conversation_id: str | None
    direction: Direction
    sender: tuple[Participant, ...]
    to: tuple[Participant, ...] = ()
    cc: tuple[Participant, ...] = ()
    subject: str = ""
    sent_at: datetime | None = None
    received_at: datetime | None = None
    manual: ManualSave | None = None

    def __post_init__(self) -> None:
        # Naive times would compare wrongly (or raise) against the session's UTC times.
        for stamp in (self.sent_at, self.received_at):
            if stamp is not None and stamp.utcoffset() is None:
                raise ValueError("message times must be timezone-aware")
        if self.sent_at is None and self.received_at is None:
            raise ValueError("a message needs a sent or a received time")

    @property
    def origin(self) -> Literal["manual", "automatic"]:
        return "automatic" if self.manual is None else "manual"

    @property
    def when(self) -> datetime:
        """Reception for inbound mail, sending for outbound: when it reached this mailbox."""
        first, second = (
            (self.received_at, self.sent_at)
            if self.direction == "inbound"
            else (self.sent_at, self.received_at)
        )
        stamp = first if first is not None else second
        assert stamp is not None  # __post_init__ guarantees one
        return stamp


@dataclass(frozen=True)
class PersonRecord:
    """A Contact (with its AccountId), an unconverted Lead or an active User, by email."""

    id: str
    kind: PersonKind
    email: str
    account_id: str | None = None


@dataclass(frozen=True)
class Opportunity:
    id: str
    account_id: str | None
    owner_id: str
    is_closed: bool
    last_modified: datetime
    close_date: date | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class SalesforceLookup:
    """What the connector found for the participants; order does not matter."""

    people: Sequence[PersonRecord] = ()
    opportunities: Sequence[Opportunity] = ()


@dataclass(frozen=True)
class ThreadMark:
    """A conversation marked for auto-save: messages from ``since`` on are saved too."""

    conversation_id: str
    since: datetime
    related_to_id: str | None = None


@dataclass(frozen=True)
class EmailContext:
    """Everything one session decides with; built anew per session so settings apply at once."""

    settings: SettingsSnapshot
    salesforce_user_id: str
    own_addresses: frozenset[str]
    internal_domains: frozenset[str]
    blacklist: Blacklist
    enhanced_email: bool
    autoshare_enabled_at: datetime | None = None
    autoshare_first_enabling: bool = True
    marked_threads: Mapping[str, ThreadMark] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        settings: SettingsSnapshot,
        *,
        salesforce_user_id: str,
        own_addresses: Iterable[str],
        enhanced_email: bool,
        own_domains: Iterable[str] | None = None,
        autoshare_enabled_at: datetime | None = None,
        autoshare_first_enabling: bool = True,
        marked_threads: Iterable[ThreadMark] = (),
    ) -> EmailContext:
        """Normalize identities and merge the user's, corporate and internal lists once."""
        addresses = frozenset(address_key(a) for a in own_addresses)
        if own_domains is None:
            own_domains = {
                a.rpartition("@")[2]
                for a in addresses
                if a.rpartition("@")[2] not in PUBLIC_MAIL_DOMAINS
            }
        domains = {_domain_key(d) for d in own_domains}
        domains.update(_domain_key(d) for d in settings.internal_domains)
        domains.discard("")
        return cls(
            settings=settings,
            salesforce_user_id=salesforce_user_id,
            own_addresses=addresses,
            internal_domains=frozenset(domains),
            blacklist=settings.blacklist(tuple(sorted(domains))),
            enhanced_email=enhanced_email,
            autoshare_enabled_at=autoshare_enabled_at,
            autoshare_first_enabling=autoshare_first_enabling,
            marked_threads={mark.conversation_id: mark for mark in marked_threads},
        )


# --- output ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Relation:
    """A linked person and the header they were in, for EmailMessageRelation rows."""

    record_id: str
    kind: PersonKind
    role: Role
    address: str


@dataclass(frozen=True)
class EmailDecision:
    """What to do with one message; ``reason`` is shown in History and the Unresolved view."""

    share: bool
    code: ReasonCode
    reason: str
    key: str
    target: Target
    path: SavePath | None = None
    who_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    what_id: str | None = None
    what_source: WhatSource | None = None
    relations: tuple[Relation, ...] = ()
    unresolved: bool = False
    mark_thread: ThreadMark | None = None
    unmark_thread: str | None = None


# --- helpers -----------------------------------------------------------------------------------


def _domain_key(domain: str) -> str:
    domain = domain.strip().lstrip("@")
    return normalize_domain(domain) or domain.rstrip(".").lower()


def address_key(address: str) -> str:
    """Canonical address for comparisons; tolerant of what `normalize_address` refuses."""
    normalized = normalize_address(address)
    if normalized is not None:
        return normalized
    local, sep, domain = address.strip().lower().rpartition("@")
    if not sep:
        return address.strip().lower()
    return f"{local}@{_domain_key(domain)}"


def _id_key(record_id: str) -> str:
    """15- and 18-character Salesforce ids of one record compare equal."""
    return record_id[:15]


def idempotency_key(message: MailMessage) -> str:
    """One key per message whatever the path, so it is saved at most once per target record."""
    if message.message_id is not None:
        mid = _WHITESPACE.sub("", message.message_id).strip("<>").lower()
        if mid:
            if len(mid) > MAX_KEY_LENGTH:
                return "mid-sha256:" + hashlib.sha256(mid.encode()).hexdigest()
            return "mid:" + mid
    stamp = message.sent_at if message.sent_at is not None else message.when
    parts = (
        ",".join(address_key(p.address) for p in message.sender),
        stamp.astimezone(UTC).replace(microsecond=0).isoformat(),
        _WHITESPACE.sub(" ", message.subject).strip(),
    )
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _target(context: EmailContext) -> Target:
    choice = context.settings.text("save_emails_as")
    if choice == "task":
        return "task"
    if choice == "email_message":
        return "email_message"
    return "email_message" if context.enhanced_email else "task"


@dataclass(frozen=True)
class _Seen:
    key: str
    role: Role
    internal: bool
    blacklisted: bool


def _participants(message: MailMessage, context: EmailContext) -> list[_Seen]:
    seen: dict[str, _Seen] = {}
    groups: tuple[tuple[Role, tuple[Participant, ...]], ...] = (
        ("from", message.sender),
        ("to", message.to),
        ("cc", message.cc),
    )
    for role, people in groups:
        for person in people:
            key = address_key(person.address)
            if not key or key in seen:
                continue
            domain = key.rpartition("@")[2]
            internal = key in context.own_addresses or domain in context.internal_domains
            blacklisted = key in context.blacklist.addresses or domain in context.blacklist.domains
            seen[key] = _Seen(key, role, internal, blacklisted)
    return list(seen.values())


@dataclass(frozen=True)
class _Links:
    contacts: tuple[tuple[PersonRecord, _Seen], ...]
    leads: tuple[tuple[PersonRecord, _Seen], ...]
    users: tuple[tuple[PersonRecord, _Seen], ...]


def _links(eligible: Sequence[_Seen], lookup: SalesforceLookup) -> _Links:
    by_address: dict[str, list[PersonRecord]] = {}
    for record in lookup.people:
        by_address.setdefault(address_key(record.email), []).append(record)
    found: dict[PersonKind, list[tuple[PersonRecord, _Seen]]] = {
        "Contact": [],
        "Lead": [],
        "User": [],
    }
    taken: set[str] = set()
    for person in eligible:
        for record in sorted(by_address.get(person.key, ()), key=lambda r: r.id):
            if _id_key(record.id) in taken:
                continue
            taken.add(_id_key(record.id))
            found[record.kind].append((record, person))
    return _Links(tuple(found["Contact"]), tuple(found["Lead"]), tuple(found["User"]))


def _most_recent_key(opp: Opportunity) -> tuple[bool, datetime, date, datetime, str]:
    created = opp.created if opp.created is not None else opp.last_modified
    return (not opp.is_closed, opp.last_modified, opp.close_date or date.min, created, opp.id)


def _opportunity_or_account(
    contacts: Sequence[PersonRecord], lookup: SalesforceLookup, context: EmailContext
) -> tuple[str, WhatSource] | None:
    accounts = {_id_key(c.account_id) for c in contacts if c.account_id}
    me = _id_key(context.salesforce_user_id)
    candidates = [
        opp
        for opp in lookup.opportunities
        if opp.account_id and _id_key(opp.account_id) in accounts and _id_key(opp.owner_id) == me
    ]
    if candidates:
        return max(candidates, key=_most_recent_key).id, "opportunity"
    for contact in contacts:
        if contact.account_id:
            return contact.account_id, "account"
    return None


@dataclass(frozen=True)
class _People:
    who: tuple[tuple[PersonRecord, _Seen], ...]
    users: tuple[tuple[PersonRecord, _Seen], ...]
    contacts: tuple[PersonRecord, ...]
    lead_alone: bool


def _people(links: _Links, related_to_id: str | None) -> _People:
    if links.contacts:
        who = links.contacts[:MAX_WHO]
        lead_alone = False
    elif links.leads and related_to_id is None:
        who = links.leads[:1]
        lead_alone = True
    else:  # no Contact, and a Lead cannot share the activity with an explicit Related To
        who = ()
        lead_alone = False
    contacts = tuple(record for record, _ in links.contacts)
    return _People(who, links.users, contacts, lead_alone)


def _decision(
    code: ReasonCode,
    key: str,
    target: Target,
    *,
    share: bool = False,
    path: SavePath | None = None,
    people: _People | None = None,
    what: tuple[str, WhatSource] | None = None,
    mark: ThreadMark | None = None,
    unmark: str | None = None,
    detail: str = "",
) -> EmailDecision:
    who = people.who if people else ()
    users = people.users if people else ()
    relations = tuple(
        Relation(record.id, record.kind, seen.role, seen.key) for record, seen in (*who, *users)
    )
    reason = REASONS[code] + (f"; {detail}" if detail else "")
    return EmailDecision(
        share=share,
        code=code,
        reason=reason,
        key=key,
        target=target,
        path=path,
        who_ids=tuple(record.id for record, _ in who),
        user_ids=tuple(record.id for record, _ in users),
        what_id=what[0] if what else None,
        what_source=what[1] if what else None,
        relations=relations,
        unresolved=share and not who and what is None,
        mark_thread=mark,
        unmark_thread=unmark,
    )


_WHAT_DETAIL: Mapping[WhatSource, str] = {
    "related_to": "linked to the chosen record",
    "opportunity": "linked to the most recent opportunity",
    "account": "linked to the contact's account",
}


def _detail(what: tuple[str, WhatSource] | None) -> str:
    return _WHAT_DETAIL[what[1]] if what else ""


# --- the decision ------------------------------------------------------------------------------


def decide_email(
    message: MailMessage,
    lookup: SalesforceLookup,
    context: EmailContext,
    now: datetime,
) -> EmailDecision:
    """Decide whether and how ``message`` is saved; see the module docstring for the rules."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    key = idempotency_key(message)
    target = _target(context)
    participants = _participants(message, context)
    if message.manual is not None:
        return _decide_manual(
            message,
            message.manual,
            participants,
            lookup=lookup,
            context=context,
            key=key,
            target=target,
        )
    return _decide_automatic(
        message, participants, lookup=lookup, context=context, now=now, key=key, target=target
    )


def _decide_manual(
    message: MailMessage,
    manual: ManualSave,
    participants: Sequence[_Seen],
    *,
    lookup: SalesforceLookup,
    context: EmailContext,
    key: str,
    target: Target,
) -> EmailDecision:
    # The blacklist only stops automatic sharing; a colleague is never linked on any path.
    eligible = [p for p in participants if not p.internal]
    related_to = manual.related_to_id or None
    people = _people(_links(eligible, lookup), related_to)
    what: tuple[str, WhatSource] | None = (related_to, "related_to") if related_to else None
    switch_on = context.settings.flag("email_thread_autosave")
    wanted = manual.autosave_thread if manual.autosave_thread is not None else switch_on
    mark: ThreadMark | None = None
    unmark: str | None = None
    if message.conversation_id:
        if wanted:
            mark = ThreadMark(message.conversation_id, message.when, related_to)
        elif manual.autosave_thread is False and message.conversation_id in context.marked_threads:
            unmark = message.conversation_id
    code: ReasonCode = "manual" if people.who or what else "manual_unresolved"
    return _decision(
        code,
        key,
        target,
        share=True,
        path="manual",
        people=people,
        what=what,
        mark=mark,
        unmark=unmark,
        detail=_detail(what),
    )


def _decide_automatic(
    message: MailMessage,
    participants: Sequence[_Seen],
    *,
    lookup: SalesforceLookup,
    context: EmailContext,
    now: datetime,
    key: str,
    target: Target,
) -> EmailDecision:
    settings = context.settings
    eligible = [p for p in participants if not p.internal and not p.blacklisted]
    links = _links(eligible, lookup)
    link_opportunities = settings.flag("email_link_opportunities")

    mark = context.marked_threads.get(message.conversation_id or "")
    if settings.flag("email_thread_autosave") and mark is not None and message.when >= mark.since:
        if not eligible:
            return _decision("only_excluded", key, target)
        related_to = mark.related_to_id or None
        people = _people(links, related_to)
        what: tuple[str, WhatSource] | None = None
        if related_to:
            what = (related_to, "related_to")
        elif link_opportunities:
            what = _opportunity_or_account(people.contacts, lookup, context)
        return _decision(
            "thread",
            key,
            target,
            share=True,
            path="thread",
            people=people,
            what=what,
            detail=_detail(what),
        )

    if not settings.flag("email_autoshare"):
        return _decision("autoshare_off", key, target)
    cutoff = context.autoshare_enabled_at if context.autoshare_enabled_at is not None else now
    if context.autoshare_first_enabling:
        cutoff -= timedelta(days=settings.number("email_history_days"))
    if message.when < cutoff:
        return _decision("before_enabled", key, target)
    people = _people(links, None)
    if not people.who:
        # The user's own address being a Contact too says nothing about the others.
        others = [p for p in participants if p.key not in context.own_addresses]
        everyone = _links(others, lookup)
        excluded_match = bool(everyone.contacts or everyone.leads)
        code: ReasonCode = "only_excluded" if not eligible or excluded_match else "no_match"
        return _decision(code, key, target)
    what = None
    if link_opportunities:
        what = _opportunity_or_account(people.contacts, lookup, context)
        if what is None:
            return _decision("no_opportunity_or_account", key, target)
    return _decision(
        "autoshare",
        key,
        target,
        share=True,
        path="autoshare",
        people=people,
        what=what,
        detail=_detail(what),
    )
